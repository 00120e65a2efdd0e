"""Fit and cross-validate the clause matcher from the repository; judgments retrain it.

Run: `python -m scanner.fit_matcher [--eval DIR] [--work DIR] [--cv] [--judgments] [--write PATH] [--json]`

Every labelled development of the bundled eval set (`dev.jsonl` 60 + `lifecycle-dev.jsonl` 40,
lifecycle threads as groups) is turned into the scorer's signals through the *package's* encoders
(`scanner.match.MODELS`) and `scanner.analyse.VectorCache` over a work store (`--work`, default a
folder in the user cache), so a rerun re-encodes nothing. Training needs more vectors than scoring:
the universal model (USE + e5) is fitted on every language, so English developments get e5 chunk
vectors too.

- `--cv`: grouped 5-fold (threads kept together) x 3 seeds cross-validation of the system as
  shipped: inside each training fold both logistic models *and* the attach rule are refitted
  (`clause_scorer.fit`; the rule from inner grouped 4-fold out-of-fold probabilities, as the
  round-two research did), then the test fold is attached with both tiers of that rule *and* the
  non-English head-cosine gate of `scanner.match` (`NON_ENGLISH_MIN_HEAD_COSINE`, a fixed literal).
  Beside it, in the same run: plain BM25 top-5 and plain MiniLM top-5 (`scanner.evaluate.Baselines`)
  and the shipped literals in-sample (`Matcher.match`, i.e. fitted on these very items).
- `--judgments`: the half-split measurement of `refit_from_store` (protocol in `judgments_gain`).
- `--write PATH`: a fit on all labelled developments, parameters JSON to PATH (what
  `Matcher(params=...)` and the `matcher_params` state of a database hold).

`refit_from_store(config, store)` is what `scan rematch --refit` runs: it stacks the bundled labelled
developments with every judged development of the database and stores the refitted parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import clause_scorer as cs
from .match import MODELS, NON_ENGLISH_MIN_HEAD_COSINE, Matcher, chunks_of, head_of, tokens, whole_of
from .policies import Clause, load_corpus

if TYPE_CHECKING:
    from .config import Config
    from .store import Store

LABEL_FILES = ("dev.jsonl", "lifecycle-dev.jsonl")
SEEDS = (0, 1, 2)
FOLDS = 5
INNER_FOLDS = 4
"""Rule search inside a training fold: grouped 4-fold out-of-fold probabilities, never in-sample ones."""
MIN_JUDGED_ALONE = 20
"""Without the bundled labelled data (a corpus other than the bundled one), refit only from this many judged developments."""
JUDGED_GRADE = 1
"""Label grade of a clause judged right or added: a judgment says "attach it", not "directly affected" (grade 2)."""
SIGNAL_NAMES = sorted(set(cs.UNIVERSAL_SIGNALS + cs.ENGLISH_SIGNALS))


# ------------------------------------------------------------------------------ data
def labelled_items(eval_dir: Path) -> list[dict[str, Any]]:
    """Both labelled files (those present), each item with `group` = its lifecycle thread or its own id."""
    from .evaluate import read_jsonl

    items = []
    for name in LABEL_FILES:
        path = Path(eval_dir) / name
        if path.is_file():
            for item in read_jsonl(path):
                items.append({**item, "group": item.get("thread") or item["id"]})
    return items


@dataclass
class Stack:
    """Signals and labels of developments, one row each, in the clause order of `clause_ids`."""

    clause_ids: list[str]
    signals: dict[str, np.ndarray]          # signal name -> (n, n_clauses)
    heads: np.ndarray                       # (n, dim) USE head vectors
    head_cos: np.ndarray                    # (n,) best USE head cosine to any clause (the non-English gate)
    english: np.ndarray                     # (n,) bool
    groups: list[str]
    labels: np.ndarray                      # (n, n_clauses) grades 0/1/2
    mask: np.ndarray                        # (n, n_clauses) bool: the cell carries a label
    items: list[dict[str, Any]] = field(default_factory=list)   # {"id", "lang", "relevant"} for metrics
    chunks_use: list[np.ndarray] = field(default_factory=list)  # (n_chunks, dim) USE chunk vectors per row
    clause_use: np.ndarray | None = None    # (n_clauses, dim) USE clause vectors

    def __len__(self) -> int:
        return len(self.groups)

    def take(self, rows: Sequence[int] | np.ndarray) -> "Stack":
        rows = np.asarray(rows, int)
        return Stack(self.clause_ids, {k: v[rows] for k, v in self.signals.items()}, self.heads[rows],
                     self.head_cos[rows], self.english[rows], [self.groups[i] for i in rows], self.labels[rows],
                     self.mask[rows], [self.items[i] for i in rows], [self.chunks_use[i] for i in rows] if self.chunks_use else [],
                     self.clause_use)

    @staticmethod
    def concat(parts: Sequence["Stack"]) -> "Stack":
        parts = [p for p in parts if len(p)]
        first = parts[0]
        return Stack(first.clause_ids, {k: np.concatenate([p.signals[k] for p in parts]) for k in first.signals},
                     np.concatenate([p.heads for p in parts]), np.concatenate([p.head_cos for p in parts]),
                     np.concatenate([p.english for p in parts]), [g for p in parts for g in p.groups],
                     np.concatenate([p.labels for p in parts]), np.concatenate([p.mask for p in parts]),
                     [i for p in parts for i in p.items], [c for p in parts for c in p.chunks_use], first.clause_use)

    def expanded_by(self, bank: "Stack", leave_own_thread_out: bool = True) -> "Stack":
        """This stack with the clause-expansion signal computed from `bank`'s labels, each row's own thread
        left out (as a development outside the labelled data gets it) unless `leave_own_thread_out` is off."""
        if self.clause_use is None or bank.clause_use is None:    # a stack built without vectors keeps its signals
            return self
        groups = self.groups if leave_own_thread_out else [f"\0{i}" for i in range(len(self))]
        signal = cs.expanded_training_signal(self.clause_use, self.chunks_use, bank.heads, bank.weights(),
                                             bank.groups, groups)
        return Stack(self.clause_ids, {**self.signals, cs.EXPANDED_SIGNAL: signal}, self.heads, self.head_cos,
                     self.english, self.groups, self.labels, self.mask, self.items, self.chunks_use, self.clause_use)

    def weights(self) -> np.ndarray:
        """Centroid weight of each (row, clause): its grade where labelled, else 0."""
        return np.where(self.mask, self.labels, 0.0)

    def fit_all(self, **kw: Any) -> dict[str, Any]:
        """{"base": parameters}: what `--write`, `Matcher(params=...)` and the `matcher_params` state hold."""
        return {"base": self.fit(**kw)}

    def fit(self, **kw: Any) -> dict[str, Any]:
        data = self.expanded_by(self)
        return cs.fit(data.signals, self.labels, self.english, self.groups, clause_ids=self.clause_ids,
                      mask=self.mask, **kw)


def training_texts(title: str, text: str, lang: str | None) -> dict[str, list[str]]:
    """embed model -> texts a development needs for training signals (e5 chunks for every language)."""
    chunks = chunks_of(title, text) or [title or " "]
    english = cs.is_english(lang)
    out = {MODELS["use"]: [*chunks, head_of(title, text)], MODELS["e5"]: list(chunks)}
    if english:
        out[MODELS["minilm"]] = [*chunks, whole_of(title, text)]
    return out


def stack(matcher: Matcher, developments: Sequence[Mapping[str, Any]], labels: np.ndarray | None = None,
          mask: np.ndarray | None = None, encode: Callable[[str, list[str]], Any] | None = None) -> Stack:
    """Signals of `developments` ({"title", "text", "lang", "group", ...}) through the matcher's encoders.

    `encode(model, texts)` (optional) is called once per model with every text first, so a vector
    cache encodes all missing texts in one batch.
    """
    clause_ids = [c.id for c in matcher.clauses]
    if encode is not None:
        needed: dict[str, list[str]] = {}
        for d in developments:
            for model, texts in training_texts(d["title"], d["text"], d.get("lang")).items():
                needed.setdefault(model, []).extend(texts)
        for model, texts in needed.items():
            encode(model, texts)
    rows, heads, head_cos, chunks_use = [], [], [], []
    for d in developments:
        title, text, lang = d["title"] or "", d["text"] or "", d.get("lang")
        english = cs.is_english(lang)
        chunks = chunks_of(title, text) or [title or " "]
        vectors = {m: matcher._encode(MODELS[m], chunks) for m in (("use", "e5", "minilm") if english else ("use", "e5"))}
        whole = {"use": matcher._encode(MODELS["use"], [head_of(title, text)])[0]}
        if english:
            whole["minilm"] = matcher._encode(MODELS["minilm"], [whole_of(title, text)])[0]
        sig = matcher.scorer.signals(vectors, whole, tokens(whole_of(title, text)) if english else None)
        # MiniLM and BM25 signals only feed the English model, which never sees non-English rows
        rows.append({k: sig.get(k, np.zeros(len(clause_ids))) for k in SIGNAL_NAMES})
        heads.append(whole["use"])
        chunks_use.append(np.asarray(vectors["use"], np.float64))
        head_cos.append(float((matcher.scorer.clause_vectors["use"] @ whole["use"]).max()))
    n, nc = len(developments), len(clause_ids)
    if labels is None:
        labels = np.zeros((n, nc))
        index = {c: j for j, c in enumerate(clause_ids)}
        for i, d in enumerate(developments):
            for cid, grade in (d.get("relevant") or {}).items():
                if cid in index:
                    labels[i, index[cid]] = grade
    return Stack(clause_ids, {k: np.array([r[k] for r in rows]).reshape(n, nc) for k in SIGNAL_NAMES},
                 np.array(heads, np.float64).reshape(n, -1), np.array(head_cos), np.array([cs.is_english(d.get("lang")) for d in developments], bool),
                 [str(d.get("group") or d.get("id") or i) for i, d in enumerate(developments)], np.asarray(labels, np.float64),
                 np.ones((n, nc), bool) if mask is None else np.asarray(mask, bool),
                 [{"id": d.get("id"), "lang": d.get("lang"), "relevant": d.get("relevant") or {}} for d in developments],
                 chunks_use, np.asarray(matcher.scorer.clause_vectors["use"], np.float64))


# ------------------------------------------------------------------------------ scoring
def probabilities(params: Mapping[str, Any], data: Stack) -> np.ndarray:
    """(n, n_clauses) probabilities of base parameters `params`, exactly as `ClauseScorer.score` computes them."""
    p = np.zeros(data.labels.shape)
    for kind, rows in (("universal", ~data.english), ("english", data.english)):
        if rows.any():
            lr, names, modes, prior = cs._model(params, kind, data.clause_ids)
            x = cs.features({k: data.signals[k][rows] for k in names}, names, modes)
            x = np.hstack([x, np.tile(prior, int(rows.sum()))[:, None]])
            p[rows] = lr.predict(x).reshape(-1, len(data.clause_ids))
    return p


def attach_tiers(params: Mapping[str, Any], data: Stack, probs: np.ndarray | None = None) -> list[tuple[list[int], list[int]]]:
    """(attached, possible) clause indices per development: the rule of `params` plus the non-English head-cosine gate."""
    probs = probabilities(params, data) if probs is None else probs
    rule = cs.Rule.parse(params["rule"])
    out: list[tuple[list[int], list[int]]] = []
    for p, english, cos in zip(probs, data.english, data.head_cos):
        if not english and cos < NON_ENGLISH_MIN_HEAD_COSINE:
            out.append(([], []))
        else:
            out.append(cs._attach(p, rule, 0 if english else 1))
    return out


def attach(params: Mapping[str, Any], data: Stack, probs: np.ndarray | None = None) -> list[list[int]]:
    """Tier-1 ("attached") clause indices per development, as `attach_tiers`."""
    return [tier1 for tier1, _ in attach_tiers(params, data, probs)]


def metrics(data: Stack, attached: Sequence[Sequence[int]], ranked: np.ndarray | None = None,
            possible: Sequence[Sequence[int]] | None = None) -> dict[str, float]:
    """`scanner.evaluate.attachment_metrics` of tier-1 attachments; with `possible`, the same of both tiers
    together (what a specialist who also reads the "possible" clauses sees); with `ranked` scores, the
    ranking's nDCG@5 and the best any cut of that ranking could do (`oracle_cut`)."""
    from .evaluate import attachment_metrics, ranking_metrics

    rows = [{"item": item, "attached": [data.clause_ids[j] for j in a]} for item, a in zip(data.items, attached)]
    out = attachment_metrics(rows)
    if possible is not None:
        both = [{"item": r["item"], "attached": r["attached"] + [data.clause_ids[j] for j in b]} for r, b in zip(rows, possible)]
        m = attachment_metrics(both)
        out.update({"with_possible_recall@5": m["recall@5"], "with_possible_precision": m["precision"],
                    "with_possible_irrelevant": m["irrelevant_with_clauses"],
                    "possible_per_labelled_item": float(np.mean([len(b) for b, i in zip(possible, data.items) if i["relevant"]]))})
    if ranked is not None:
        for row, p in zip(rows, ranked):
            row["ranked"] = [data.clause_ids[j] for j in np.argsort(-p, kind="stable")]
        r = ranking_metrics(rows, "ranked")
        out["ranking_ndcg@5"], out["ranking_recall@5"] = r["ndcg@5"], r["recall@5"]
        oracle = attachment_metrics(oracle_cut(data, ranked))
        out["oracle_cut_recall@5"], out["oracle_cut_precision"] = oracle["recall@5"], oracle["precision"]
    return out


def oracle_cut(data: Stack, ranked: np.ndarray) -> list[dict[str, Any]]:
    """Rows of the best cut any attach rule could make of this ranking: it is told which developments are
    unrelated (nothing attached) and how many clauses each other one has (its top min(n, 5) attached).

    No threshold can beat it, so its precision at its recall bounds what tuning the rule can reach; only a
    better ranking moves it.
    """
    rows = []
    for item, p in zip(data.items, ranked):
        n = min(len(item["relevant"]), 5)
        top = [data.clause_ids[j] for j in np.argsort(-p, kind="stable")[:n]]
        rows.append({"item": item, "attached": top})
    return rows


def average(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    if len(runs) > 1:
        out["sd_ndcg@5"] = float(np.std([r["ndcg@5"] for r in runs]))
    return out


def cross_validate(data: Stack, seeds: Iterable[int] = SEEDS, folds: int = FOLDS,
                   inner_folds: int = INNER_FOLDS) -> tuple[dict[str, float], list[list[float]]]:
    """Grouped k-fold x seeds CV of the shipped system (models + rule refitted per training fold, gate applied)."""
    runs, rules = [], []
    for seed in seeds:
        attached: list[list[int]] = [[] for _ in range(len(data))]
        possible: list[list[int]] = [[] for _ in range(len(data))]
        probs = np.zeros(data.labels.shape)
        for test in cs.grouped_folds(data.groups, folds, seed):
            train = np.setdiff1d(np.arange(len(data)), test)
            params = data.take(train).fit(seed=seed + 100, folds=inner_folds)
            rules.append(params["rule"])
            held = data.take(test).expanded_by(data.take(train))
            p = probabilities(params, held)
            probs[test] = p
            for i, (a, b) in zip(test, attach_tiers(params, held, p)):
                attached[i], possible[i] = a, b
        runs.append(metrics(data, attached, probs, possible))
    return average(runs), rules


def baselines(clauses: Sequence[Clause], items: Sequence[Mapping[str, Any]], encode: Callable[[list[str]], np.ndarray],
              data: Stack) -> dict[str, dict[str, float]]:
    """Plain BM25 top-5 and plain MiniLM top-5 (whole text vs clause), attached as they rank."""
    from .evaluate import K, Baselines

    base = Baselines(clauses, encode)
    index = {c: j for j, c in enumerate(data.clause_ids)}
    out = {}
    for name, rank in (("bm25 top-5", base.bm25), ("minilm top-5", base.dense)):
        attached = [[index[c] for c in rank(i["title"], i["text"])[:K]] for i in items]
        out[name] = metrics(data, attached)
        out[name]["ranking_ndcg@5"] = out[name]["ndcg@5"]    # it attaches exactly its top 5
    return out


# ------------------------------------------------------------------------------ the work store
def default_work_dir() -> Path:
    """The work store beside the other derived artefacts: `$SCAN_CACHE_DIR/fit-matcher` (see `onnx_export.cache_dir`)."""
    from scanner.onnx_export import cache_dir

    return cache_dir() / "fit-matcher"


class Workbench:
    """Clauses, a caching matcher over a work store and the stacked labelled developments of an eval dir."""

    def __init__(self, eval_dir: Path, work_dir: Path):
        from .analyse import VectorCache
        from .evaluate import policies_dir
        from .store import Store

        self.eval_dir = Path(eval_dir)
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store.open(work_dir / "vectors.db")
        self.cache = VectorCache(self.store)
        self.clauses = load_corpus(policies_dir(self.eval_dir))
        self.encoders = {m: self.cache.encoder(m) for m in MODELS.values()}
        self.matcher = Matcher(self.clauses, self.encoders)
        self.items = labelled_items(self.eval_dir)
        self.data = stack(self.matcher, self.items, encode=self.cache.encode)
        self.matcher.add_labelled(self.items)     # as `analyse` does: the in-sample figures are the shipped system's

    def close(self) -> None:
        self.store.close()

    def in_sample(self) -> dict[str, float]:
        """The shipped literals on the items they were fitted on, through `Matcher.match` (tier 1)."""
        index = {c: j for j, c in enumerate(self.data.clause_ids)}
        matches = [self.matcher.match(i["title"], i["text"], i.get("lang")) for i in self.items]
        attached = [[index[m.clause_id] for m in ms if m.tier == 1] for ms in matches]
        possible = [[index[m.clause_id] for m in ms if m.tier == 2] for ms in matches]
        ranked = probabilities(cs.PARAMS, self.data.expanded_by(self.data, leave_own_thread_out=False))
        return metrics(self.data, attached, ranked, possible)


# ------------------------------------------------------------------------------ judgments retrain the matcher
def judged_developments(store: "Store", clause_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every judged development of `store` with its labels, as the specialists left them.

    Labels per clause (grade `JUDGED_GRADE` = 1 for relevant):

    - judged right or added -> relevant; judged wrong -> not relevant (the latest judgment stands);
    - not judged and not shown by the matcher (neither attached nor "possible" in the stored
      matches) -> not relevant: the specialist reviewed the development and did not add it, and
      the matcher's misses are rare among the ~60 clauses it does not show (CV recall 0.56 of
      ~2.5 relevant clauses: about one missed clause in 60, 1.6 %);
    - not judged but shown (stored tier 1 or 2) -> **unlabelled** (masked out of the fit): taking
      the stored attachment as the label would feed the matcher its own decisions back (a tier-1
      attachment is wrong ~18 % of the time, a tier-2 one ~55 %), so silence is not consent;
    - a development never matched (judgments imported before analysis) -> only its judged clauses
      are labelled.
    """
    index = {c: j for j, c in enumerate(clause_ids)}
    latest = store.judgments.latest()
    out = []
    for uid, by_clause in latest.items():
        row = store.developments.get(uid)
        if row is None:
            continue
        matched = store.vectors.db.execute("select 1 from match_state where development_id = ?", [row["id"]]).fetchone()
        shown = {m["id"] for m in store.vectors.matches_for([row["id"]], tiers=(1, 2))[row["id"]]}
        labels = np.zeros(len(clause_ids))
        mask = np.ones(len(clause_ids), bool) if matched else np.zeros(len(clause_ids), bool)
        for cid in shown:
            if cid in index:
                mask[index[cid]] = False
        verdicts = {}
        for cid, judgment in by_clause.items():
            if cid in index:
                verdicts[cid] = judgment["verdict"]
                labels[index[cid]] = JUDGED_GRADE if judgment["verdict"] in ("right", "added") else 0
                mask[index[cid]] = True
        if not verdicts:
            continue
        out.append({"uid": uid, "title": row["title"] or "", "text": row["text"] or "", "lang": row["lang"],
                    "group": uid, "labels": labels, "mask": mask, "verdicts": verdicts})
    return out


def bundled_usable(clauses: Sequence[Clause], eval_dir: Path) -> bool:
    """The bundled labels apply when every clause they were labelled against is in the corpus, same wording."""
    from .evaluate import policies_dir

    bundled = {(c.id, c.text_hash) for c in load_corpus(policies_dir(eval_dir))}
    return bundled <= {(c.id, c.text_hash) for c in clauses}


def training_stack(matcher: Matcher, bundled: Sequence[Mapping[str, Any]], judged: Sequence[Mapping[str, Any]],
                   encode: Callable[[str, list[str]], Any] | None = None) -> Stack:
    """Bundled labelled developments plus judged ones; a judged development that *is* a bundled one
    (same uid as its id, or the same whitespace-normalised title) corrects that item's labels instead
    of being added twice: wrong -> 0, right/added -> max(grade, 1)."""
    norm = lambda t: " ".join((t or "").split()).casefold()
    by_key = {}
    for i, item in enumerate(bundled):
        by_key[item["id"]] = i
        by_key.setdefault(norm(item["title"]), i)
    base = stack(matcher, list(bundled), encode=encode) if bundled else None
    extra = []
    for d in judged:
        i = by_key.get(d["uid"], by_key.get(norm(d["title"])))
        if base is not None and i is not None:
            for cid, verdict in d["verdicts"].items():
                j = base.clause_ids.index(cid)
                base.labels[i, j] = 0 if verdict == "wrong" else max(base.labels[i, j], JUDGED_GRADE)
        else:
            extra.append(d)
    parts = [base] if base is not None else []
    if extra:
        parts.append(stack(matcher, extra, labels=np.array([d["labels"] for d in extra]),
                           mask=np.array([d["mask"] for d in extra]), encode=encode))
    return Stack.concat(parts)


def refit_from_store(config: "Config", store: "Store", *, eval_dir: Path | None = None,
                     items: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Refit the matcher on the bundled labelled developments plus this database's judged ones.

    Labels of judged developments: `judged_developments`. The parameters (both models and the attach
    rule from grouped out-of-fold probabilities) are stored as JSON in
    the `state` table under `matcher_params`; `analyse` (hence `scan rematch`) then matches with them.
    Vectors go through the store's vector cache, so a second refit encodes only new developments.
    `items` (default: both bundled labelled files) lets the caller restrict the bundled data.
    Returns a summary (developments, judged, rule).
    """
    from .analyse import PARAMS_STATE, VectorCache
    from .errors import UsageError
    from .evaluate import BUNDLED_EVAL

    eval_dir = Path(eval_dir or BUNDLED_EVAL)
    clauses = load_corpus(config.policies)
    cache = VectorCache(store)
    matcher = Matcher(clauses, {m: cache.encoder(m) for m in MODELS.values()})
    judged = judged_developments(store, [c.id for c in clauses])
    use_bundled = bundled_usable(clauses, eval_dir)
    bundled = (list(items) if items is not None else labelled_items(eval_dir)) if use_bundled else []
    if not bundled and len(judged) < MIN_JUDGED_ALONE:
        raise UsageError(f"the corpus is not the one the bundled labels were made for, and {len(judged)} judged "
                         f"developments are too few to refit from alone (at least {MIN_JUDGED_ALONE})")
    data = training_stack(matcher, bundled, judged, encode=cache.encode)
    params = data.fit_all()
    summary = {"developments": len(data), "bundled": len(bundled), "judged": len(judged),
               "unlabelled_cells": int((~data.mask).sum()), "rule": params["base"]["rule"]}
    store.vectors.set_state(PARAMS_STATE, json.dumps({**params, "fitted": summary}))
    return summary


# ------------------------------------------------------------------------------ measuring the judgment refit
def judgments_gain(bench: Workbench, seeds: Iterable[int] = SEEDS) -> dict[str, Any]:
    """Half-split measurement of `refit_from_store`: does a refit with judgments help unseen developments?

    Protocol (per seed, both halves in turn; the held-out half is never in any fit):

    1. Split the 100 labelled developments into halves A and B by thread (`grouped_folds`, k=2).
       B is held out: only scored.
    2. A is split by thread into F (stands in for the bundled data the matcher ships with) and J
       (developments a team crawled, which its specialists judge); F and J swap roles too, so each
       seed gives 4 measurements.
    3. "no judgments": `fit_all` on F; B is attached with it (rule + non-English gate).
    4. "refit with judgments": a real store holds J's developments, matched by the F-model
       (stored tier 1 and 2); a specialist judges each *from its labels*: every attached clause
       right or wrong, every labelled clause the matcher missed added. `refit_from_store` then
       refits on F (as bundled data) + the judged J (labels derived from the judgments, grade 1)
       and B is attached with the stored parameters.
    5. "refit with J's true labels": `fit_all` on F + J with the labelled grades (the ceiling of what
       judgments can give: judgments carry no grade 2).

    The judged half has to be disjoint from the bundled data: judgments of developments whose labels
    are already in the fit add no information, so "bundled = A, judged = A" would measure nothing.

    Measured (3 seeds x 2 halves x 2 roles = 12 measurements, B = 50 developments each, F and J ~25):
    no judgments nDCG@5 0.610, recall@5 0.467, precision 0.848, irrelevant 0.090; refit with the
    judgments of J 0.657 (+0.048), 0.518 (+0.052), 0.825, 0.049; refit with J's true labels 0.682,
    0.550, 0.812, 0.056 (judgments lose grade 2 and leave unjudged "possible" clauses unlabelled).
    """
    from .evaluate import EVAL_URL, eval_config, eval_development
    from .store import Store

    data = bench.data
    arms: dict[str, list[dict[str, float]]] = {"no judgments (fit on F)": [], "refit with judgments of J": [],
                                               "refit with J's true labels": []}
    folder = Path(bench.store.path).parent / "judgments"
    folder.mkdir(exist_ok=True)
    config = eval_config(bench.eval_dir, folder)
    with Store.open(config.database) as store:
        # the store shares the bench's vectors: the work store's cache is copied once
        if not store.vectors.get_state("seeded"):
            store.db.execute("attach database ? as bench", [str(bench.store.path)])
            store.db.execute("insert or ignore into embeddings select * from bench.embeddings")
            store.db.conn.commit()
            store.db.execute("detach database bench")
            store.vectors.set_state("seeded", "1")
        from .analyse import sync_corpus

        _, fingerprint = sync_corpus(config, store)
        rows = {}
        with store.atomic():
            for item in bench.items:
                if store.developments.get(item["id"]) is None:
                    store.developments.add(eval_development(item).row())
        for item in bench.items:
            rows[item["id"]] = store.developments.get(item["id"])
        for seed in seeds:
            halves = cs.grouped_folds(data.groups, 2, seed)
            for h in (0, 1):
                A, B = halves[h], halves[1 - h]
                quarters = cs.grouped_folds([data.groups[i] for i in A], 2, seed + 10)
                for q in (0, 1):
                    F, J = A[quarters[q]], A[quarters[1 - q]]
                    # B sees the clause centroids of what each arm knows: F, F + J's labels, F + J's judgments
                    judged_bank = data.take(J)
                    judged_bank.labels = np.where(judged_bank.labels > 0, float(JUDGED_GRADE), 0.0)
                    with_f = data.take(B).expanded_by(data.take(F))
                    base = data.take(F).fit_all()
                    arms["no judgments (fit on F)"].append(metrics(with_f, attach(base["base"], with_f)))
                    ceiling = data.take(np.concatenate([F, J])).fit()
                    held = data.take(B).expanded_by(data.take(np.concatenate([F, J])))
                    arms["refit with J's true labels"].append(metrics(held, attach(ceiling, held)))
                    held = data.take(B).expanded_by(Stack.concat([data.take(F), judged_bank]))
                    # J in a real store: matched by the F-model, judged from its labels
                    judged_part = data.take(J).expanded_by(data.take(F))
                    p = probabilities(base["base"], judged_part)
                    rule = cs.Rule.parse(base["base"]["rule"])
                    with store.atomic():
                        store.db.execute("delete from judgments")
                        store.vectors.set_state("matcher_params", json.dumps(base))
                        for n, i in enumerate(J):
                            item, row = bench.items[i], rows[bench.items[int(i)]["id"]]
                            t1, t2 = cs._attach(p[n], rule, 0 if judged_part.english[n] else 1)
                            if not judged_part.english[n] and judged_part.head_cos[n] < NON_ENGLISH_MIN_HEAD_COSINE:
                                t1, t2 = [], []
                            store.vectors.save_matches(row["id"], row["content_hash"], fingerprint,
                                                       [{"clause_id": data.clause_ids[j], "score": float(p[n, j]),
                                                         "evidence": "", "tier": tier}
                                                        for tier, js in ((1, t1), (2, t2)) for j in js])
                            relevant = item["relevant"]
                            shown = [data.clause_ids[j] for j in t1]
                            verdicts = [(c, "right" if c in relevant else "wrong") for c in shown]
                            verdicts += [(c, "added") for c in relevant if c not in shown]
                            store.judgments.add([{"development_uid": item["id"], "url": EVAL_URL + item["id"],
                                                  "clause_id": c, "verdict": v, "by": "half-split", "note": None,
                                                  "at": "2026-01-01T00:00:00Z"} for c, v in verdicts])
                    refit_from_store(config, store, eval_dir=bench.eval_dir, items=[bench.items[int(i)] for i in F])
                    from .analyse import stored_params

                    refitted = stored_params(store)
                    arms["refit with judgments of J"].append(metrics(held, attach(refitted["base"], held)))
        with store.atomic():
            store.db.execute("delete from judgments")
            store.vectors.set_state("matcher_params", "")
    out = {name: average(runs) for name, runs in arms.items()}
    out["gain"] = {k: out["refit with judgments of J"][k] - out["no judgments (fit on F)"][k]
                   for k in ("ndcg@5", "recall@5", "precision", "irrelevant_with_clauses")}
    out["measurements"] = len(arms["no judgments (fit on F)"])
    return out


# ------------------------------------------------------------------------------ report
COLUMNS = ("ndcg@5", "ndcg@5_en", "ndcg@5_non_en", "recall@5", "precision", "irrelevant_with_clauses",
           "attached_per_labelled_item", "ranking_ndcg@5")


HEADINGS = ("nDCG@5", "en", "non-en", "recall@5", "precision", "irrelevant", "att/item", "rank nDCG@5")


def format_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    head = f"{'':48s}" + "".join(f"{h:>12s}" for h in HEADINGS)
    lines = [head]
    for name, m in rows.items():
        lines.append(f"{name:48s}" + "".join(f"{m.get(c, math.nan):12.3f}" for c in COLUMNS))
    return "\n".join(lines)


def run(eval_dir: Path, work_dir: Path, *, cv: bool, judgments: bool, write: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    bench = Workbench(eval_dir, work_dir)
    try:
        result: dict[str, Any] = {"items": len(bench.items), "clauses": len(bench.clauses),
                                  "encoded": bench.cache.encoded, "seconds_signals": round(time.perf_counter() - started, 1)}
        result["in_sample_shipped"] = bench.in_sample()
        if cv:
            t = time.perf_counter()
            result["cv"], rules = cross_validate(bench.data)
            result["cv_rules"] = sorted({json.dumps(r) for r in rules})
            result["baselines"] = baselines(bench.clauses, bench.items, bench.encoders[MODELS["minilm"]], bench.data)
            result["seconds_cv"] = round(time.perf_counter() - t, 1)
        if judgments:
            t = time.perf_counter()
            result["judgments"] = judgments_gain(bench)
            result["seconds_judgments"] = round(time.perf_counter() - t, 1)
        if write:
            params = bench.data.fit_all()
            Path(write).write_text(json.dumps(params) + "\n", encoding="utf-8")
            result["written"] = str(write)
    finally:
        bench.close()
    return result


def format_report(result: Mapping[str, Any]) -> str:
    lines = [f"{result['items']} labelled developments, {result['clauses']} clauses "
             f"({result['encoded']} texts encoded, signals in {result['seconds_signals']}s)"]
    rows = {}
    if "cv" in result:
        rows["shipped system, CV (5-fold x 3 seeds, package)"] = result["cv"]
        rows.update({f"plain {k}": v for k, v in result["baselines"].items()})
    rows["shipped literals, in-sample"] = result["in_sample_shipped"]
    lines.append("attached clauses (tier 1); ranking = top-5 of the probabilities")
    lines.append(format_table(rows))
    for name, m in (("CV", result.get("cv")), ("in-sample", result["in_sample_shipped"])):
        if m:
            lines.append(f"{name}: with the \"possible\" tier recall@5 {m['with_possible_recall@5']:.3f} at precision "
                         f"{m['with_possible_precision']:.3f} ({m['possible_per_labelled_item']:.2f} possible per labelled "
                         f"item); the best cut of this ranking (told each item's clause count): recall@5 "
                         f"{m['oracle_cut_recall@5']:.3f} at precision {m['oracle_cut_precision']:.3f}")
    if "cv" in result:
        lines.append(f"sd of CV nDCG@5 over seeds {result['cv'].get('sd_ndcg@5', math.nan):.3f}; "
                     f"rules chosen in the folds: {', '.join(result['cv_rules'])}")
    else:
        lines.append("(cross-validated figures: python -m scanner.fit_matcher --cv)")
    if "judgments" in result:
        j = result["judgments"]
        lines.append(f"\njudgments retrain the matcher: half-split, B held out, F bundled, J judged "
                     f"({j['measurements']} measurements)")
        lines.append(format_table({k: v for k, v in j.items() if isinstance(v, dict) and k != "gain"}))
        lines.append("gain of the refit with judgments: " + ", ".join(f"{k} {v:+.3f}" for k, v in j["gain"].items()))
    if "written" in result:
        lines.append(f"\nparameters (fitted on all {result['items']}) written to {result['written']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from .evaluate import BUNDLED_EVAL

    parser = argparse.ArgumentParser(prog="python -m scanner.fit_matcher", description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=BUNDLED_EVAL, help="eval folder (dev.jsonl, lifecycle-dev.jsonl, policies)")
    parser.add_argument("--work", type=Path, default=None, help=f"work store folder [default: {default_work_dir()}]")
    parser.add_argument("--cv", action="store_true", help="cross-validate the shipped system beside baselines")
    parser.add_argument("--judgments", action="store_true", help="measure the refit with judgments (half-split)")
    parser.add_argument("--write", type=Path, help="fit on all labelled developments and write the parameters JSON here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(args.eval, args.work or default_work_dir(), cv=args.cv, judgments=args.judgments, write=args.write)
    print(json.dumps(result, indent=2, default=float) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
