"""The quality harness: clause matching, search and alerts on the labelled dev set, beside baselines.

Run: `python -m scanner.evaluate [EVAL_DIR] [--json] [--work DIR] [--cv]` (default: the bundled copy of
../shared/eval). Clause attachment is scored by `Matcher` on every labelled development of both
files (dev.jsonl and lifecycle-dev.jsonl, 100 items); those figures are in-sample for the shipped
scorer (it was fitted on them), so `--cv` adds the grouped cross-validated figures of
`scanner.fit_matcher` beside them. The dev developments are inserted through `Store.add_development` into a real
store and run through `scanner.analyse.analyse`, so the attached clauses and search results
measured are exactly what `scan` stores and serves. Plain BM25 and plain dense baselines are
computed in the same run on the same data, so a change is judged against them, not against
remembered numbers. `--work DIR` keeps the store; a rerun there re-encodes nothing unchanged.
`tests/test_quality_gate.py` checks `store_quality` against floors pinned in
`tests/quality_baseline.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import embed
from .match import MODELS, Matcher, tokens
from .policies import Clause, load_corpus
from .records import Development
from .textutil import content_hash

if TYPE_CHECKING:
    from .config import Config
    from .store import Store

K = 5
NON_ENGLISH_PROBE_LANG = "xx"
"""Passed as `lang` to route English off-topic texts through the non-English path (a stress test)."""


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with graded gains (grade 2 = gain 2, grade 1 = gain 1); 0.0 if nothing is relevant."""
    ideal = _dcg(sorted(relevant.values(), reverse=True)[:k])
    return _dcg([relevant.get(item, 0) for item in ranked[:k]]) / ideal if ideal > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant items found in the first k; 0.0 if nothing is relevant."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def precision(predicted: Iterable[str], relevant: Iterable[str]) -> tuple[int, int]:
    """(hits, predicted count), so callers can micro-average over many items."""
    predicted = list(predicted)
    return len(set(predicted) & set(relevant)), len(predicted)


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else math.nan


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))


def search_ndcg_at_10(search: Callable[[str], Sequence[str]], queries: Sequence[Mapping[str, Any]]) -> float:
    """Hook for `scanner.search`: mean nDCG@10 of development IDs returned per query in queries-dev.jsonl."""
    return mean(ndcg_at_k(list(search(q["query"])), q["relevant"], 10) for q in queries)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


class Baselines:
    """Plain BM25 and plain MiniLM cosine, whole development vs each clause's title and text."""

    def __init__(self, clauses: Sequence[Clause], encode: Callable[[list[str]], np.ndarray]):
        from rank_bm25 import BM25Okapi

        texts = [f"{c.title}\n{c.text}" for c in clauses]
        self.ids = [c.id for c in clauses]
        self._bm25 = BM25Okapi([tokens(t) for t in texts])
        self._encode = encode
        self._vectors = encode(texts)

    def bm25(self, title: str, text: str) -> list[str]:
        return self._ranked(self._bm25.get_scores(tokens(f"{title}\n{text}")))

    def dense(self, title: str, text: str) -> list[str]:
        return self._ranked(self._vectors @ self._encode([f"{title}\n{text}"])[0])

    def _ranked(self, scores: np.ndarray) -> list[str]:
        return [self.ids[i] for i in np.argsort(-np.asarray(scores), kind="stable")]


def memo_encoders() -> dict[str, Callable[[list[str]], np.ndarray]]:
    """In-memory caching encoders, the same shape as the store's, so repeated texts embed once."""
    def cached(model: str) -> Callable[[list[str]], np.ndarray]:
        memory: dict[str, np.ndarray] = {}

        def encode(texts: list[str]) -> np.ndarray:
            missing = [t for t in dict.fromkeys(texts) if t not in memory]
            if missing:
                memory.update(zip(missing, embed.encode(missing, model)))
            return np.stack([memory[t] for t in texts])
        return encode
    return {m: cached(m) for m in MODELS.values()}


def evaluate(eval_dir: Path, work_dir: Path | None = None, cv: bool = False) -> dict[str, Any]:
    """Every metric of the README for `eval_dir`, measured on a store built and analysed in `work_dir`."""
    import tempfile

    from .analyse import VectorCache

    eval_dir = Path(eval_dir)
    with tempfile.TemporaryDirectory(prefix="scan-eval-") as tmp:
        folder = Path(work_dir) if work_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        _, store, analysed = build_eval_store(eval_dir, folder)
        analyse_seconds = time.perf_counter() - started
        with store:
            cache = VectorCache(store)
            encoders = {m: cache.encoder(m) for m in MODELS.values()}
            result = clause_quality(eval_dir, encoders)
            if cv:
                from .fit_matcher import cross_validate, labelled_items, stack

                matcher = Matcher(load_corpus(policies_dir(eval_dir)), encoders)
                result["attached_cv"] = cross_validate(stack(matcher, labelled_items(eval_dir), encode=cache.encode))[0]
            quality = store_quality(store, eval_dir, label_ids(store, read_jsonl(eval_dir / "dev.jsonl")))
            result["attached_stored"] = quality["attached"]
            result["search"] = {**quality["search"], **search_baselines(eval_dir, encoders[embed.DEFAULT_MODEL])}
            result["search"].update(search_variants(store, eval_dir))
            if "alerts" in quality:
                result["alerts"] = quality["alerts"]
            result["seconds"].update({
                "analyse_store": round(analyse_seconds, 1), "analyse_encoded": analysed.encoded,
                "search_p50_ms": quality["search_p50_ms"]})
    return result


def clause_quality(eval_dir: Path, encoders: Mapping[str, Callable[[list[str]], np.ndarray]]) -> dict[str, Any]:
    """Clause ranking (scan vs baselines) and attachment, scored in memory by `Matcher`."""
    from .analyse import add_bundled
    from .fit_matcher import labelled_items

    clauses = load_corpus(policies_dir(eval_dir))
    items = labelled_items(eval_dir)   # dev.jsonl and lifecycle-dev.jsonl
    started = time.perf_counter()
    matcher = Matcher(clauses, encoders)
    add_bundled(matcher)          # as `analyse` does
    setup_seconds = time.perf_counter() - started
    baselines = Baselines(clauses, encoders[embed.DEFAULT_MODEL])

    rows, started = [], time.perf_counter()
    for item in items:
        ranked = [m.clause_id for m in matcher.rank(item["title"], item["text"], item.get("lang"))]
        attached = [m.clause_id for m in matcher.match(item["title"], item["text"], item.get("lang")) if m.tier == 1]
        rows.append({"item": item, "scan": ranked, "attached": attached})
    match_seconds = time.perf_counter() - started
    for row in rows:
        item = row["item"]
        row["bm25"] = baselines.bm25(item["title"], item["text"])
        row["dense"] = baselines.dense(item["title"], item["text"])
    return {
        "items": len(items), "clauses": len(clauses),
        "ranking": {name: ranking_metrics(rows, name) for name in ("scan", "bm25", "dense")},
        "attached": attachment_metrics(rows),
        "irrelevant_with_clauses_routed_non_english": probe_non_english(matcher, items),
        "seconds": {"matcher_setup": round(setup_seconds, 2),
                    "per_item_rank_and_match": round(match_seconds / max(len(items), 1), 3)},
    }


def store_quality(store: "Store", eval_dir: Path, labels: Mapping[int, str]) -> dict[str, Any]:
    """What `scan` serves from this store: stored clause attachments, search nDCG@10, alerts.

    `labels` maps development row ids to dev ids (`label_ids`); other developments (e.g. tracked
    competitor pages) take part in search but count as irrelevant. Shared with the quality gate.
    """
    from .search import rank

    eval_dir = Path(eval_dir)
    items = read_jsonl(eval_dir / "dev.jsonl")
    queries = read_jsonl(eval_dir / "queries-dev.jsonl")
    by_label = {label: row_id for row_id, label in labels.items()}
    stored = store.vectors.matches_for(by_label.values())
    rows = [{"item": item, "attached": [m["id"] for m in stored.get(by_label.get(item["id"]), [])]}
            for item in items if item["id"] in by_label]
    timings: list[float] = []

    def scan_search(query: str) -> list[str]:
        started = time.perf_counter()
        hits = rank(store, query, limit=10)
        timings.append(time.perf_counter() - started)
        return [labels.get(h.development_id, f"row-{h.development_id}") for h in hits]

    result: dict[str, Any] = {
        "developments_labelled": len(rows),
        "attached": attachment_metrics(rows),
        "search": {"scan": search_ndcg_at_10(scan_search, queries)},
        "search_p50_ms": round(1000 * float(np.median(timings)), 1) if timings else math.nan,
    }
    subscriptions = eval_dir / "subscriptions-dev.json"
    if subscriptions.is_file():
        from .evaluate_alerts import alert_quality

        quality = alert_quality(store, json.loads(subscriptions.read_text(encoding="utf-8")), labels)
        result["alerts"] = {k: quality[k] for k in ("threshold", "precision", "recall", "alerts") if k in quality}
        result["alerts"]["leave_one_out"] = quality["leave_one_out"]
    return result


def search_baselines(eval_dir: Path, encode: Callable[[list[str]], np.ndarray]) -> dict[str, float]:
    """Plain BM25 (rank_bm25 over title + text) and plain MiniLM cosine of query vs whole text."""
    from rank_bm25 import BM25Okapi

    items = read_jsonl(Path(eval_dir) / "dev.jsonl")
    queries = read_jsonl(Path(eval_dir) / "queries-dev.jsonl")
    ids = [i["id"] for i in items]
    bm25 = BM25Okapi([tokens(f"{i['title']}\n{i['text']}") for i in items])
    vectors = encode([f"{i['title']}\n{i['text']}" for i in items])
    query_vectors = dict(zip([q["query"] for q in queries], encode([q["query"] for q in queries])))

    def ranked(scores: np.ndarray) -> list[str]:
        return [ids[i] for i in np.argsort(-np.asarray(scores), kind="stable")]

    return {"bm25": search_ndcg_at_10(lambda q: ranked(bm25.get_scores(tokens(q))), queries),
            "dense": search_ndcg_at_10(lambda q: ranked(vectors @ query_vectors[q]), queries)}


SEARCH_VARIANTS = {
    "fts_only": (embed.DEFAULT_MODEL, {"bm25": 1.0}),
    "dense_chunks_only": (embed.DEFAULT_MODEL, {"dense": 1.0}),
    "clause_route_only": (embed.DEFAULT_MODEL, {"clauses": 1.0}),
}
"""Ablations of `scan search`: one signal alone."""


def search_variants(store: "Store", eval_dir: Path) -> dict[str, float]:
    from .search import rank

    queries = read_jsonl(Path(eval_dir) / "queries-dev.jsonl")
    labels = {r["id"]: r["uid"] for r in store.developments.list()}
    return {name: search_ndcg_at_10(
                lambda q, m=model, w=weights: [labels[h.development_id] for h in rank(store, q, limit=10, model=m, weights=w)],
                queries)
            for name, (model, weights) in SEARCH_VARIANTS.items()}


def label_ids(store: "Store", items: Iterable[Mapping[str, Any]]) -> dict[int, str]:
    """Development row id → dev id: by uid (the harness's store), else by whitespace-normalised title."""
    items = list(items)
    known = {i["id"] for i in items}
    by_title = {_norm_title(i["title"]): i["id"] for i in items}
    out = {}
    for row in store.developments.list():
        label = row["uid"] if row["uid"] in known else by_title.get(_norm_title(row["title"] or ""))
        if label:
            out[row["id"]] = label
    return out


def _norm_title(title: str) -> str:
    return " ".join(title.split()).casefold()


EVAL_URL = "https://eval.invalid/"


def eval_config(eval_dir: Path, folder: Path) -> "Config":
    """A real scan config whose database lives in `folder` and whose corpus is the eval policies."""
    from .config import parse_config

    policies = policies_dir(eval_dir).resolve()
    text = f"database: scanner.db\npolicies: {json.dumps(str(policies))}\nsources: []\n"
    return parse_config(text, base=Path(folder))


def build_eval_store(eval_dir: Path, folder: Path) -> tuple["Config", "Store", Any]:
    """dev.jsonl inserted through `Store.add_development` and run through `analyse`, as `scan` would.

    Each development's uid is its dev id, so search results and stored matches map straight
    back to the labels. Returns the config, the open store and the analyse result.
    """
    from .analyse import analyse
    from .store import Store

    config = eval_config(eval_dir, folder)
    store = Store.open(config.database)
    with store.atomic():
        for item in read_jsonl(Path(eval_dir) / "dev.jsonl"):
            store.developments.add(eval_development(item).row())
    return config, store, analyse(config, store)


def eval_development(item: Mapping[str, Any]) -> Development:
    """A labelled item as the development `scan` would store (its uid is the label id)."""
    return Development(
        uid=item["id"], source=source_slug(item["source"]), kind=item["kind"], url=EVAL_URL + item["id"],
        canonical_url=EVAL_URL + item["id"], title=item["title"], text=item["text"], summary=item["text"][:200],
        published=item["published"], content_hash=content_hash(f"{item['title']}\n{item['text']}"),
        jurisdiction=item.get("jurisdiction"), lang=item.get("lang"))


def eval_corpus_hash(eval_dir: Path) -> str:
    """sha256 over the labelled files and the policy corpus: a pinned baseline is only valid for it."""
    import hashlib

    eval_dir = Path(eval_dir)
    digest = hashlib.sha256()
    files = [eval_dir / n for n in ("dev.jsonl", "queries-dev.jsonl", "subscriptions-dev.json")]
    files += sorted(policies_dir(eval_dir).glob("*.md"))
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def policies_dir(eval_dir: Path) -> Path:
    """`policies/` inside the eval folder (../shared/eval layout), else beside it (the bundled copy)."""
    inside = Path(eval_dir) / "policies"
    return inside if inside.is_dir() else Path(eval_dir).parent / "policies"


def source_slug(name: str) -> str:
    return "-".join(tokens(name))[:40] or "source"


def ranking_metrics(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, float]:
    """nDCG@5 (all, English, non-English) and recall@5 of a full ranking, over labelled items."""
    labelled = [r for r in rows if r["item"]["relevant"]]
    ndcg = {id(r): ndcg_at_k(r[key], r["item"]["relevant"], K) for r in labelled}
    english = [r for r in labelled if r["item"].get("lang") == "en"]
    other = [r for r in labelled if r["item"].get("lang") != "en"]
    return {"ndcg@5": mean(ndcg.values()),
            "ndcg@5_en": mean(ndcg[id(r)] for r in english),
            "ndcg@5_non_en": mean(ndcg[id(r)] for r in other),
            "recall@5": mean(recall_at_k(r[key], r["item"]["relevant"], K) for r in labelled)}


def attachment_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Quality of the attached clauses: what users actually see."""
    labelled = [r for r in rows if r["item"]["relevant"]]
    irrelevant = [r for r in rows if not r["item"]["relevant"]]
    hits = total = 0
    for row in rows:
        h, n = precision(row["attached"], row["item"]["relevant"])
        hits, total = hits + h, total + n
    by_lang = {lang: [r for r in labelled if (r["item"].get("lang") == "en") == (lang == "en")]
               for lang in ("en", "non_en")}
    return {"ndcg@5": mean(ndcg_at_k(r["attached"], r["item"]["relevant"], K) for r in labelled),
            "ndcg@5_en": mean(ndcg_at_k(r["attached"], r["item"]["relevant"], K) for r in by_lang["en"]),
            "ndcg@5_non_en": mean(ndcg_at_k(r["attached"], r["item"]["relevant"], K) for r in by_lang["non_en"]),
            "recall@5": mean(recall_at_k(r["attached"], r["item"]["relevant"], K) for r in labelled),
            "precision": hits / total if total else math.nan,
            "attached_per_labelled_item": mean(len(r["attached"]) for r in labelled),
            "irrelevant_with_clauses": mean(float(bool(r["attached"])) for r in irrelevant)}


def probe_non_english(matcher: Matcher, items: Sequence[Mapping[str, Any]]) -> float:
    """Share of off-topic items that get clauses when scored by the non-English path.

    The dev set has no off-topic non-English items, so this is the closest honest check of the
    non-English gate (cross-lingual scores are noisier, so the true rate may be higher).
    """
    irrelevant = [i for i in items if not i["relevant"]]
    return mean(float(any(m.tier == 1 for m in matcher.match(i["title"], i["text"], NON_ENGLISH_PROBE_LANG)))
                for i in irrelevant)


def format_report(result: Mapping[str, Any]) -> str:
    """Plain-text tables: scan beside both baselines, for clause matching and for search."""
    ranking, attached = result["ranking"], result["attached"]
    lines = [f"labelled developments: {result['items']} (dev.jsonl + lifecycle-dev.jsonl), {result['clauses']} clauses; "
             f"nDCG@5 over labelled items, gains 2/1; match() = the shipped scorer on the items it was fitted on "
             f"(in-sample), stored = dev.jsonl analysed into a store, CV = grouped 5-fold x 3 seeds (fit_matcher)",
             f"{'clause ranking':24s}{'scan':>8s}{'bm25':>8s}{'dense':>8s}"]
    for metric in ("ndcg@5", "ndcg@5_en", "ndcg@5_non_en", "recall@5"):
        lines.append(f"{metric:24s}" + "".join(f"{ranking[m][metric]:8.3f}" for m in ("scan", "bm25", "dense")))
    stored = result.get("attached_stored", {})
    cv = result.get("attached_cv")
    lines.append(f"{'attached clauses':36s}{'match()':>8s}{'stored':>8s}" + (f"{'CV':>8s}" if cv else ""))
    for metric, value in attached.items():
        lines.append(f"  {metric:34s}{value:8.3f}{stored.get(metric, math.nan):8.3f}"
                     + (f"{cv.get(metric, math.nan):8.3f}" if cv else ""))
    if not cv:
        lines.append("  (match() is in-sample; cross-validated figures: --cv, or python -m scanner.fit_matcher --cv)")
    lines.append(f"  {'irrelevant_with_clauses_if_non_en':34s}"
                 f"{result['irrelevant_with_clauses_routed_non_english']:8.3f}")
    if "search" in result:
        search = result["search"]
        lines.append(f"search nDCG@10 over queries-dev.jsonl{'scan':>9s}{'bm25':>8s}{'dense':>8s}")
        lines.append(f"  {'':35s}" + "".join(f"{search[m]:8.3f}" for m in ("scan", "bm25", "dense")))
        for name in SEARCH_VARIANTS:
            if name in search:
                lines.append(f"  ablation {name:26s}{search[name]:8.3f}")
    if "alerts" in result:
        alerts = result["alerts"]
        lines.append(f"alerts at threshold {alerts.get('threshold')}: precision {alerts.get('precision', math.nan):.3f}, "
                     f"recall {alerts.get('recall', math.nan):.3f}, {alerts.get('alerts')} alerts")
    seconds = result["seconds"]
    lines.append(f"time: matcher setup {seconds['matcher_setup']}s, "
                 f"{seconds['per_item_rank_and_match']}s per item (rank + match, cached vectors)")
    if "analyse_store" in seconds:
        lines.append(f"      analyse into the store {seconds['analyse_store']}s ({seconds['analyse_encoded']} texts encoded), "
                     f"search p50 {seconds['search_p50_ms']} ms")
    return "\n".join(lines)


BUNDLED_EVAL = Path(__file__).resolve().parent / "data" / "eval"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path, nargs="?", default=BUNDLED_EVAL,
                        help="folder with dev.jsonl, queries-dev.jsonl and policies/ (or ../policies) "
                             "[default: the bundled copy]")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--work", type=Path, help="build the store here and keep it (reruns reuse its vectors)")
    parser.add_argument("--cv", action="store_true", help="add the grouped cross-validated attachment figures (scanner.fit_matcher)")
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    result = evaluate(args.eval_dir, args.work, cv=args.cv)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
