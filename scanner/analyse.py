"""Embed and match the developments that need it, persisting chunks, vectors and clause matches.

Only new work is done: a development is (re)matched when it is new, its text changed, or the
policy corpus or the matcher's parameters changed (`matching_key`); vectors are looked up by content hash before a model
runs, so unchanged text — a clause, a chunk — is never encoded twice. Pending developments are
taken in batches: every chunk of a batch is encoded in one call per model (across developments),
and each batch's rows are written before the next is read, so memory stays flat on a big crawl.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanner import embed
from scanner.config import Config
from scanner.policies import Clause, corpus_fingerprint, load_corpus
from scanner.store import Store
from scanner.textutil import content_hash

log = logging.getLogger(__name__)

BATCH_DEVELOPMENTS = 32
"""Developments whose chunks are encoded together: big enough for full encoder batches, small enough to stream."""


@dataclass
class AnalyseResult:
    matched: int
    attached: int
    encoded: int
    lifecycle: Any = None  # scanner.lifecycle.LifecycleResult, when the cycle ran it

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"matched": self.matched, "attached": self.attached, "encoded": self.encoded}
        if self.lifecycle is not None:
            out["lifecycle"] = self.lifecycle.as_json()
        return out


class Progress:
    """What long steps report; the CLI shows it as a bar on a terminal and as lines in a log."""

    def stage(self, name: str, total: int = 0) -> None:
        """A new step starts (`total` items, 0 when unknown)."""

    def advance(self, done: int) -> None:
        """`done` items of the current step are finished."""


class VectorCache:
    """An encode function per model that reads and writes the store's vector cache, with a memory in front."""

    def __init__(self, store: Store, *, write: bool = True):
        self.store = store
        self.write = write
        self.encoded = 0
        self._memory: dict[tuple[str, str], np.ndarray] = {}

    def encoder(self, model: str) -> Callable[[list[str]], np.ndarray]:
        return lambda texts: self.encode(model, texts)

    def encode(self, model: str, texts: list[str]) -> np.ndarray:
        """Vectors for `texts` (in order): from memory, else the store, else the model (then saved)."""
        hashes = [content_hash(t) for t in texts]
        wanted = [h for h in dict.fromkeys(hashes) if (model, h) not in self._memory]
        if wanted:
            for h, blob in self.store.vectors.cached(model, wanted).items():
                self._memory[(model, h)] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        first_text = dict(zip(hashes, texts))
        missing = [h for h in dict.fromkeys(hashes) if (model, h) not in self._memory]
        if missing:
            fresh = embed.encode([first_text[h] for h in missing], model)
            if self.write:
                self.store.vectors.save(model, {h: embed.to_blob(v) for h, v in zip(missing, fresh)}, fresh.shape[1])
            self._memory.update({(model, h): v for h, v in zip(missing, fresh)})
            self.encoded += len(missing)
        if not texts:
            return np.zeros((0, embed.model_dim(model)), np.float32)
        return np.stack([self._memory[(model, h)] for h in hashes])

    def forget(self) -> None:
        """Drop the in-memory vectors (after a batch is written)."""
        self._memory.clear()


def sync_corpus(config: Config, store: Store) -> tuple[list[Clause], str]:
    """Load the corpus; when its files changed, mirror it into the store and record each clause's text version."""
    clauses = load_corpus(config.policies)
    fingerprint = corpus_fingerprint(config.policies)
    if store.vectors.get_state("corpus") != fingerprint:
        with store.atomic():
            rows = [c.row() | {"file": str(c.file)} for c in clauses]
            store.vectors.replace_clauses(rows)
            moved = store.workspace.record_versions(rows, {c.id: c.text_hash for c in clauses})
            store.vectors.retire_clauses(moved["removed"])
            store.vectors.set_state("corpus", fingerprint)
        for what, ids in moved.items():
            if ids and store.vectors.get_state("corpus_seen"):
                log.info("policy corpus: %s %s", what, ", ".join(ids))
        store.vectors.set_state("corpus_seen", "1")
    return clauses, fingerprint


def analyse(config: Config, store: Store, *, progress: Progress | None = None) -> AnalyseResult:
    """Chunk, embed and match every development whose text or corpus changed since it was matched."""
    from scanner.match import MODELS, Matcher, chunks_of, detect_langs, texts_to_encode

    progress = progress or Progress()
    clauses, corpus = sync_corpus(config, store)
    fingerprint = matching_key(corpus, store)
    pending = store.vectors.unmatched(fingerprint)
    if not pending:
        return AnalyseResult(0, 0, 0)
    unknown = [r for r in pending if not r["lang"]]
    found = dict(zip((r["id"] for r in unknown), detect_langs([f"{r['title'] or ''}\n{r['text'] or ''}" for r in unknown])))
    _return_freed_memory()
    cache = VectorCache(store)
    progress.stage("loading the language models")
    matcher = Matcher(clauses, encoders={m: cache.encoder(m) for m in MODELS.values()}, params=stored_params(store))
    add_bundled(matcher)
    add_judged(store, matcher)
    progress.stage("matching developments to clauses", len(pending))
    attached = done = 0
    for start in range(0, len(pending), BATCH_DEVELOPMENTS):
        batch = pending[start : start + BATCH_DEVELOPMENTS]
        prepared = []
        needed: dict[str, list[str]] = {}
        for row in batch:
            title, text = row["title"] or "", row["text"] or ""
            lang = row["lang"] or found[row["id"]]
            prepared.append((row, title, text, lang))
            for model, texts in texts_to_encode(title, text, lang).items():
                needed.setdefault(model, []).extend(texts)
        for model, texts in needed.items():  # one encoder call per model for the whole batch
            cache.encode(model, texts)
        with store.atomic():
            for row, title, text, lang in prepared:
                matches = matcher.match(title, text, lang, exclude=row["uid"])
                store.vectors.save_chunks(row["id"], [(c, content_hash(c)) for c in chunks_of(title, text)])
                store.vectors.save_matches(row["id"], row["content_hash"], fingerprint,
                                           [{"clause_id": m.clause_id, "score": m.score, "evidence": m.evidence,
                                             "tier": m.tier} for m in matches])
                if lang and lang != row["lang"]:
                    store.developments.set_lang(row["id"], lang)
                attached += any(m.tier == 1 for m in matches)
        done += len(batch)
        cache.forget()
        _return_freed_memory()
        progress.advance(done)
    embed.release()  # the rest of a cycle (dates, threads, alerts, digest) reads stored vectors only
    _return_freed_memory()
    return AnalyseResult(matched=len(pending), attached=attached, encoded=cache.encoded)


PARAMS_STATE = "matcher_params"
"""`state` key of the matcher parameters refitted with judgments (`scanner.fit_matcher.refit_from_store`)."""


def matching_key(corpus: str, store: Store) -> str:
    """What a stored match was made with: the corpus version, the matcher's parameters (refitted in this
    database, else the shipped ones) and the bundled labels that widen the clauses. A scan release with
    refitted parameters, or a refit, thus re-matches stored developments on the next run instead of
    leaving them as the old matcher saw them. Judgments are not in it: they apply at `scan rematch`."""
    import hashlib
    import json

    from scanner.clause_scorer import PARAMS
    from scanner.evaluate import BUNDLED_EVAL
    from scanner.fit_matcher import LABEL_FILES

    digest = hashlib.sha256((store.vectors.get_state(PARAMS_STATE) or json.dumps(PARAMS, sort_keys=True)).encode())
    for name in LABEL_FILES:
        if (BUNDLED_EVAL / name).is_file():
            digest.update((BUNDLED_EVAL / name).read_bytes())
    return f"{corpus}:{digest.hexdigest()[:12]}"


def stored_params(store: Store) -> dict[str, Any] | None:
    """The refitted matcher parameters stored in this database, or None (then the shipped ones serve)."""
    import json

    value = store.vectors.get_state(PARAMS_STATE)
    return json.loads(value) if value else None


def _return_freed_memory() -> None:
    """Hand the heap a batch freed back to the OS (glibc keeps it otherwise), so memory stays flat batch to batch."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: nothing to trim
            pass


def add_bundled(matcher: object) -> int:
    """The bundled labelled developments widen their clauses (`Matcher.add_labelled`) when the corpus holds
    every clause they were labelled against, in the same wording; otherwise nothing (returns 0)."""
    from scanner.evaluate import BUNDLED_EVAL
    from scanner.fit_matcher import bundled_usable, labelled_items

    if not BUNDLED_EVAL.is_dir() or not bundled_usable(matcher.clauses, BUNDLED_EVAL):  # type: ignore[attr-defined]
        return 0
    return matcher.add_labelled(labelled_items(BUNDLED_EVAL))  # type: ignore[attr-defined]


def add_judged(store: Store, matcher: object) -> int:
    """Every judged development joins the matcher's clause centroids (left out of them when it is itself rescored)."""
    latest = store.judgments.latest()
    count = 0
    for uid, by_clause in latest.items():
        row = store.developments.get(uid)
        if row is None:
            continue
        verdicts = {c: j["verdict"] for c, j in by_clause.items()}
        matcher.add_judged(row["title"] or "", row["text"] or "",  # type: ignore[attr-defined]
                           [c for c, v in verdicts.items() if v == "right"],
                           [c for c, v in verdicts.items() if v == "wrong"],
                           [c for c, v in verdicts.items() if v == "added"], group=uid)
        count += 1
    return count
