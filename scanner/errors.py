"""One base for every error scan explains to its user, so a caller catches `ScanError` and prints it.

Each subclass carries where the problem is (a file and line, a database path, a source id), and
its message is one line a user can act on. The CLI maps `UsageError` to exit code 2 and every
other `ScanError` to exit code 1.
"""

from __future__ import annotations


class ScanError(Exception):
    """A problem scan can explain in one line: bad config, unreadable corpus, database trouble, unknown id."""


class UsageError(ScanError):
    """The request itself is malformed (a bad address, an option that conflicts): exit code 2."""


class NotFoundError(ScanError):
    """An id, name or URL that names nothing stored; the message suggests the closest known ones."""


def closest(value: str, known: list[str], limit: int = 3) -> str:
    """`did you mean A, B?` text for an unknown id, or the known ones when nothing is close."""
    import difflib

    near = difflib.get_close_matches(value, known, n=limit, cutoff=0.5)
    if near:
        return "did you mean " + ", ".join(near) + "?"
    if not known:
        return "none are known"
    shown = ", ".join(known[:8]) + (", …" if len(known) > 8 else "")
    return f"known: {shown}"
