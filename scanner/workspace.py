"""The clause workspace: each clause's timeline, the review queue, and the history of our own policy text.

Specialists own clauses, not articles. For one clause this answers "what happened to GIFT-4 since I
last looked, and what must I change before which date?"; across clauses it orders the review
queue: clauses with developments attached since their last review, the most urgent first
(nearest upcoming date, then how many new developments and how strong). A development is on a
clause's timeline when its stored match attaches the clause or a specialist added it, and not
when a specialist rejected it — the same rule every other output applies. Clauses removed from
the corpus keep their history and their developments.
"""

from __future__ import annotations

import difflib
from datetime import date, datetime, timedelta, timezone
from typing import Any

from scanner import developments
from scanner.errors import NotFoundError, closest
from scanner.store import Store


def _today(today: date | None) -> date:
    return today or datetime.now(timezone.utc).date()


def attached_developments(store: Store, clause_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(row, this clause's attachment as JSON) for every development attached to the clause, newest first."""
    pairs = {d: (score, evidence, tier) for d, score, evidence, tier in store.vectors.developments_with_clause(clause_id)}
    judged = {j["development_uid"]: j for j in store.judgments.for_clause(clause_id)}  # latest per development wins
    rows = {r["id"]: r for r in store.developments.list(ids=pairs)} if pairs else {}
    by_uid = store.developments.by_uids(judged) if judged else {}
    chosen: dict[int, dict[str, Any]] = {}
    for development_id, (score, evidence, tier) in pairs.items():
        row = rows.get(development_id)
        verdict = (judged.get(row["uid"]) or {}).get("verdict") if row else None
        if row is None or verdict == "wrong" or (tier == 2 and not verdict):
            continue
        chosen[development_id] = {"score": round(float(score), 4), "evidence": evidence or "", "judged": verdict,
                                  "historical": tier == 0}
    for uid, judgment in judged.items():
        row = by_uid.get(uid)
        if row is None or judgment["verdict"] == "wrong" or row["id"] in chosen:
            continue
        rows[row["id"]] = row
        chosen[row["id"]] = {"score": 1.0, "evidence": judgment.get("note") or "", "judged": judgment["verdict"],
                             "historical": False}
    ordered = sorted(chosen, key=lambda i: (_day(rows[i]), i), reverse=True)
    return [(rows[i], chosen[i]) for i in ordered]


def clause_view(store: Store, clause_id: str, *, since: str | None = None, today: date | None = None) -> dict[str, Any]:
    """`scan clause ID --json`: the clause, its versions (with diffs), its timeline, upcoming dates, reviews."""
    today = _today(today)
    current = {c["id"]: c for c in store.vectors.clauses()}
    versions = store.workspace.versions(clause_id)
    if clause_id not in current and not versions:
        known = sorted(set(current) | set(store.workspace.known_clause_ids()))
        raise NotFoundError(f"no clause {clause_id!r} ({closest(clause_id, known)})")
    clause = current.get(clause_id) or versions[-1]
    attached = [(r, a) for r, a in attached_developments(store, clause_id) if not since or _day(r) >= since]
    items = developments.load(store, [r for r, _ in attached])
    timeline = []
    for development, (_, attachment) in zip(items, attached):
        item = development.as_json()
        item.update(attachment)
        item["stage"] = (item.get("thread") or {}).get("stage")
        timeline.append(item)
    reviews = store.workspace.reviews(clause_id)
    last = versions[-1] if versions else None
    return {
        "clause": {"id": clause_id, "title": clause["title"], "policy": clause["policy"], "text": clause["text"],
                   "file": clause["file"], "line": clause["line"],
                   "removed": bool(last and last["removed_at"]), "renamed_to": last["renamed_to"] if last else None},
        "versions": [{"hash": v["hash"], "first_seen": v["first_seen"], "text": v["text"], "title": v["title"],
                      "diff": _diff(versions[n - 1]["text"], v["text"]) if n else None}
                     for n, v in enumerate(versions)],
        "developments": timeline,
        "upcoming": _upcoming(timeline, today),
        "reviews": [{"at": r["at"], "by": r["by"], "note": r["note"], "clause_hash": r["clause_hash"]} for r in reviews],
        "changed_since_review": bool(reviews and last and reviews[-1]["clause_hash"] != last["hash"]),
    }


def clauses_overview(store: Store, *, needs_review: bool = False, policy: str | None = None,
                     today: date | None = None) -> dict[str, Any]:
    """`scan clauses --json`: every clause with counts, last review, next date; the review queue when asked."""
    today = _today(today)
    rows = []
    latest = store.workspace.latest_versions()
    for clause in store.vectors.clauses():
        if policy and policy.casefold() not in (clause["policy"] or "").casefold():
            continue
        rows.append(_summary(store, clause, latest.get(clause["id"]), today))
    if needs_review:
        rows = sorted((r for r in rows if r["needs_review"]), key=_urgency)
    return {"clauses": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]}


def review_queue(store: Store, *, limit: int | None = None, today: date | None = None) -> list[dict[str, Any]]:
    """The top of the review queue (the digest's "Clauses to review")."""
    return clauses_overview(store, needs_review=True, today=today)["clauses"][:limit]


def record_review(store: Store, clause_id: str, *, by: str | None = None, note: str | None = None) -> dict[str, Any]:
    """A specialist reviewed the clause (its current text version): it leaves the queue until something new attaches."""
    current = {c["id"] for c in store.vectors.clauses()}
    if clause_id not in current:
        known = sorted(current | set(store.workspace.known_clause_ids()))
        raise NotFoundError(f"no clause {clause_id!r} in the current corpus ({closest(clause_id, known)})")
    version = store.workspace.latest_versions().get(clause_id)
    row = store.workspace.add_review(clause_id, by, note, version["hash"] if version else None)
    return {"clause": clause_id, "at": row["at"], "by": by, "note": note, "clause_hash": row["clause_hash"]}


def _summary(store: Store, clause: dict[str, Any], version: dict[str, Any] | None, today: date) -> dict[str, Any]:
    attached = attached_developments(store, clause["id"])
    reviews = store.workspace.reviews(clause["id"])
    last_review = reviews[-1] if reviews else None
    since_review = [(r, a) for r, a in attached if not last_review or (r["first_seen"] or "") > last_review["at"]]
    upcoming = _upcoming_from_rows(store, [r for r, _ in attached], today)
    next_date = upcoming[0] if upcoming else None
    changed = bool(last_review and version and last_review["clause_hash"] != version["hash"])
    reasons = []
    if since_review:
        strongest = max(a["score"] for _, a in since_review)
        reasons.append(f"{len(since_review)} new development{'s' if len(since_review) != 1 else ''} since "
                       f"{'the last review (' + last_review['at'][:10] + ')' if last_review else 'never reviewed'}"
                       f", strongest {strongest:.2f}")
    if next_date:
        reasons.append(f"next date {next_date['date']} ({next_date['type'].replace('_', ' ')})")
    if changed:
        reasons.append("clause text changed since its last review")
    needs = bool(since_review) or changed
    return {
        "id": clause["id"], "title": clause["title"], "policy": clause["policy"],
        "attached_30d": sum(1 for r, _ in attached if _day(r) >= (today - timedelta(days=30)).isoformat()),
        "attached_90d": sum(1 for r, _ in attached if _day(r) >= (today - timedelta(days=90)).isoformat()),
        "last_review": last_review["at"] if last_review else None,
        "next_date": next_date, "needs_review": needs, "reason": "; ".join(reasons) if needs else None,
        "changed_since_review": changed, "new_since_review": len(since_review),
        "_strength": max((a["score"] for _, a in since_review), default=0.0),
    }


def _urgency(row: dict[str, Any]) -> tuple[Any, ...]:
    """Nearest upcoming date first (none last), then more new developments, then stronger ones."""
    when = row["next_date"]["date"] if row["next_date"] else "9999-12-31"
    return (when, -row["new_since_review"], -row["_strength"], row["id"])


def _upcoming(timeline: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    found = [{**d, "development": {"id": t["id"], "title": t["title"], "url": t["url"], "source": t["source"]}}
             for t in timeline for d in t.get("dates") or [] if d["date"] >= today.isoformat()]
    return sorted(found, key=lambda d: (d["date"], d["type"]))


def _upcoming_from_rows(store: Store, rows: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    dates = store.lifecycle.dates_for(r["id"] for r in rows)
    found = [d for r in rows for d in dates.get(r["id"], []) if d["date"] >= today.isoformat()]
    return sorted(found, key=lambda d: (d["date"], d["type"]))


def _day(row: dict[str, Any]) -> str:
    return (row.get("published") or row.get("first_seen") or "")[:10]


def _diff(old: str, new: str) -> str:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "before", "after", n=1, lineterm="")
    return "\n".join(line for line in lines if not line.startswith(("---", "+++")))
