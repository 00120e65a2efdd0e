"""The records scan passes around, each with its public JSON form (the contract's shapes live here, not in SQL)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AttachedClause:
    """A clause attached to a development: by the matcher (score, evidence) and/or by a specialist (`judged`)."""

    id: str
    title: str
    policy: str
    score: float
    evidence: str
    judged: str | None = None  # "right" | "added"; a rejected clause is not attached at all

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "policy": self.policy,
                               "score": round(float(self.score), 4), "evidence": self.evidence}
        if self.judged:
            out["judged"] = self.judged
        return out


@dataclass
class Development:
    """One development: a news item, a law-firm alert, a competitor page version.

    `row_id` is the database's; `uid` is the public id every output shows and every command accepts.
    """

    uid: str
    source: str
    kind: str
    url: str
    canonical_url: str
    title: str
    text: str
    summary: str
    published: str | None
    content_hash: str
    jurisdiction: str | None = None
    lang: str | None = None
    first_seen: str | None = None
    diff: str | None = None
    row_id: int | None = None
    duplicate_of: str | None = None
    source_name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    """What a structured source states outright (Federal Register: key dates, stage, RIN/docket keys)."""
    clauses: list[AttachedClause] = field(default_factory=list)
    possible: list[AttachedClause] = field(default_factory=list)
    dates: list[dict[str, Any]] = field(default_factory=list)
    thread: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Development":
        return cls(
            uid=row["uid"], source=row["source_id"], kind=row["kind"], url=row["url"],
            canonical_url=row["canonical_url"], title=row["title"] or "", text=row["text"] or "",
            summary=row["summary"] or "", published=row["published"], content_hash=row["content_hash"],
            jurisdiction=row["jurisdiction"], lang=row.get("lang"), first_seen=row.get("first_seen"),
            diff=row.get("diff"), row_id=row.get("id"), meta=json.loads(row["meta"]) if row.get("meta") else {},
        )

    def row(self) -> dict[str, Any]:
        """The columns to insert (the store fills `first_seen` and `duplicate_of`)."""
        return {"uid": self.uid, "source_id": self.source, "kind": self.kind, "jurisdiction": self.jurisdiction,
                "url": self.url, "canonical_url": self.canonical_url, "title": self.title, "text": self.text,
                "summary": self.summary, "published": self.published, "content_hash": self.content_hash,
                "first_seen": self.first_seen, "lang": self.lang, "diff": self.diff,
                "meta": json.dumps(self.meta, sort_keys=True) if self.meta else None}

    @property
    def day(self) -> str:
        """The date it counts on: published, else the day it was first seen."""
        return (self.published or self.first_seen or "")[:10]

    def as_json(self, *, text: bool = False) -> dict[str, Any]:
        """The contract's development shape; `text` adds the full text (the web page and `--json` views of one)."""
        out: dict[str, Any] = {
            "id": self.uid, "title": self.title, "url": self.url, "source": self.source, "kind": self.kind,
            "jurisdiction": self.jurisdiction, "published": self.published, "summary": self.summary,
            "clauses": [c.as_json() for c in self.clauses],
            "lang": self.lang, "first_seen": self.first_seen,
            "source_name": self.source_name or self.source,
            "dates": list(self.dates), "thread": self.thread,
        }
        if self.possible:
            out["possible"] = [c.as_json() for c in self.possible]
        if self.diff:
            out["diff"] = self.diff
        if self.duplicate_of:
            out["duplicate_of"] = self.duplicate_of
        if text:
            out["text"] = self.text
        return out
