"""Small text and file helpers every stage shares: the content hash and atomic writes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import date
from pathlib import Path


def content_hash(text: str) -> str:
    """sha256 of the text with whitespace runs folded: the key for "same text" and for cached vectors.

    Folding whitespace means a page re-served with other line breaks is still the same text, and
    its vectors (which whitespace does not change) are found in the cache.
    """
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def write_atomic(target: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temp file beside `target`, fsync, then rename: readers see the old or the new file, never half."""
    target = Path(target)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def iso_day(value: str | None, name: str) -> str | None:
    """A YYYY-MM-DD day as given on a command line or in a URL, or a `UsageError` naming the option."""
    from scanner.errors import UsageError

    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"{name} {value!r} is not a date like 2026-11-18") from None
