"""Specialists correct the machine: judgments of a development's clauses, kept forever and portable.

A judgment is (development, clause, verdict, who, when, note) with verdict `right` (the attached
clause is correct), `wrong` (it must not be attached) or `added` (attach it although the matcher
did not). The latest judgment of a pair is what stands, and every output applies it
(`scanner.developments.apply_judgments`): re-matching, a corpus change or a rebuilt database never
undo it. Judgments are keyed by the development's public id, which comes from its canonical URL,
so an exported JSONL file re-imports into a fresh database before the crawl has even run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from scanner import developments
from scanner.errors import NotFoundError, UsageError, closest
from scanner.policies import CLAUSE_ID
from scanner.store import VERDICTS, Store, utcnow


def judge(
    store: Store,
    development: str,
    *,
    right: Sequence[str] = (),
    wrong: Sequence[str] = (),
    add: Sequence[str] = (),
    by: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Record judgments of one development's clauses; nothing is stored unless every id is known.

    Returns the development's JSON with the judgments applied, and the rows recorded.
    """
    row = developments.find(store, development)
    verdicts = [(c, "right") for c in right] + [(c, "wrong") for c in wrong] + [(c, "added") for c in add]
    if not verdicts:
        raise UsageError("nothing to record: give --right, --wrong or --add with a clause id")
    known = known_clause_ids(store)
    seen: dict[str, str] = {}
    for clause_id, verdict in verdicts:
        if clause_id not in known:
            raise NotFoundError(f"no clause {clause_id!r} ({closest(clause_id, sorted(known))})")
        if seen.get(clause_id, verdict) != verdict:
            raise UsageError(f"clause {clause_id} is given as both {seen[clause_id]} and {verdict}")
        seen[clause_id] = verdict
    now = utcnow()
    rows = [{"development_uid": row["uid"], "url": row["url"], "clause_id": c, "verdict": v, "by": by, "note": note,
             "at": now} for c, v in seen.items()]
    store.judgments.add(rows)
    return {"development": developments.as_json(store, [row])[0], "recorded": [_public(r) for r in rows]}


def known_clause_ids(store: Store) -> set[str]:
    """Clauses of the current corpus and any the corpus ever had (a judgment may name a removed one)."""
    return {c["id"] for c in store.vectors.clauses()} | set(store.workspace.known_clause_ids())


def listing(store: Store) -> list[dict[str, Any]]:
    return [_public(r) for r in store.judgments.all()]


def export_jsonl(store: Store, path: Path) -> int:
    """Every judgment, oldest first, one JSON object a line (`-` for stdout is the caller's job)."""
    from scanner.textutil import write_atomic

    rows = listing(store)
    write_atomic(Path(path), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    return len(rows)


def import_jsonl(store: Store, lines: Iterable[str], source: str = "input") -> dict[str, int]:
    """Add the judgments of an export; ones already present (same pair, verdict, author and time) are skipped.

    Every line is checked before anything is stored, so a bad file changes nothing.
    """
    parsed = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            row = {"development_uid": str(item["development"]), "url": item.get("url"), "clause_id": str(item["clause"]),
                   "verdict": str(item["verdict"]), "by": item.get("by"), "note": item.get("note"), "at": str(item["at"])}
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{source}:{number}: not a judgment line ({type(exc).__name__}: {exc}); "
                             "expected JSON with development, clause, verdict and at") from None
        if row["verdict"] not in VERDICTS:
            raise UsageError(f"{source}:{number}: verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}")
        if not CLAUSE_ID.match(row["clause_id"]):
            raise UsageError(f"{source}:{number}: {row['clause_id']!r} is not a clause id like GIFT-3")
        parsed.append(row)
    existing = {_key(r) for r in store.judgments.all()}
    fresh = [r for r in parsed if _key(r) not in existing]
    store.judgments.add(fresh)
    return {"read": len(parsed), "imported": len(fresh), "skipped": len(parsed) - len(fresh)}


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["development_uid"], row["clause_id"], row["verdict"], row["by"], row["at"])


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {"development": row["development_uid"], "url": row["url"], "clause": row["clause_id"],
            "verdict": row["verdict"], "by": row["by"], "note": row["note"], "at": row["at"]}
