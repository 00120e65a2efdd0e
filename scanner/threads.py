"""Regulatory threads: developments that are stages of one matter (consultation → proposal → final rule
→ guidance → enforcement, with law-firm commentary along the way), months apart, from different
sources, named differently and sometimes in other languages.

`link_threads(items)` scores every pair of developments on language-independent evidence and joins
pairs that clear a threshold (average link, so one loose pair cannot chain two matters together):

- `cosine` of the caller's multilingual document vectors (USE-m3 in the pipeline);
- shared **instrument references**: EU/CFR/RIN/docket numbers, numbered instruments ("No. 1,870/2026"
  and "nº 1.870" are one key), named acts with years ("Online Gaming Act, 2025"), quoted CJK titles
  (《…》「…」), weighted by how rare they are in the batch;
- shared **specific dates**: two texts that both mention 1 October 2026 or 30 June 2027 (in any
  language, "令和8年10月1日" included) are very likely about the same matter, rare dates more so;
- the same jurisdiction (a different one needs a shared instrument reference), and a plausible
  stage order in time (an enforcement release does not come before its consultation).

Thread ids are `thread-<id of the earliest member>` (earliest published, then smallest id), so a rerun
over the same developments gives the same ids and a new member does not rename an existing thread
unless it predates it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from scanner.keydates import find_mentions

# Tuned by leave-one-thread-out cross-validation on the dev set (scanner.evaluate_lifecycle).
MIN_SCORE = 0.15
"""Average-link score two clusters must reach to merge: the middle of the dev plateau (F1 = 1.0 from 0.1
to 0.225); leave-one-thread-out CV of the whole choice gives pairwise F1 0.95."""
COSINE_FLOOR = 0.30
"""Below this document cosine nothing links, whatever references are shared (boilerplate statutes)."""
WEIGHTS = {"cosine": 1.0, "refs": 0.1, "dates": 0.4, "terms": 0.05, "other_jurisdiction": -0.6, "order": -0.3}
"""Shared specific dates carry the most beyond the cosine; instrument references and names add little
once the cosine is in (they are also shared by related but distinct matters in one jurisdiction)."""
LINKAGE = "average"
COSINE_CENTRE = 0.45
"""Cosine of two unrelated same-jurisdiction regulatory texts: the score's zero point for the cosine term."""

STAGE_ORDER = {"consultation": 0, "proposal": 1, "final": 2, "guidance": 3, "in-force": 3, "enforcement": 4}


@dataclass(frozen=True)
class ThreadInput:
    id: str
    title: str
    text: str
    published: date | None
    source: str
    jurisdiction: str | None
    lang: str | None
    stage: str | None
    vector: np.ndarray = field(repr=False, compare=False, hash=False)


# --- evidence ---------------------------------------------------------------------------------

_EU_NUMBER = re.compile(r"\((?:EU|EC|EEC|EU, Euratom)\)\s*(?:No\.?\s*)?(\d{2,4})/(\d{1,4})")
_CFR = re.compile(r"(\d{1,2})\s*C\.?F\.?R\.?\s*(?:Part\s*|§+\s*)?(\d{1,4})", re.I)
_RIN = re.compile(r"\bRIN\s*:?\s*(\d{4}-[A-Z]{2}\d{2})\b")
_DOCKET = re.compile(r"\b(?:Docket\s*(?:No\.?|Number|ID)?\s*:?\s*)?([A-Z]{2,6}[-–]\d{4}[-–]\d{3,5}(?:[-–]\d{4})?)\b")
_NUMBERED = re.compile(
    r"(?i)(?:\bNo\.?|\bNos\.?|\bNr\.?|nº|n°|n\.|núm\.?|número|numero|\bLaw|\bLei|\bLey|Portaria|Ordinance|Decree|Resolution|"
    r"delibera|Verordnung|Gesetz)\s*(?:SPA/MF\s*)?(?:n[º°o.]\s*)?(\d{1,3}(?:[.,]\d{3})+|\d{3,6})(?:\s*/\s*(\d{2,4}))?"
)
_NAMED_ACT = re.compile(
    r"((?:[A-Z][\w'’-]+|of|and|the|on|for|in|de|du|des|la|le|del|der|die|das|für|zur|zum|\(|\))(?:[\s,]+(?:[A-Z][\w'’-]+|of|and|the|on|for|in|\(|\)|de|del|der|für|zur)){1,10}"
    r"\s+(?:Act|Rules|Regulations?|Code|Directive|Law|Ordinance|Decree|Provisions|Principles|Guidelines|Standards|Gesetz|Verordnung|Ley|Lei|Legge|Loi))"
    r",?\s*((?:19|20)\d\d)?"
)
_CJK_TITLE = re.compile(r"[《「『]([^》」』]{3,40})[》」』]")
_STOP_LEADING = re.compile(r"(?i)^(?:the|of|and|on|for|in|under|de|la|le|del|der|die|das|although|while|since|after|before|"
                           r"when|if|this|these|its|their|our|following|according|as|by|with|unlike|like)\s+")


def references(text: str) -> set[str]:
    """Keys of the legal instruments a text cites, normalised across spellings and languages."""
    refs: set[str] = set()
    for m in _EU_NUMBER.finditer(text):
        refs.add(f"eu:{m[1]}/{m[2]}")
    for m in _CFR.finditer(text):
        refs.add(f"cfr:{m[1]}/{m[2]}")
    for m in _RIN.finditer(text):
        refs.add(f"rin:{m[1]}")
    for m in _DOCKET.finditer(text):
        refs.add(f"docket:{m[1].replace('–', '-')}")
    for m in _NUMBERED.finditer(text):
        number = re.sub(r"[.,]", "", m[1])
        if len(number) >= 3 and not (1900 <= int(number) <= 2100 and not m[2]):
            refs.add(f"no:{int(number)}")
    for m in _NAMED_ACT.finditer(text):
        name = _STOP_LEADING.sub("", " ".join(m[1].replace("(", " ").replace(")", " ").split())).lower()
        while _STOP_LEADING.match(name):
            name = _STOP_LEADING.sub("", name)
        if len(name.split()) >= 3:
            refs.add(f"act:{name}")
    for m in _CJK_TITLE.finditer(text):
        title = re.sub(r"[（(][^）)]*[）)]", "", m[1]).strip()
        if len(title) >= 3:
            refs.add(f"cjk:{title}")
    return refs


def specific_dates(text: str, published: date | None) -> set[date]:
    """Every day-precise date with a written year (a bare "June 1" is too common to match on)."""
    return {m.day for m in find_mentions(text, published) if m.explicit_year}


_TERM = re.compile(r"\b[A-Z][A-Za-z]*[A-Z][\w-]*\b|\b[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,})+\b")


def terms(text: str) -> set[str]:
    """Acronyms and multi-word capitalised names (brand, programme and authority names)."""
    return {t.group().lower() for t in _TERM.finditer(text)}


@dataclass
class _Doc:
    item: ThreadInput
    refs: set[str]
    dates: set[date]
    terms: set[str]


def _idf(sets: list[set]) -> dict:
    frequency: Counter = Counter()
    for s in sets:
        frequency.update(s)
    n = len(sets)
    return {key: math.log((n + 1) / (count + 0.5)) for key, count in frequency.items()}


def _shared(a: set, b: set, idf: dict, cap: float) -> float:
    """IDF mass of the shared keys, squashed to 0..1 (cap = the mass that counts as certain)."""
    mass = sum(idf.get(k, 0.0) for k in a & b)
    return min(mass / cap, 1.0)


FEATURES = ("cosine", "refs", "dates", "terms", "other_jurisdiction", "order")
BACKGROUND_DAYS = 200
"""Dates more than this long before the earlier of two developments are background ("disclosure has been
mandatory since 22 March 2024"), shared by related but distinct matters, so they do not count."""


def pair_features(a: _Doc, b: _Doc, idf_refs: dict, idf_dates: dict, idf_terms: dict) -> dict[str, float]:
    cosine = float(np.dot(a.item.vector, b.item.vector))
    same_place = bool(a.item.jurisdiction and a.item.jurisdiction == b.item.jurisdiction)
    if (a.item.jurisdiction or "GLOBAL").upper() == "GLOBAL" or (b.item.jurisdiction or "GLOBAL").upper() == "GLOBAL":
        same_place = a.item.source == b.item.source  # a global company page: the same company's pages only
    dates_a, dates_b = a.dates, b.dates
    earliest = min((d for d in (a.item.published, b.item.published) if d), default=None)
    if earliest:
        dates_a = {d for d in dates_a if (earliest - d).days <= BACKGROUND_DAYS}
        dates_b = {d for d in dates_b if (earliest - d).days <= BACKGROUND_DAYS}
    return {
        "cosine": cosine,
        "refs": _shared(a.refs, b.refs, idf_refs, 4.0),
        "dates": _shared(dates_a, dates_b, idf_dates, 4.0),
        "terms": _shared(a.terms, b.terms, idf_terms, 8.0),
        "other_jurisdiction": 0.0 if same_place else 1.0,
        "order": 1.0 if _implausible_order(a.item, b.item) else 0.0,
    }


def _implausible_order(a: ThreadInput, b: ThreadInput) -> bool:
    """A later stage published clearly before an earlier one, or two items claiming the same non-commentary stage."""
    sa, sb = STAGE_ORDER.get(a.stage or ""), STAGE_ORDER.get(b.stage or "")
    if sa is None or sb is None or not a.published or not b.published:
        return False
    if a.stage == b.stage and a.stage in ("consultation", "proposal", "final"):
        return True
    first, second = (sa, sb) if a.published <= b.published else (sb, sa)
    return first > second and abs((a.published - b.published).days) > 14


def _documents(items: Sequence[ThreadInput]) -> list[_Doc]:
    return [
        _Doc(item, references(f"{item.title}\n{item.text}"), specific_dates(item.text, item.published), terms(f"{item.title}\n{item.text}"))
        for item in items
    ]


def feature_matrices(items: Sequence[ThreadInput]) -> dict[str, np.ndarray]:
    """Each pair feature as a symmetric n x n matrix (computed once; weights are applied afterwards)."""
    docs = _documents(items)
    idf_refs = _idf([d.refs for d in docs])
    idf_dates = _idf([d.dates for d in docs])
    idf_terms = _idf([d.terms for d in docs])
    n = len(docs)
    matrices = {name: np.zeros((n, n)) for name in FEATURES}
    for i in range(n):
        for j in range(i + 1, n):
            for name, value in pair_features(docs[i], docs[j], idf_refs, idf_dates, idf_terms).items():
                matrices[name][i, j] = matrices[name][j, i] = value
    return matrices


def score_matrix(features: dict[str, np.ndarray], weights: dict[str, float] | None = None) -> np.ndarray:
    """Pair scores: weighted evidence, with the cosine centred on what unrelated texts reach; -1 below the floor."""
    w = weights or WEIGHTS
    score = w["cosine"] * (features["cosine"] - COSINE_CENTRE)
    for name in FEATURES[1:]:
        score = score + w[name] * features[name]
    score = np.where(features["cosine"] < COSINE_FLOOR, -1.0, score)
    np.fill_diagonal(score, 0.0)
    return score


def cluster(scores: np.ndarray, threshold: float, method: str = LINKAGE) -> list[list[int]]:
    """Agglomerative clusters whose linkage score (mean pair score for "average") stays >= threshold."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    n = len(scores)
    if n < 2:
        return [[i] for i in range(n)]
    distance = np.clip(2.0 - scores, 0.0, None)  # monotone: higher score, smaller distance
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method=method)
    labels = fcluster(tree, t=2.0 - threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values())


def link_threads(items: Sequence[ThreadInput], threshold: float | None = None,
                 weights: dict[str, float] | None = None) -> dict[str, str]:
    """Development id → thread id for every development that shares a thread with another; standalone
    developments are absent. Thread id: `thread-<id of the earliest member>`."""
    if len(items) < 2:
        return {}
    scores = score_matrix(feature_matrices(items), weights)
    result: dict[str, str] = {}
    for members in cluster(scores, MIN_SCORE if threshold is None else threshold):
        if len(members) < 2:
            continue
        earliest = min((items[i] for i in members), key=lambda it: (it.published or date.max, it.id))
        for i in members:
            result[items[i].id] = f"thread-{earliest.id}"
    return result
