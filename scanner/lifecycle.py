"""The regulatory lifecycle as users see it: key dates to act on, a deadlines calendar, and threads.

Extraction lives in `keydates` (dates), `stages` (stage of a development) and `threads` (which
developments are stages of one matter); this module runs them over the store (only over new or
changed text) and answers `scan deadlines`, `scan thread` and the digest's "Coming up".
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from scanner import developments
from scanner.store import Store

TYPES = ("comments_due", "effective", "compliance")
TYPE_LABELS = {"comments_due": "Comments due", "effective": "Takes effect", "compliance": "Compliance deadline"}


def deadlines(store: Store, *, since: str | None = None, until: str | None = None, types: tuple[str, ...] = (),
              clause: str | None = None) -> dict[str, Any]:
    """`scan deadlines --json`: key dates in date order, each with its development and the clauses it touches."""
    rows = store.lifecycle.dates_between(since, until, types)
    ids = list(dict.fromkeys(r["development_id"] for r in rows))
    shown = {d.row_id: d for d in developments.load(store, store.developments.list(ids=ids))} if ids else {}
    out = []
    for row in rows:
        development = shown.get(row["development_id"])
        if development is None:
            continue
        clauses = [c.as_json() for c in development.clauses]
        if clause and clause not in {c["id"] for c in clauses}:
            continue
        out.append({"date": row["date"], "type": row["type"], "phrase": row["phrase"],
                    "development": {"id": development.uid, "url": development.url, "title": development.title,
                                    "source": development.source, "jurisdiction": development.jurisdiction},
                    "clauses": clauses})
    return {"deadlines": out}


def upcoming(store: Store, days: int = 90, today: date | None = None) -> list[dict[str, Any]]:
    """Dates in the next `days` days (the digest's "Coming up")."""
    from datetime import timedelta

    today = today or datetime.now(timezone.utc).date()
    return deadlines(store, since=today.isoformat(), until=(today + timedelta(days=days)).isoformat())["deadlines"]


def to_ics(items: list[dict[str, Any]]) -> bytes:
    """An iCalendar file: one all-day VEVENT per date, a UID stable across runs, the development's URL."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//scan//horizon scanning deadlines//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "scan deadlines")
    for item in items:
        development = item["development"]
        day = date.fromisoformat(item["date"])
        event = Event()
        event.add("uid", f"{development['id']}-{item['type']}-{item['date']}@scan")
        event.add("dtstamp", datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
        event.add("dtstart", day)
        event.add("summary", f"{TYPE_LABELS.get(item['type'], item['type'])}: {development['title']}")
        clauses = ", ".join(c["id"] for c in item["clauses"])
        event.add("description", "\n".join(p for p in (item["phrase"], f"Clauses: {clauses}" if clauses else "",
                                                       development["url"]) if p))
        if development.get("url"):
            event.add("url", development["url"])
        event.add("categories", [item["type"]])
        calendar.add_component(event)
    return calendar.to_ical()


def thread_view(store: Store, key: str) -> dict[str, Any]:
    """`scan thread DEVELOPMENT --json`: the matter a development belongs to, stage by stage."""
    row = developments.find(store, key)
    development = developments.load(store, [row])[0]
    thread = development.thread
    if thread is None:
        return {"development": development.as_json(), "thread": None, "members": [development.as_json()]}
    member_ids = [m["id"] for m in thread["members"]]
    member_rows = [store.developments.get(uid) for uid in member_ids]
    members = [d.as_json() for d in developments.load(store, [r for r in member_rows if r])]
    return {"development": development.as_json(), "thread": {"id": thread["id"], "stage": thread["stage"]},
            "members": members}
