"""Ranked developments for a free-text query: BM25, dense chunk vectors and the clause route, fused.

How a query is answered (each choice measured with `python -m scanner.evaluate`):

- Lexical: SQLite FTS5 BM25 over title and text (title weighted 3), terms OR-ed, filters in SQL.
  Names ("ReelPass", "OFAC") are found here.
- Dense: the query is encoded with MiniLM (ONNX int8: no torch, ~0.2 s cold) and compared with
  every stored MiniLM chunk vector (title + sentence windows of English developments, written by
  `analyse`); a development scores its best chunk.
- Clause route: the query is compared with the policy clauses (MiniLM cosine and BM25 over the
  clause text), and a development scores through the clauses `analyse` attached to it (clause
  similarity + log attachment score, best clause). Matching already did the hard, cross-lingual
  work, so an English question finds the Korean or Japanese development filed under its clause.
  On the dev queries this is the strongest single signal, and the one that crosses languages
  (the multilingual encoders load too slowly for a cold query).
- Fusion: each signal is standardised over the whole store (z-scores; filters only restrict the
  ranked list afterwards, so they never re-rank) and the weighted mean of the z-scores a
  development has is taken. No BM25 hit and no MiniLM vector say nothing about a non-English
  development, so those count as missing there, not as the lowest value.
- Relevance floor (`evidence`): a development is a result only with absolute evidence: a best
  chunk cosine, or a cosine of the query with one of its attached clauses, above a floor, or most
  of the query's (IDF-weighted) non-stopword terms. A query about nothing stored returns nothing.
- A database without vectors (nothing analysed yet) is searched by BM25 alone.

Vectors, clause data and matches are loaded once into numpy arrays per database file and
reloaded only when `Store.search_marker` changes, so a long-lived process pays for them once.
Each result is the contract's development with `score` (the fused score: higher is better, only
comparable within one query) and `snippet`. No printing here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import developments as development_views, embed, scoring
from .store import Store
from .policies import Clause
from .textutil import content_hash

DENSE_MODEL = embed.DEFAULT_MODEL
"""Vectors searched at query time: MiniLM int8 encodes a query in milliseconds, without torch."""
WEIGHTS = {"bm25": 0.4, "dense": 0.4, "clauses": 1.0}
"""Signal weights on z-scores; dev nDCG@10 stays 0.86-0.89 for bm25 and dense anywhere in 0.2-0.6."""
CLAUSE_BM25_WEIGHT = 0.5
"""Within the clause route: BM25 over clause text beside the dense cosine (both z-scored)."""
FTS_DEPTH = 1000
"""How many BM25 hits are scored; developments beyond it count as no lexical match."""
SNIPPET_CHARS = 300
DENSE_FLOOR = 0.34
"""Relevance floors (see `evidence`), chosen by 5-fold cross-validation over the dev queries
(best held-out nDCG@10, most permissive among ties) under the constraint that made-up off-topic
queries return nothing even with every floor 0.04 lower: such queries reach MiniLM cosines of at
most 0.28 with a chunk and 0.21 with a clause; relevant developments keep ~95 % (CV)."""
CLAUSE_FLOOR = 0.32
LEXICAL_FLOOR = 0.6
STOPWORDS = frozenset(
    "a about all an and any are as at be by can do does for from has have how i in into is it its of on or our "
    "over than that the their them they this to under was what when where which who why will with your".split())

QueryEncoder = Callable[[str], np.ndarray]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchIndex:
    """What a query is scored against, as arrays: chunk vectors, clause vectors and BM25, matches."""

    chunk_ids: np.ndarray
    chunk_developments: np.ndarray
    segment_developments: np.ndarray
    segment_starts: np.ndarray
    chunk_vectors: np.ndarray
    clause_ids: list[str]
    clause_vectors: np.ndarray | None
    clause_bm25: Any
    match_developments: np.ndarray
    match_clauses: np.ndarray
    match_log_scores: np.ndarray

    @classmethod
    def load(cls, store: Store, model: str) -> "SearchIndex":
        rows = store.vectors.chunk_rows(model)
        if rows:
            vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)
            vectors = vectors.astype(np.float32)
        else:
            vectors = np.zeros((0, 0), np.float32)
        developments = np.array([r[1] for r in rows], np.int64)
        segments, starts = np.unique(developments, return_index=True)  # rows come grouped by development
        clauses = store.vectors.clauses()
        clause_ids = [c["id"] for c in clauses]
        position = {c: i for i, c in enumerate(clause_ids)}
        matches = [m for m in development_views.attached_pairs(store) if m[1] in position]
        return cls(
            chunk_ids=np.array([r[0] for r in rows], np.int64),
            chunk_developments=developments,
            segment_developments=segments,
            segment_starts=starts,
            chunk_vectors=vectors,
            clause_ids=clause_ids,
            clause_vectors=_clause_vectors(store, clauses, model),
            clause_bm25=_clause_bm25(clauses),
            match_developments=np.array([m[0] for m in matches], np.int64),
            match_clauses=np.array([position[m[1]] for m in matches], np.int64),
            match_log_scores=np.log(np.maximum([m[2] for m in matches], 1e-6)) if matches else np.zeros(0),
        )

    @property
    def has_vectors(self) -> bool:
        return len(self.chunk_ids) > 0 or self.clause_vectors is not None


_indexes: dict[tuple[str, str], tuple[Any, SearchIndex]] = {}
_indexes_lock = threading.Lock()


def search_index(store: Store, model: str = DENSE_MODEL) -> SearchIndex:
    """The index of `model` for this database, cached in-process until the store changes."""
    key = (str(store.path.resolve()), model)
    marker = store.vectors.marker()
    with _indexes_lock:
        cached = _indexes.get(key)
        if cached and cached[0] == marker:
            return cached[1]
    index = SearchIndex.load(store, model)
    with _indexes_lock:
        _indexes[key] = (marker, index)
    return index


@dataclass(frozen=True)
class Hit:
    """One ranked development (row id) before it becomes the contract's JSON."""

    development_id: int
    score: float
    best_chunk: int | None


def rank(
    store: Store,
    query: str,
    *,
    filters: dict[str, Any] | None = None,
    limit: int = 20,
    model: str = DENSE_MODEL,
    encode_query: QueryEncoder | None = None,
    weights: dict[str, float] | None = None,
) -> list[Hit]:
    """Developments ranked by the fused signals; `weights` (default `WEIGHTS`) may switch one off.

    Scores are computed over the whole store and only then restricted to the filters, so a
    filtered list is exactly the unfiltered list with the other developments left out. Only
    developments with absolute evidence of relevance (`evidence`) are returned.
    """
    filters = filters or {}
    weights = WEIGHTS if weights is None else weights
    if not query.strip() or limit <= 0:
        return []
    keep = store.developments.filtered_ids(**filters) if any(filters.values()) else None
    if keep is not None and not keep:
        return []
    ids = np.array(sorted(store.developments.filtered_ids()), np.int64)
    if not len(ids):
        return []
    signals: dict[str, np.ndarray] = {}
    lexical_cover = np.zeros(len(ids))
    if weights.get("bm25"):
        lexical = store.developments.fts_search(query, FTS_DEPTH)
        if lexical:
            signals["bm25"] = _scatter(ids, [d for d, _ in lexical], [s for _, s in lexical], fill=0.0)
            lexical_cover = _lexical_coverage(store, ids, query)
    best_chunk: dict[int, int] | _BestChunks = {}
    english = np.ones(len(ids), bool)  # without vectors nothing says a development is not English
    dense_best = clause_best = np.full(len(ids), np.nan)
    index = search_index(store, model) if (weights.get("dense") or weights.get("clauses")) else None
    if index is not None and index.has_vectors:
        vector = np.asarray((encode_query or _query_encoder(model))(query), np.float32)
        if len(index.chunk_ids):
            english = _slots(index.segment_developments, ids) >= 0  # chunk vectors are written for English only
        if weights.get("dense") and len(index.chunk_ids):
            signals["dense"], best_chunk = _dense(index, ids, vector)
            dense_best = signals["dense"]
        if weights.get("clauses") and len(index.match_developments):
            signals["clauses"], clause_best = _clause_route(index, ids, vector, query)
    if not signals:
        return []
    total = _fuse(signals, weights, english)
    evident = evidence(dense_best, clause_best, lexical_cover)
    if keep is not None:
        evident &= np.isin(ids, np.fromiter(keep, np.int64, len(keep)))
    order = [i for i in np.argsort(-total, kind="stable") if evident[i]][:limit]
    return [Hit(int(ids[i]), float(total[i]), best_chunk.get(int(ids[i]))) for i in order]


def evidence(dense: np.ndarray, clause: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """Which developments show absolute evidence of relevance (any one suffices).

    z-scores always rank something first, so the floor is on raw values: the best chunk's MiniLM
    cosine (`DENSE_FLOOR`), the query's MiniLM cosine with a clause attached to the development
    (`CLAUSE_FLOOR`: how a non-English development qualifies), or the share of the query's
    non-stopword terms (IDF-weighted) the development contains (`LEXICAL_FLOOR`: names).
    """
    with np.errstate(invalid="ignore"):
        return (np.nan_to_num(dense, nan=-1.0) >= DENSE_FLOOR) | (np.nan_to_num(clause, nan=-1.0) >= CLAUSE_FLOOR) | (
            lexical >= LEXICAL_FLOOR)


def _fuse(signals: dict[str, np.ndarray], weights: dict[str, float], english: np.ndarray) -> np.ndarray:
    """Weighted mean of the z-scores (over the whole store) each development has, times the total weight.

    No BM25 hit and no MiniLM vector say nothing about a non-English development (the query's
    English words cannot occur there, and MiniLM vectors exist for English only), so those
    signals count as missing for it rather than as the lowest value; for English developments
    (and for the clause route everywhere) a missing value is the lowest seen.
    """
    total = np.zeros(len(english))
    present = np.zeros(len(english))
    for name, values in signals.items():
        z = scoring.zscore_fill_lowest(values)
        if name == "bm25":
            missing = ~english & ~(values > 0)
        elif name == "dense":
            missing = ~english & ~np.isfinite(values)
        else:
            missing = np.zeros(len(english), bool)
        total += np.where(missing, 0.0, weights[name] * z)
        present += np.where(missing, 0.0, weights[name])
    return total / np.maximum(present, 1e-12) * sum(weights[name] for name in signals)


def _lexical_coverage(store: Store, ids: np.ndarray, query: str) -> np.ndarray:
    """Per development: the IDF-weighted share of the query's non-stopword terms it contains.

    A term no development contains weighs most, so a query of unknown words finds nothing
    through one common word it happens to include ("quarterly football results").
    """
    from .store.developments import fts_terms

    terms = [t for t in dict.fromkeys(fts_terms(query)) if t.strip('"') not in STOPWORDS]
    if not terms:
        return np.zeros(len(ids))
    covered = np.zeros(len(ids))
    weights = 0.0
    for term in terms:
        hits = [d for d, _ in store.developments.fts_search(term.strip('"'), FTS_DEPTH)]
        idf = float(np.log((len(ids) + 1) / (len(hits) + 0.5)))
        weights += idf
        covered += idf * (_scatter(ids, hits, [1.0] * len(hits), fill=0.0) if hits else 0.0)
    return covered / weights if weights > 0 else covered


def search(
    store: Store,
    query: str,
    *,
    since: str | None = None,
    until: str | None = None,
    kinds: Iterable[str] = (),
    jurisdictions: Iterable[str] = (),
    sources: Iterable[str] = (),
    limit: int = 20,
    encode_query: QueryEncoder | None = None,
) -> list[dict[str, Any]]:
    """Developments best matching `query` under the filters, as contract JSON + score + snippet.

    `since`/`until` are inclusive ISO dates on the published (else first-seen) day; kinds,
    jurisdictions and source ids match case-insensitively, several values of one facet OR-ed.
    An empty database, or a query with no words, gives `[]`.
    """
    filters = {"since": since, "until": until, "kinds": list(kinds),
               "jurisdictions": list(jurisdictions), "sources": list(sources)}
    hits = rank(store, query, filters=filters, limit=limit, encode_query=encode_query)
    if not hits:
        return []
    rows = {r["id"]: r for r in store.developments.list(ids=[h.development_id for h in hits])}
    hits = [h for h in hits if h.development_id in rows]
    chunks = store.vectors.chunk_texts(rows)
    items = development_views.as_json(store, [rows[h.development_id] for h in hits])
    for item, hit in zip(items, hits):
        row = rows[hit.development_id]
        item["score"] = round(hit.score, 4)
        item["snippet"] = snippet(query, chunks.get(hit.development_id, []), hit.best_chunk,
                                  row["title"] or "", row["text"] or "", row["summary"] or "")
    return items


def snippet(query: str, chunks: list[tuple[int, str]], best_chunk: int | None, title: str, text: str,
            summary: str = "") -> str:
    """The whole sentence of the text that shares most query words (crude stems), as plain text.

    Fragments the sentence splitter leaves ("2.", "Instant Payout.", "Bonn, 29.") never show
    while a real sentence exists (`_is_sentence`). Ties go to a sentence of the dense signal's
    best chunk, then to the earlier one. With no shared word, the summary's first sentence (else
    the text's first) is shown; a sentence longer than `SNIPPET_CHARS` is cut at a word.
    """
    words = _stems(query)
    sentences = _sentences(text)
    whole = [s for s in sentences if _is_sentence(s)]
    near = {_clean(s) for cid, t in chunks if cid == best_chunk for s in embed.split_sentences(t)}
    scored = [(_overlap(words, s), s in near, -i, s) for i, s in enumerate(whole)]
    best = max(scored, default=None)
    if best is not None and best[0] > 0:
        return _shorten(best[3], SNIPPET_CHARS)
    opening = [c for c in _sentences(summary) if _is_sentence(c)][:1]
    fallback = opening or whole[:1] or sorted(sentences, key=len, reverse=True)[:1] or [" ".join(title.split())]
    return _shorten(fallback[0], SNIPPET_CHARS)


_BULLET = re.compile(r"^(?:[-–•*·]\s+)+")
SENTENCE_MIN_WORDS = 5
"""A snippet is a sentence of at least this many words (CJK: `SENTENCE_MIN_CHARS` characters)."""
SENTENCE_MIN_CHARS = 12


_ORDINAL_END = re.compile(r"(?:^|\s)\d{1,3}\.$")
_LIST_NUMBER = re.compile(r"^\d{1,3}\.$")


def _sentences(text: str) -> list[str]:
    """The text's sentences, cleaned; a split after an ordinal ("Bonn, 29." + "September 2026 …",
    "2." + "Platforms must …") is joined back, since such a piece is never a sentence of its own."""
    out: list[str] = []
    carry = ""
    for piece in (_clean(s) for s in embed.split_sentences(text)):
        if not piece:
            continue
        piece = f"{carry} {piece}" if carry and not _LIST_NUMBER.match(carry) else piece  # "2." alone is a list mark
        carry = piece if _ORDINAL_END.search(piece) and not _is_sentence(piece) else ""
        if not carry:
            out.append(piece)
    return out + ([carry] if carry else [])


def _clean(sentence: str) -> str:
    return _BULLET.sub("", " ".join(sentence.split()))


def _is_sentence(sentence: str) -> bool:
    words = _WORD.findall(sentence)
    if len(words) >= SENTENCE_MIN_WORDS:
        return True
    wide = sum(1 for ch in sentence if ord(ch) > 0x2E80)  # CJK scripts write no spaces
    return wide >= SENTENCE_MIN_CHARS


def _dense(index: SearchIndex, ids: np.ndarray, vector: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Best chunk cosine per development (in `ids` order) and which chunk it was.

    Chunks are stored grouped by development, so the best of each group is one `reduceat`
    instead of a sort of every chunk score: the difference between ~70 and ~20 ms at 100k chunks.
    """
    sims = index.chunk_vectors @ vector
    best_per_segment = np.maximum.reduceat(sims, index.segment_starts)
    slot = _slots(ids, index.segment_developments)
    inside = slot >= 0
    best = np.full(len(ids), np.nan)
    best[slot[inside]] = best_per_segment[inside]
    return best, _BestChunks(index, sims)


class _BestChunks:
    """Which chunk scored best for a development, worked out only for the few that are shown."""

    def __init__(self, index: SearchIndex, sims: np.ndarray):
        self.index = index
        self.sims = sims

    def get(self, development_id: int, default: int | None = None) -> int | None:
        index = self.index
        at = int(np.searchsorted(index.segment_developments, development_id))
        if at >= len(index.segment_developments) or index.segment_developments[at] != development_id:
            return default
        start = int(index.segment_starts[at])
        end = int(index.segment_starts[at + 1]) if at + 1 < len(index.segment_starts) else len(self.sims)
        return int(index.chunk_ids[start + int(np.argmax(self.sims[start:end]))])


def _clause_route(index: SearchIndex, ids: np.ndarray, vector: np.ndarray, query: str) -> tuple[np.ndarray, np.ndarray]:
    """Per development: the best (query-clause similarity + log attachment score) over its clauses,
    and the best raw MiniLM cosine of the query with one of its clauses (for `evidence`)."""
    from .match import tokens

    parts = []
    cosines = index.clause_vectors @ vector if index.clause_vectors is not None else None
    if cosines is not None:
        parts.append((1.0, scoring.zscore(cosines)))
    words = tokens(query)
    if words:
        parts.append((CLAUSE_BM25_WEIGHT, scoring.zscore(index.clause_bm25.get_scores(words))))
    if not parts:
        return np.full(len(ids), np.nan), np.full(len(ids), np.nan)
    clause_score = sum(w * s for w, s in parts) / sum(w for w, _ in parts)
    route = clause_score[index.match_clauses] + index.match_log_scores
    slot = _slots(ids, index.match_developments)
    best = np.full(len(ids), -np.inf)
    np.maximum.at(best, slot[slot >= 0], route[slot >= 0])
    best[np.isinf(best)] = np.nan
    closest = np.full(len(ids), -np.inf)
    if cosines is not None:
        np.maximum.at(closest, slot[slot >= 0], cosines[index.match_clauses][slot >= 0].astype(np.float64))
    closest[np.isinf(closest)] = np.nan
    return best, closest


def _slots(ids: np.ndarray, development_ids: np.ndarray) -> np.ndarray:
    """Position of each development id in the sorted `ids`, or -1 when it is filtered out."""
    pos = np.searchsorted(ids, development_ids)
    pos = np.minimum(pos, len(ids) - 1)
    return np.where(ids[pos] == development_ids, pos, -1)


def _scatter(ids: np.ndarray, keys: list[int], values: list[float], fill: float) -> np.ndarray:
    out = np.full(len(ids), fill, dtype=np.float64)
    slot = _slots(ids, np.array(keys, np.int64))
    out[slot[slot >= 0]] = np.array(values, np.float64)[slot >= 0]
    return out


def _clause_vectors(store: Store, clauses: list[dict[str, Any]], model: str) -> np.ndarray | None:
    """The clause vectors `analyse` cached (text as `match.Matcher` encodes it), or None if any is missing."""
    if not clauses:
        return None
    hashes = [content_hash(Clause.from_row(c).embedding_text) for c in clauses]
    found = store.vectors.cached(model, hashes)
    if len(found) < len(set(hashes)):
        return None
    vectors = np.stack([np.frombuffer(found[h], dtype="<f4") for h in hashes]).astype(np.float32)
    return vectors


def _clause_bm25(clauses: list[dict[str, Any]]) -> Any:
    from rank_bm25 import BM25Okapi

    from .match import tokens

    if not clauses:
        return None
    return BM25Okapi([tokens(f"{c['policy']}\n{c['title']}\n{c['text']}") for c in clauses])


_SUFFIX = re.compile(r"(?:ing|ers|er|ed|es|s)$")


def _stems(text: str) -> set[str]:
    """Crude stems (common English suffix off, first 5 characters): 'gifting', 'gifts' and 'gift' meet."""
    words = (w for w in _WORD.findall(text.lower()) if len(w) > 2 or not w.isascii())
    return {(_SUFFIX.sub("", w) if len(w) > 3 and w.isascii() else w)[:5] for w in words}


def _overlap(words: set[str], sentence: str) -> int:
    return len(words & _stems(sentence))


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _query_encoder(model: str) -> QueryEncoder:
    return lambda query: embed.encode([query], model)[0]

