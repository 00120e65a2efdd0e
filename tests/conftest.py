"""Shared fixtures: no test touches real state, and the embedding model loads once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every state path at the test's tmp dir, as llm's conftest does with LLM_USER_PATH."""
    for var in ("SCAN_CONFIG", "SCAN_DB", "SCAN_SMTP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(folder: Path, body: str) -> Path:
    """A sources.yaml in `folder`; tests pass it with --config."""
    path = folder / "sources.yaml"
    path.write_text(body, encoding="utf-8")
    return path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
