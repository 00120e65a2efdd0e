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
- Fusion: each signal is standardised over the filtered developments (z-scores) and summed with
  `WEIGHTS`. A very specific lexical hit stands far above the rest in z, so names still win; a
  query far from every clause gives a flat clause signal that does not disturb the others.
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
SNIPPET_CHARS = 240

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
    """Developments ranked by the fused signals; `weights` (default `WEIGHTS`) may switch one off."""
    filters = filters or {}
    weights = WEIGHTS if weights is None else weights
    ids = np.array(sorted(store.developments.filtered_ids(**filters)), np.int64)
    if not len(ids) or not query.strip() or limit <= 0:
        return []
    signals: dict[str, np.ndarray] = {}
    if weights.get("bm25"):
        lexical = store.developments.fts_search(query, FTS_DEPTH, **filters)
        if lexical:
            signals["bm25"] = _scatter(ids, [d for d, _ in lexical], [s for _, s in lexical], fill=0.0)
    best_chunk: dict[int, int] | _BestChunks = {}
    index = search_index(store, model) if (weights.get("dense") or weights.get("clauses")) else None
    if index is not None and index.has_vectors:
        vector = np.asarray((encode_query or _query_encoder(model))(query), np.float32)
        if weights.get("dense") and len(index.chunk_ids):
            signals["dense"], best_chunk = _dense(index, ids, vector)
        if weights.get("clauses") and len(index.match_developments):
            signals["clauses"] = _clause_route(index, ids, vector, query)
    if not signals:
        return []
    total = sum(weights[name] * scoring.zscore_fill_lowest(values) for name, values in signals.items())
    # A development no signal reached (no query word, never embedded or matched) is not a result.
    reached = np.zeros(len(ids), bool)
    for name, values in signals.items():
        reached |= values > 0 if name == "bm25" else np.isfinite(values)
    order = [i for i in np.argsort(-total, kind="stable") if reached[i]][:limit]
    return [Hit(int(ids[i]), float(total[i]), best_chunk.get(int(ids[i]))) for i in order]


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
                                  row["title"] or "", row["text"] or "")
    return items


def snippet(query: str, chunks: list[tuple[int, str]], best_chunk: int | None, title: str, text: str) -> str:
    """A short plain-text excerpt: the sentence sharing most words with the query.

    Sentences of the dense signal's best chunk are preferred; if none of them shares a word with
    the query (or the best chunk is the title), every sentence of the text competes. With no
    shared word at all, the best chunk's first sentence (else the text's first) is shown.
    """
    words = _stems(query)
    body = [(cid, t) for cid, t in chunks if t.strip() != title.strip()] or [(None, text)]
    preferred = [s for cid, t in body if cid == best_chunk for s in embed.split_sentences(t)]
    everything = [s for _, t in body for s in embed.split_sentences(t)]
    pool = preferred if any(_overlap(words, s) for s in preferred) else everything
    if not any(_overlap(words, s) for s in pool):
        pool = preferred or everything
    if not pool:
        return _shorten(" ".join(title.split()), SNIPPET_CHARS)
    best = max(range(len(pool)), key=lambda i: (_overlap(words, pool[i]), -i))
    return _shorten(" ".join(pool[best].split()), SNIPPET_CHARS)


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


def _clause_route(index: SearchIndex, ids: np.ndarray, vector: np.ndarray, query: str) -> np.ndarray:
    """Per development: the best (query-clause similarity + log attachment score) over its clauses."""
    from .match import tokens

    parts = []
    if index.clause_vectors is not None:
        parts.append((1.0, scoring.zscore(index.clause_vectors @ vector)))
    words = tokens(query)
    if words:
        parts.append((CLAUSE_BM25_WEIGHT, scoring.zscore(index.clause_bm25.get_scores(words))))
    if not parts:
        return np.full(len(ids), np.nan)
    clause_score = sum(w * s for w, s in parts) / sum(w for w, _ in parts)
    route = clause_score[index.match_clauses] + index.match_log_scores
    slot = _slots(ids, index.match_developments)
    best = np.full(len(ids), -np.inf)
    np.maximum.at(best, slot[slot >= 0], route[slot >= 0])
    best[np.isinf(best)] = np.nan
    return best


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

