"""Embed and match the developments that need it, persisting chunks, vectors and clause matches.

Only new work is done: a development is (re)matched when it is new, its text changed, or the
policy corpus changed (by fingerprint); vectors are looked up by content hash before the model
runs, so unchanged text — a clause, a chunk — is never encoded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scanner import embed
from scanner.config import Config
from scanner.policies import Clause, corpus_fingerprint, load_corpus
from scanner.store import Store

log = logging.getLogger(__name__)


@dataclass
class AnalyseResult:
    matched: int
    attached: int
    encoded: int


class VectorCache:
    """An encode function per model that reads and writes the store's embeddings table."""

    def __init__(self, store: Store):
        self.store = store
        self.encoded = 0

    def encoder(self, model: str) -> Callable[[list[str]], np.ndarray]:
        return lambda texts: self.encode(model, texts)

    def encode(self, model: str, texts: list[str]) -> np.ndarray:
        hashes = [embed.content_hash(t) for t in texts]
        cached = self.store.cached_vectors(model, list(dict.fromkeys(hashes)))
        missing = list(dict.fromkeys(h for h in hashes if h not in cached))
        if missing:
            first_text = {h: t for h, t in zip(hashes, texts)}
            fresh = embed.encode([first_text[h] for h in missing], model)
            blobs = {h: embed.to_blob(v) for h, v in zip(missing, fresh)}
            self.store.save_vectors(model, blobs, fresh.shape[1])
            cached.update(blobs)
            self.encoded += len(missing)
        dim = len(next(iter(cached.values()))) // 4 if cached else embed.model_dim(model)
        return np.stack([embed.from_blob(cached[h], dim) for h in hashes]) if texts else np.zeros((0, dim), np.float32)


def chunks_of(title: str, text: str) -> list[str]:
    """What a development is cut into for matching and search: its title, then sentence windows."""
    return [c for c in [title.strip(), *embed.chunk_text(text)] if c]


def sync_corpus(config: Config, store: Store) -> tuple[list[Clause], str]:
    """Load the corpus and mirror it into the store when its files changed."""
    clauses = load_corpus(config.policies)
    fingerprint = corpus_fingerprint(config.policies)
    if store.get_state("corpus") != fingerprint:
        with store.atomic():
            store.replace_clauses(
                {"id": c.id, "policy": c.policy, "title": c.title, "file": str(c.file), "line": c.line, "text": c.text}
                for c in clauses
            )
            store.set_state("corpus", fingerprint)
    return clauses, fingerprint


def analyse(config: Config, store: Store, *, on_progress: Callable[[int, int], None] | None = None) -> AnalyseResult:
    """Chunk, embed and match every development whose text or corpus changed since it was matched."""
    from scanner.match import Matcher, detect_lang

    clauses, fingerprint = sync_corpus(config, store)
    pending = store.unmatched(fingerprint)
    cache = VectorCache(store)
    if not pending:
        return AnalyseResult(0, 0, 0)
    matcher = Matcher(clauses, encoders={m: cache.encoder(m) for m in (embed.DEFAULT_MODEL, embed.MULTILINGUAL_MODEL)})
    attached = 0
    for done, row in enumerate(pending, 1):
        title, text = row["title"] or "", row["text"] or ""
        lang = detect_lang(f"{title}\n{text}")
        chunks = chunks_of(title, text)
        matches = matcher.match(title, text, lang)
        with store.atomic():
            store.save_chunks(row["id"], [(c, embed.content_hash(c)) for c in chunks])
            store.save_matches(
                row["id"], row["content_hash"], fingerprint, lang,
                [{"clause_id": m.clause_id, "score": m.score, "evidence": m.evidence} for m in matches],
            )
        attached += bool(matches)
        if on_progress:
            on_progress(done, len(pending))
    return AnalyseResult(matched=len(pending), attached=attached, encoded=cache.encoded)
