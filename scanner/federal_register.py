"""The US Federal Register public documents API as a source: a pure parser, no I/O.

`parse_documents(body)` reads the JSON of
`https://www.federalregister.gov/api/v1/documents.json?conditions[...]` (optionally narrowed with
`fields[]=`), and returns one `FederalRegisterDocument` per result that has a document number and a
title. The API states what text would otherwise have to be read for:

- key dates: `comments_close_on` → `comments_due`, `effective_on` → `effective`, plus any other date
  the document's DATES section (`dates`) states, typed by `scanner.keydates` (e.g. a compliance date);
- the stage: Proposed Rule → proposal, Rule → final, a Notice that asks for comment → consultation;
- thread keys: RINs and docket ids (`rin:3084-AB60`, `docket:FTC-2026-0004`), the same keys
  `scanner.threads.references` finds in text, so a press release citing the RIN joins the thread.

A malformed body raises `FederalRegisterError` (a ValueError) saying why; a malformed field in one
document is dropped, not fatal. The crawler integration is separate; `url_for` builds a query URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode

from scanner.keydates import KeyDate, extract_dates

API = "https://www.federalregister.gov/api/v1/documents.json"
FIELDS = ("title", "type", "abstract", "action", "dates", "document_number", "html_url", "publication_date",
          "effective_on", "comments_close_on", "docket_ids", "regulation_id_numbers", "agencies")
STAGE_BY_TYPE = {"Proposed Rule": "proposal", "Rule": "final"}
_COMMENT_REQUEST = re.compile(r"(?i)request for (?:information|comment|public comment)|comment request|advance notice of proposed rulemaking|\bANPRM\b")
_RIN = re.compile(r"^\d{4}-[A-Z]{2}\d{2}$")


class FederalRegisterError(ValueError):
    """The body is not a Federal Register documents response; the message says why."""


@dataclass(frozen=True)
class FederalRegisterDocument:
    document_number: str
    title: str
    type: str
    abstract: str
    html_url: str
    publication_date: date | None
    effective_on: date | None
    comments_close_on: date | None
    docket_ids: tuple[str, ...] = ()
    regulation_id_numbers: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()
    action: str = ""
    dates_text: str = ""
    key_dates: tuple[KeyDate, ...] = field(default=())

    @property
    def stage(self) -> str | None:
        if self.type in STAGE_BY_TYPE:
            return STAGE_BY_TYPE[self.type]
        if self.type == "Notice" and (self.comments_close_on or _COMMENT_REQUEST.search(f"{self.title} {self.action}")):
            return "consultation"
        return None

    @property
    def thread_keys(self) -> frozenset[str]:
        """Keys shared by every document of one rulemaking: its RINs and docket ids."""
        return frozenset([f"rin:{r}" for r in self.regulation_id_numbers] + [f"docket:{d}" for d in self.docket_ids])

    def as_development(self) -> dict[str, Any]:
        """The development shape the rest of scan stores (CONTRACT.md), with the optional lifecycle fields."""
        text = "\n\n".join(part for part in (self.action, self.abstract, self.dates_text) if part)
        return {
            "title": self.title, "url": self.html_url, "source": "federal-register", "kind": "regulator",
            "jurisdiction": "US", "lang": "en", "published": self.publication_date.isoformat() if self.publication_date else None,
            "text": text, "summary": self.abstract, "stage": self.stage,
            "dates": [d.as_json() for d in self.key_dates], "thread_keys": sorted(self.thread_keys),
            "agencies": list(self.agencies), "document_number": self.document_number,
        }


def url_for(term: str | None = None, agencies: list[str] | None = None, types: list[str] | None = None,
            since: date | None = None, per_page: int = 100) -> str:
    """A documents.json query URL (newest first) asking only for the fields `parse_documents` reads."""
    params: list[tuple[str, str]] = [("per_page", str(per_page)), ("order", "newest")]
    params += [("fields[]", f) for f in FIELDS]
    if term:
        params.append(("conditions[term]", term))
    params += [("conditions[agencies][]", a) for a in agencies or []]
    params += [("conditions[type][]", {"Rule": "RULE", "Proposed Rule": "PRORULE", "Notice": "NOTICE"}.get(t, t)) for t in types or []]
    if since:
        params.append(("conditions[publication_date][gte]", since.isoformat()))
    return f"{API}?{urlencode(params)}"


def parse_documents(body: bytes) -> list[FederalRegisterDocument]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FederalRegisterError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FederalRegisterError("not a documents response: the top level is not an object")
    if "errors" in data and "results" not in data:
        raise FederalRegisterError(f"the API reported errors: {data['errors']}")
    results = data.get("results", [])
    if not isinstance(results, list):
        raise FederalRegisterError("not a documents response: 'results' is not a list")
    documents = []
    for raw in results:
        document = _document(raw) if isinstance(raw, dict) else None
        if document:
            documents.append(document)
    return documents


def _document(raw: dict[str, Any]) -> FederalRegisterDocument | None:
    number, title = _text(raw.get("document_number")), _text(raw.get("title"))
    if not number or not title:
        return None
    published = _date(raw.get("publication_date"))
    effective = _date(raw.get("effective_on"))
    closes = _date(raw.get("comments_close_on"))
    dates_text = _text(raw.get("dates"))
    # the DATES section states the dates in words (and may add one the fields lack, such as a compliance
    # date); the structured fields decide the type of the dates they carry
    stated = extract_dates(title, dates_text, published, "en") if dates_text else []
    phrase_of = {k.date: k.phrase for k in stated}
    keys: list[KeyDate] = []
    if closes:
        keys.append(KeyDate(closes, "comments_due", phrase_of.get(closes, f"comments_close_on {closes.isoformat()}")))
    if effective:
        keys.append(KeyDate(effective, "effective", phrase_of.get(effective, f"effective_on {effective.isoformat()}")))
    keys += [k for k in stated if k.date not in {closes, effective}]
    return FederalRegisterDocument(
        document_number=number, title=title, type=_text(raw.get("type")), abstract=_text(raw.get("abstract")),
        html_url=_text(raw.get("html_url")), publication_date=published, effective_on=effective, comments_close_on=closes,
        docket_ids=tuple(d for d in _strings(raw.get("docket_ids"))),
        regulation_id_numbers=tuple(r for r in _strings(raw.get("regulation_id_numbers")) if _RIN.match(r)),
        agencies=tuple(_agency(a) for a in raw.get("agencies") or [] if _agency(a)),
        action=_text(raw.get("action")), dates_text=dates_text, key_dates=tuple(sorted(keys, key=lambda k: (k.date, k.type))),
    )


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _strings(value: Any) -> list[str]:
    return [v.strip() for v in value if isinstance(v, str) and v.strip()] if isinstance(value, list) else []


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _agency(value: Any) -> str:
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("raw_name"))
    return _text(value)
