"""The regulatory lifecycle as users see it: key dates to act on, a deadlines calendar, and threads.

Extraction lives in `keydates` (dates), `stages` (stage of a development) and `threads` (which
developments are stages of one matter); this module runs them over the store (only over new or
changed text) and answers `scan deadlines`, `scan thread` and the digest's "Coming up".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any


from scanner import developments
from scanner.scoring import mean_unit_vectors
from scanner.store import Store

log = logging.getLogger(__name__)

VERSION = "1"
"""Bump when keydates or stages change what they find: every development is then read again."""
THREAD_CANDIDATES = 3000
"""Threads are linked over the most recent developments that have a stage (pairwise cost grows as n²)."""

TYPES = ("comments_due", "effective", "compliance")
TYPE_LABELS = {"comments_due": "Comments due", "effective": "Takes effect", "compliance": "Compliance deadline"}


@dataclass
class LifecycleResult:
    dated: int
    dates: int
    threaded: int

    def as_json(self) -> dict[str, int]:
        return {"dated": self.dated, "dates": self.dates, "threaded": self.threaded}


def analyse_lifecycle(store: Store, *, vector_model: str | None = None) -> LifecycleResult:
    """Key dates and stage of every development not read yet; then threads, when anything changed.

    A structured source's stated dates and stage (`meta`, e.g. the Federal Register's) win over
    what the text yields; dates the text adds are kept too.
    """
    from scanner.keydates import extract_dates
    from scanner.records import Development
    from scanner.stages import classify_stage

    pending = store.lifecycle.pending(VERSION)
    found = 0
    stages = store.lifecycle.stages()
    for row in pending:
        development = Development.from_row(row)
        published = _date(development.published) or _date((development.first_seen or "")[:10])
        stated = [d for d in development.meta.get("dates", [])]
        extracted = [d.as_json() for d in extract_dates(development.title, development.text, published, development.lang)]
        seen = {(d["date"], d["type"]) for d in stated}
        dates = stated + [d for d in extracted if (d["date"], d["type"]) not in seen]
        store.lifecycle.save_dates(row["id"], row["content_hash"], VERSION, dates)
        stages[row["id"]] = development.meta.get("stage") or classify_stage(
            development.title, development.text, development.kind, development.lang)
        found += len(dates)
    threaded = 0
    if pending:
        threaded = _link(store, stages, vector_model)
    return LifecycleResult(len(pending), found, threaded)


def _link(store: Store, stages: dict[int, str | None], vector_model: str | None) -> int:
    """Recompute threads over recent staged developments; every development keeps its stage."""
    from scanner import embed
    from scanner.threads import ThreadInput, link_threads

    model = vector_model or embed.MULTILINGUAL_MODEL
    rows = [r for r in store.developments.list() if stages.get(r["id"])]
    rows = sorted(rows, key=lambda r: (r["published"] or r["first_seen"][:10], r["id"]))[-THREAD_CANDIDATES:]
    vectors = mean_unit_vectors((d, v) for _, d, v in store.vectors.chunk_rows(model, [r["id"] for r in rows]))
    items = [ThreadInput(r["uid"], r["title"] or "", r["text"] or "", _date(r["published"]), r["source_id"],
                         r["jurisdiction"], r["lang"], stages.get(r["id"]), vectors[r["id"]])
             for r in rows if r["id"] in vectors]
    links = _stated_links(rows, link_threads(items))
    by_uid = {r["uid"]: r["id"] for r in rows}
    assignments = {development_id: (None, stage) for development_id, stage in stages.items()}
    for uid, thread_id in links.items():
        assignments[by_uid[uid]] = (thread_id, stages.get(by_uid[uid]))
    store.lifecycle.replace_threads(assignments)
    return len(links)


def _stated_links(rows: list[dict[str, Any]], links: dict[str, str]) -> dict[str, str]:
    """Join threads that a structured source says belong together (a shared RIN or docket id).

    The key a source states outranks similarity: a proposed and a final rule with one RIN are one
    matter even when their texts differ or have no vectors yet.
    """
    import json

    by_key: dict[str, list[str]] = {}
    for row in rows:
        for key in json.loads(row["meta"]).get("thread_keys", []) if row.get("meta") else []:
            by_key.setdefault(key, []).append(row["uid"])
    day = {r["uid"]: (r["published"] or r["first_seen"][:10], r["uid"]) for r in rows}
    groups: dict[str, set[str]] = {}
    for uid, thread in links.items():
        groups.setdefault(thread, set()).add(uid)
    merged: list[set[str]] = [set(g) for g in groups.values()]
    for uids in by_key.values():
        if len(uids) < 2:
            continue
        joined = set(uids)
        for group in [g for g in merged if g & joined]:
            joined |= group
            merged.remove(group)
        merged.append(joined)
    return {uid: f"thread-{min(group, key=lambda u: day[u])}" for group in merged if len(group) > 1 for uid in group}


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


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
