"""Measure clause matching on the labelled dev set, beside plain BM25 and plain dense baselines.

Run: `python -m scanner.evaluate /work/shared/eval [--json]`. The baselines are computed in the
same run on the same data, so a change to `match.py` is judged against them, not against
remembered numbers. The metric functions are shared with search and alert evaluation.
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
from typing import Any

import numpy as np

from . import embed
from .match import Matcher, tokens
from .policies import Clause, load_corpus

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
    return {m: cached(m) for m in (embed.DEFAULT_MODEL, embed.MULTILINGUAL_MODEL)}


def evaluate(eval_dir: Path) -> dict[str, Any]:
    """All clause-matching metrics for dev.jsonl against policies/ in `eval_dir`."""
    clauses = load_corpus(eval_dir / "policies")
    items = read_jsonl(eval_dir / "dev.jsonl")
    encoders = memo_encoders()
    started = time.perf_counter()
    matcher = Matcher(clauses, encoders)
    setup_seconds = time.perf_counter() - started
    baselines = Baselines(clauses, encoders[embed.DEFAULT_MODEL])

    rows, started = [], time.perf_counter()
    for item in items:
        ranked = [m.clause_id for m in matcher.rank(item["title"], item["text"], item.get("lang"))]
        attached = [m.clause_id for m in matcher.match(item["title"], item["text"], item.get("lang"))]
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
    return mean(float(bool(matcher.match(i["title"], i["text"], NON_ENGLISH_PROBE_LANG))) for i in irrelevant)


def format_report(result: Mapping[str, Any]) -> str:
    """A plain-text table: our method beside both baselines."""
    ranking, attached = result["ranking"], result["attached"]
    lines = [f"dev set: {result['items']} items, {result['clauses']} clauses; "
             f"nDCG@5 over labelled items, gains 2/1",
             f"{'clause ranking':24s}{'scan':>8s}{'bm25':>8s}{'dense':>8s}"]
    for metric in ("ndcg@5", "ndcg@5_en", "ndcg@5_non_en", "recall@5"):
        lines.append(f"{metric:24s}" + "".join(f"{ranking[m][metric]:8.3f}" for m in ("scan", "bm25", "dense")))
    lines.append("attached clauses (scan.match)")
    for metric, value in attached.items():
        lines.append(f"  {metric:34s}{value:8.3f}")
    lines.append(f"  {'irrelevant_with_clauses_if_non_en':34s}"
                 f"{result['irrelevant_with_clauses_routed_non_english']:8.3f}")
    seconds = result["seconds"]
    lines.append(f"time: matcher setup {seconds['matcher_setup']}s, "
                 f"{seconds['per_item_rank_and_match']}s per item (rank + match, uncached)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path, help="folder with dev.jsonl and policies/")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    result = evaluate(args.eval_dir)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
