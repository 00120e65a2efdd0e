"""Stored developments in their public shape: attached clauses with judgments applied, dates, thread.

Every output (search, digest, alerts, the clause timeline, the web pages) builds developments
here, so a judged pair reads the same everywhere: a rejected clause is never attached, an added
one always is, and judged clauses carry `judged`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scanner.errors import NotFoundError
from scanner.records import AttachedClause, Development
from scanner.store import Store


def load(store: Store, rows: Sequence[dict[str, Any]]) -> list[Development]:
    """Developments for stored rows (in the same order), with everything attached to them."""
    ids = [r["id"] for r in rows]
    matches = store.vectors.matches_for(ids, tiers=(1, 2))
    judged = store.judgments.latest([r["uid"] for r in rows])
    dates = store.lifecycle.dates_for(ids)
    threads = _threads(store, ids)
    names = store.sources.names()
    clause_info = {c["id"]: c for c in store.vectors.clauses()}
    duplicate_uids = _uids(store, {r["duplicate_of"] for r in rows if r.get("duplicate_of")})
    out = []
    for row in rows:
        development = Development.from_row(row)
        development.source_name = names.get(development.source)
        development.clauses, development.possible = apply_judgments(
            matches.get(row["id"], []), judged.get(row["uid"], {}), clause_info)
        development.dates = dates.get(row["id"], [])
        development.thread = threads.get(row["id"])
        development.duplicate_of = duplicate_uids.get(row.get("duplicate_of"))
        out.append(development)
    return out


def as_json(store: Store, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d.as_json() for d in load(store, rows)]


def find(store: Store, key: str) -> dict[str, Any]:
    """The stored row of a development given its public id or its URL; NotFoundError otherwise."""
    row = store.developments.get(key.strip())
    if row is None:
        raise NotFoundError(f"no development {key!r}: pass the `id` a --json output shows, or the development's URL")
    return row


def apply_judgments(
    matches: Sequence[dict[str, Any]], judgments: dict[str, dict[str, Any]], clauses: dict[str, dict[str, Any]],
) -> tuple[list[AttachedClause], list[AttachedClause]]:
    """(attached, possible) clauses after the specialists' latest word on each pair.

    "wrong" removes a clause from both lists; "right" and "added" attach it (with the matcher's
    score and evidence when it had one), marked as judged.
    """
    attached: list[AttachedClause] = []
    possible: list[AttachedClause] = []
    seen: set[str] = set()
    for m in matches:
        verdict = (judgments.get(m["id"]) or {}).get("verdict")
        if verdict == "wrong":
            continue
        clause = AttachedClause(m["id"], m["title"] or "", m["policy"] or "", m["score"], m["evidence"] or "",
                                judged=verdict)
        seen.add(m["id"])
        (attached if m["tier"] == 1 or verdict else possible).append(clause)
    for clause_id, judgment in judgments.items():
        if clause_id in seen or judgment["verdict"] == "wrong":
            continue
        info = clauses.get(clause_id, {})
        attached.append(AttachedClause(clause_id, info.get("title") or "", info.get("policy") or "", 1.0,
                                       judgment.get("note") or "", judged=judgment["verdict"]))
    attached.sort(key=lambda c: (c.judged is None, -c.score))
    return attached, possible


def attached_pairs(store: Store, with_possible: bool = False) -> list[tuple[int, str, float]]:
    """(development id, clause id, score) of every attached clause (and, `with_possible`, every possible one, at
    its lower probability) with judgments applied: the clause route of search and alerts."""
    pairs = {(d, c): s for d, c, s in store.vectors.match_rows((1, 2) if with_possible else (1,))}
    latest = store.judgments.latest()
    if latest:
        ids = {uid: row["id"] for uid, row in store.developments.by_uids(latest).items()}
        for uid, by_clause in latest.items():
            for clause_id, judgment in by_clause.items():
                if uid not in ids:
                    continue
                key = (ids[uid], clause_id)
                if judgment["verdict"] == "wrong":
                    pairs.pop(key, None)
                else:
                    pairs.setdefault(key, 1.0)
    return [(d, c, s) for (d, c), s in pairs.items()]


def _threads(store: Store, ids: list[int]) -> dict[int, dict[str, Any] | None]:
    """Each development's thread as the contract shows it, with every member in date order."""
    assigned = store.lifecycle.threads_for(ids)
    members = store.lifecycle.thread_members({a["thread_id"] for a in assigned.values() if a["thread_id"]})
    member_rows = {r["id"]: r for r in store.developments.list(ids={m for ms in members.values() for m in ms})}
    stages = store.lifecycle.threads_for(member_rows)
    out: dict[int, dict[str, Any] | None] = {}
    for development_id in ids:
        mine = assigned.get(development_id)
        if not mine or not mine["thread_id"]:
            out[development_id] = None
            continue
        rows = sorted((member_rows[m] for m in members.get(mine["thread_id"], []) if m in member_rows),
                      key=lambda r: (r["published"] or r["first_seen"][:10], r["id"]))
        out[development_id] = {
            "id": mine["thread_id"], "stage": mine["stage"],
            "members": [{"id": r["uid"], "url": r["url"], "title": r["title"], "published": r["published"],
                         "source": r["source_id"], "stage": (stages.get(r["id"]) or {}).get("stage")} for r in rows],
        }
    return out


def _uids(store: Store, ids: set[int]) -> dict[int, str]:
    return {r["id"]: r["uid"] for r in store.developments.list(ids=ids)} if ids else {}
