"""The digest: what was published in a period, most relevant first, rendered as md, html, atom and json.

A policy reader wants the developments that touch a clause first, grouped by policy area and then
jurisdiction, and must still be able to see that nothing else silently disappeared ("also seen").
One story reported by a regulator and by two law firms is shown once, with the others listed as
`related`: two developments are the same story when their stored MiniLM vectors and their
distinctive terms (names, numbers, acronyms) both agree (see `same_story`). The digest never
fetches or embeds; a development without stored vectors is simply not clustered.

Output is a pure function of the period and the stored data (no "generated at" clock), so
re-running a week gives byte-identical files, written atomically.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np

from scanner.config import Config
from scanner.embed import DEFAULT_MODEL
from scanner import developments
from scanner.lifecycle import to_ics, upcoming
from scanner.scoring import mean_unit_vectors
from scanner.workspace import review_queue
from scanner.store import Store
from scanner.textutil import write_atomic

FORMATS = ("md", "html", "atom", "json")
CLUSTER_MODEL = DEFAULT_MODEL
SAME_STORY_MIN_COSINE = 0.75
"""Document cosines of distinct dev-set stories on one topic reach 0.86, so cosine alone cannot decide."""
SAME_STORY_MIN_SCORE = 0.73
"""Mean of document cosine and distinctive-term overlap: over the 1,387 cross-source dev-set pairs the
distinct stories peak at 0.64, while planted duplicates (law-firm alerts paraphrasing a release) score
0.82-0.94; the threshold sits midway."""
SAME_STORY_MAX_DAYS = 14
"""Reports of one story follow the original within days; a similar item months later is a new story."""
TREND_WEEKS = 12
COMING_UP_DAYS = 90
"""The digest's "Coming up": key dates in this many days after the period ends (not after today: reruns match)."""
REVIEW_QUEUE_SHOWN = 10
TOP_CLAUSES = 5
MAX_DIFF_LINES = 40
GLOBAL = "Global"

_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_TERM = re.compile(r"\$?\d[\d,.]*%?|\b[A-Z][\w'-]*[A-Z0-9][\w-]*\b|(?<![.!?]\s)(?<!^)\b[A-Z][a-z][\w-]+", re.M)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MD_EMPHASIS = re.compile(r"([\\`*~|]|(?<!\w)_|_(?!\w))")
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MD_ENTITY = re.compile(r"&(?=#?\w+;)")
_MD_LEADING = re.compile(r"^([#>+-]|\d+[.)])")


# --- the period -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Inclusive dates; `week` is set when the period is one ISO week, and names the files."""

    start: date
    end: date
    week: str | None = None

    @property
    def name(self) -> str:
        """The file stem: `2026-W47`, or `2026-09-14_2026-11-22` (built from dates, never from raw input)."""
        return self.week or f"{self.start.isoformat()}_{self.end.isoformat()}"

    @property
    def label(self) -> str:
        """How a reader sees it: `2026-W47`, or `2026-09-14 to 2026-11-22`."""
        return self.week or f"{self.start.isoformat()} to {self.end.isoformat()}"

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "week": self.week}


def iso_week(text: str) -> Period:
    """`2026-W47` → Monday 2026-11-16 .. Sunday 2026-11-22; ValueError names the expected form."""
    found = _WEEK.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not an ISO week like 2026-W47")
    year, week = int(found[1]), int(found[2])
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{text!r}: {year} has no ISO week {week}") from None
    return Period(monday, monday + timedelta(days=6), f"{year}-W{week:02d}")


def week_of(day: date) -> Period:
    year, week, _ = day.isocalendar()
    return iso_week(f"{year}-W{week:02d}")


def last_complete_week(today: date) -> Period:
    """The ISO week before the one `today` is in: on any day of W48 the default digest is W47."""
    return week_of(today - timedelta(days=today.isoweekday()))


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a date like 2026-11-16") from None


def resolve_period(week: str | None, since: str | None, until: str | None, today: date) -> Period:
    """The period the options ask for; ValueError (a usage error) when they conflict or do not parse."""
    if week and (since or until):
        raise ValueError("give either --week or --since/--until, not both")
    if week:
        return iso_week(week)
    if until and not since:
        raise ValueError("--until needs --since")
    if not since:
        return last_complete_week(today)
    start = parse_day(since, "--since")
    end = parse_day(until, "--until") if until else today
    if start > end:
        raise ValueError(f"--since {start} is after --until {end}")
    return Period(start, end)


def parse_formats(text: str) -> list[str]:
    """`md,html` → ["md", "html"] in the given order, without repeats; ValueError names the choices."""
    formats = list(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown format {', '.join(unknown) or text!r}; choose from {','.join(FORMATS)}")
    return formats


# --- building the digest --------------------------------------------------------------------


@dataclass
class Group:
    """Items of one policy area (the policy of each item's best clause), by jurisdiction."""

    policy: str
    jurisdictions: list[tuple[str, list[dict[str, Any]]]]


@dataclass
class Digest:
    period: Period
    groups: list[Group]
    also_seen: list[dict[str, Any]]
    summary: dict[str, Any]
    trends: dict[str, Any]
    coming_up: list[dict[str, Any]] = field(default_factory=list)
    review_queue: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.items = [i for g in self.groups for _, items in g.jurisdictions for i in items] + self.also_seen

    def as_json(self) -> dict[str, Any]:
        return {"period": self.period.as_json(), "items": self.items, "summary": self.summary, "trends": self.trends,
                "coming_up": self.coming_up, "review_queue": self.review_queue}


def build_digest(store: Store, period: Period) -> Digest:
    """Everything the renderers need, read from the store in a few queries."""
    weeks = trend_weeks(period)
    rows = store.developments.list(since=period.start.isoformat(), until=period.end.isoformat())
    window = store.developments.list(since=weeks[0].start.isoformat(), until=weeks[-1].end.isoformat())
    corpus = {r["id"]: r for r in [*window, *rows]}
    by_uid = {r["uid"]: r for r in rows}
    items = developments.as_json(store, rows)
    stories = cluster_stories(items, by_uid, mean_unit_vectors((d, v) for _, d, v in store.vectors.chunk_rows(CLUSTER_MODEL, [r["id"] for r in rows])),
                              _idf(corpus.values()))
    relevant = [s for s in stories if s["clauses"]]
    also_seen = sorted((s for s in stories if not s["clauses"]), key=_recent_first)
    return Digest(
        period=period,
        groups=group_items(relevant),
        also_seen=also_seen,
        summary=_summary(store, period, items, stories),
        trends=_trends(store, weeks, list(corpus.values())),
        coming_up=upcoming(store, COMING_UP_DAYS, today=period.end),
        review_queue=review_queue(store, limit=REVIEW_QUEUE_SHOWN, today=period.end),
    )


def day_of(item: dict[str, Any]) -> str:
    """The date an item counts on: its publication date, else the day it was first seen."""
    return (item.get("published") or item.get("first_seen") or "")[:10]


def relevance(item: dict[str, Any]) -> float:
    return item["clauses"][0]["score"] if item["clauses"] else 0.0


def _recent_first(item: dict[str, Any]) -> tuple:
    return (-_ordinal(day_of(item)), item["title"] or "", item["id"])


def _ranked(item: dict[str, Any]) -> tuple:
    return (-relevance(item), *_recent_first(item))


def _ordinal(day: str) -> int:
    try:
        return date.fromisoformat(day).toordinal()
    except ValueError:
        return 0


def group_items(items: list[dict[str, Any]]) -> list[Group]:
    """Policy areas, then jurisdictions, each ordered by its most relevant item; items by relevance."""
    tree: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for item in sorted(items, key=_ranked):
        policy = item["clauses"][0]["policy"] or item["clauses"][0]["id"]
        tree[policy][item["jurisdiction"] or GLOBAL].append(item)
    # dicts keep insertion order, which follows the ranked items: the best group and jurisdiction come first
    return [Group(policy, list(by_jurisdiction.items())) for policy, by_jurisdiction in tree.items()]


# --- story clustering -----------------------------------------------------------------------


def distinctive_terms(text: str) -> set[str]:
    """Numbers, amounts, acronyms and capitalised names: what two reports of one story share verbatim."""
    terms = set()
    for found in _TERM.finditer(text):
        term = found.group().rstrip(".,").lower()
        if len(term) > 1:
            terms.add(term)
    return terms


def story_terms(title: str, text: str) -> set[str]:
    """The names and numbers of the body, plus only those headline terms the body also uses.

    A Title Case headline makes every word look like a name ("Hidden", "Processing", "Charged"),
    and two reports of one story rarely share a headline: counted as names, those words diluted
    the overlap of a law-firm alert that repeats a release verbatim under another title below
    the threshold. The body carries the story's real names and numbers.
    """
    body = distinctive_terms(text)
    words = set(re.findall(r"[\w$%.,'-]+", text.lower()))
    return body | {t for t in distinctive_terms(title) if t in body or t in words and not t.isalpha()}


def _idf(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Inverse document frequency of body terms over the period and trend window, so common names weigh little."""
    frequency: Counter[str] = Counter()
    count = 0
    for row in rows:
        frequency.update(distinctive_terms(row["text"] or ""))
        count += 1
    return {term: math.log(count / n) for term, n in frequency.items()}


def term_overlap(a: set[str], b: set[str], idf: dict[str, float]) -> float:
    """IDF-weighted share of the smaller set's terms that the other also has (0..1)."""
    smaller = min(sum(idf.get(t, 0.0) for t in a), sum(idf.get(t, 0.0) for t in b))
    return sum(idf.get(t, 0.0) for t in a & b) / smaller if smaller > 0 else 0.0


def same_story(cosine: float, overlap: float, days_apart: int) -> bool:
    """Measured on the dev set plus planted duplicates (tests/test_digest.py): zero distinct pairs merge."""
    return (
        cosine >= SAME_STORY_MIN_COSINE
        and (cosine + overlap) / 2 >= SAME_STORY_MIN_SCORE
        and days_apart <= SAME_STORY_MAX_DAYS
    )


def cluster_stories(
    items: list[dict[str, Any]], rows: dict[str, dict[str, Any]], vectors: dict[int, np.ndarray], idf: dict[str, float]
) -> list[dict[str, Any]]:
    """Items with reports of one story merged (single link, only across sources), each with `related`."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in _story_pairs(items, rows, vectors, idf):
        parent[root(i)] = root(j)
    clusters: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, item in enumerate(items):
        clusters[root(i)].append(item)
    return [_merge(members) for members in clusters.values()]


def _story_pairs(
    items: list[dict[str, Any]], rows: dict[str, dict[str, Any]], vectors: dict[int, np.ndarray], idf: dict[str, float]
) -> Iterable[tuple[int, int]]:
    ids = [rows[item["id"]]["id"] for item in items]
    terms = [story_terms(item["title"] or "", rows[item["id"]]["text"] or "") for item in items]
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if items[i]["source"] == items[j]["source"] or ids[i] not in vectors or ids[j] not in vectors:
                continue
            cosine = float(vectors[ids[i]] @ vectors[ids[j]])
            if cosine < SAME_STORY_MIN_COSINE:
                continue
            apart = abs(_ordinal(day_of(items[i])) - _ordinal(day_of(items[j])))
            if same_story(cosine, term_overlap(terms[i], terms[j], idf), apart):
                yield i, j


def _merge(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The story shown: the report with clauses, preferably the regulator's own, then the earliest."""
    members = sorted(
        members, key=lambda m: (not m["clauses"], m["kind"] != "regulator", -relevance(m), _ordinal(day_of(m)), m["id"])
    )
    lead, others = members[0], members[1:]
    related = [{"url": m["url"], "source": m["source"], "source_name": m.get("source_name"), "title": m["title"]} for m in others]
    return {**lead, "related": related}


# --- summary and trends ---------------------------------------------------------------------


def _summary(store: Store, period: Period, items: list[dict[str, Any]], stories: list[dict[str, Any]]) -> dict[str, Any]:
    health = store.sources.health()
    names = {s["id"]: s["name"] for s in health}
    failed = store.sources.failed_between(period.start.isoformat(), (period.end + timedelta(days=1)).isoformat())
    return {
        "developments": len(items),
        "stories": len(stories),
        "relevant": sum(1 for s in stories if s["clauses"]),
        "by_kind": _counts(i["kind"] or "unknown" for i in items),
        "by_jurisdiction": _counts(i["jurisdiction"] or GLOBAL for i in items),
        "failed_sources": [
            {"source": f["source_id"], "name": names.get(f["source_id"]) or f["source_id"],
             "failures": f["failures"], "error": f["error"]}
            for f in failed
        ],
        "top_clauses": _top_clauses(stories),
        "same_text_sources": [{"source": h["id"], "name": h["name"] or h["id"], "pages": h["same_text"]}
                              for h in health if h["same_text"]],
    }


def _counts(values: Iterable[str]) -> list[dict[str, Any]]:
    """Most frequent first, ties by name: a stable order for byte-identical output."""
    return [{"name": k, "count": n} for k, n in sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))]


def _top_clauses(stories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for story in stories:
        for clause in story["clauses"]:
            entry = found.setdefault(
                clause["id"], {"id": clause["id"], "title": clause["title"], "policy": clause["policy"], "count": 0, "best": 0.0}
            )
            entry["count"] += 1
            entry["best"] = max(entry["best"], clause["score"])
    ranked = sorted(found.values(), key=lambda c: (-c["count"], -c["best"], c["id"]))
    return ranked[:TOP_CLAUSES]


def trend_weeks(period: Period) -> list[Period]:
    """The `TREND_WEEKS` ISO weeks ending with the week the period ends in."""
    last = week_of(period.end)
    return [week_of(last.start - timedelta(weeks=n)) for n in range(TREND_WEEKS - 1, -1, -1)]


def _trends(store: Store, weeks: list[Period], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Developments per policy area per week (one development counts once in each area it touches)."""
    index = {w.start: n for n, w in enumerate(weeks)}
    matches = {r["id"]: [c for c in d["clauses"]] for r, d in zip(rows, developments.as_json(store, rows))}
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(weeks))
    for row in rows:
        day = day_of(row)
        if not _ordinal(day):
            continue
        slot = index.get(week_of(date.fromisoformat(day)).start)
        if slot is None:
            continue
        for policy in sorted({m["policy"] or m["id"] for m in matches.get(row["id"], [])}):
            counts[policy][slot] += 1
    areas = sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return {"weeks": [w.week for w in weeks], "areas": [{"policy": p, "counts": c} for p, c in areas]}


# --- rendering ------------------------------------------------------------------------------


def render(digest: Digest, fmt: str) -> bytes:
    """One format's bytes; the same digest always renders to the same bytes."""
    if fmt == "json":
        return (json.dumps(digest.as_json(), ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if fmt == "atom":
        return _atom(digest)
    if fmt == "html":
        import css_inline

        html = _templates(True).get_template("digest.html.j2").render(**_view(digest))
        return css_inline.inline(html).encode("utf-8")
    if fmt == "md":
        text = _templates(False).get_template("digest.md.j2").render(**_view(digest))
        return re.sub(r"\n{3,}", "\n\n", text).encode("utf-8")  # template whitespace, never inside a fence
    raise ValueError(f"unknown format {fmt!r}")


def write_digest(
    store: Store, config: Config, *, week: str | None = None, since: str | None = None, until: str | None = None,
    formats: Iterable[str] = FORMATS, today: date | None = None,
) -> list[Path]:
    """The library entry point (`scan demo` uses it): build the period's digest into the config's `digests`."""
    period = resolve_period(week, since, until, today or datetime.now(timezone.utc).date())
    return write_files(build_digest(store, period), formats, config.digests)


def write_files(digest: Digest, formats: Iterable[str], folder: Path) -> list[Path]:
    """Write each format as `<period name>.<format>` in `folder`, atomically (temp file + rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = folder / f"{digest.period.name}.{fmt}"
        write_atomic(target, render(digest, fmt))
        written.append(target)
    calendar = folder / "deadlines.ics"
    write_atomic(calendar, to_ics(digest.coming_up))
    written.append(calendar)
    return written


def _view(digest: Digest) -> dict[str, Any]:
    """Template context: the digest plus chart geometry, so templates hold no arithmetic."""
    return {"d": digest, "period": digest.period, "s": digest.summary, "chart": _chart(digest.trends)}


def _chart(trends: dict[str, Any]) -> dict[str, Any]:
    """Bar geometry for the inline SVG: one row of weekly bars per policy area, on one shared scale."""
    row_h, bar_w, gap, label_w, max_h = 26, 18, 6, 300, 20
    peak = max((c for a in trends["areas"] for c in a["counts"]), default=0) or 1
    rows = []
    for n, area in enumerate(trends["areas"]):
        base = (n + 1) * row_h
        bars = []
        for k, count in enumerate(area["counts"]):
            height = round(max_h * count / peak, 1)
            bars.append({"x": label_w + k * (bar_w + gap), "y": base - height, "h": height, "count": count,
                         "week": trends["weeks"][k]})
        rows.append({"label": area["policy"], "y": base - 8, "bars": bars})
    labels = [{"x": label_w + k * (bar_w + gap) + bar_w / 2, "text": w[-3:]} for k, w in enumerate(trends["weeks"])]
    width = label_w + len(trends["weeks"]) * (bar_w + gap)
    return {"rows": rows, "labels": labels, "width": width, "height": (len(rows) + 1) * row_h + 4,
            "label_y": (len(rows) + 1) * row_h, "bar_w": bar_w}


@cache
def _templates(html: bool):
    """Jinja environments: HTML autoescapes; Markdown escapes every interpolated value via `finalize`."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("scanner", "templates"),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=None if html else _md_finalize,
    )
    env.filters["safe_url"] = safe_url
    env.filters["md_url"] = md_url
    env.filters["fence"] = md_fence
    env.filters["diff_lines"] = diff_lines
    env.filters["built"] = MdRaw  # only for the output of the template's own macros
    env.filters["score"] = lambda value: f"{value:.2f}"
    env.filters["quoted"] = quoted
    return env


class MdRaw(str):
    """Markdown the renderer built itself (link targets, fences): not escaped again."""


def _md_finalize(value: Any) -> Any:
    if isinstance(value, MdRaw):
        return value
    return md_escape("" if value is None else str(value))


def md_escape(text: str) -> str:
    """One line of inert Markdown that still reads cleanly as plain text.

    Whitespace is collapsed (no new blocks) and only what Markdown would act on is escaped: emphasis
    and code characters, a bracket pair that could make a link, a `<` that could open a tag or an
    autolink, an `&` that could form an entity, a leading `#`, `>`, `-`, `+` or digit-dot. So
    "HM Revenue & Customs" and "[Errno -2]" stay as they are.
    """
    line = " ".join(text.split())
    line = _MD_EMPHASIS.sub(r"\\\1", line)
    if "](" in line or "][" in line or re.search(r"\[[^\]]*\]:", line):
        line = line.replace("[", "\\[").replace("]", "\\]")
    line = _MD_TAG.sub(r"\\<", line)
    line = _MD_ENTITY.sub(r"\\&", line)
    return _MD_LEADING.sub(r"\\\1", line)


def quoted(text: str | None) -> str:
    """Evidence in curly quotes, without doubling quotes the sentence already starts or ends with."""
    inner = (text or "").strip().strip('"“”\'‘’«»„').strip()
    return f"“{inner}”" if inner else ""


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: a `javascript:` link never reaches a reader."""
    if not url or urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
        return None
    return url.strip()


def md_url(url: str | None) -> MdRaw | None:
    """An http(s) URL made safe inside `(<...>)`: spaces, brackets and newlines percent-encoded."""
    url = safe_url(url)
    return MdRaw(quote(url, safe="/:?#[]@!$&'*+,;=%~-._")) if url else None


def md_fence(text: str, indent: str = "  ") -> MdRaw:
    """A ```diff block longer than any backtick run inside, so source text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    body = "\n".join(f"{indent}{line}" for line in text.splitlines())
    return MdRaw(f"{indent}{ticks}diff\n{body}\n{indent}{ticks}")


def diff_lines(diff: str) -> list[str]:
    """The changed lines of a tracked page, capped so one rewritten page cannot swamp the digest."""
    lines = [line for line in diff.splitlines() if line.startswith(("+", "-"))]
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"  … {len(lines) - MAX_DIFF_LINES} more changed lines"]
    return lines


def _xml(text: str | None) -> str:
    """Text XML can carry: control characters and lone surrogates from a hostile source are dropped."""
    return _XML_ILLEGAL.sub("", text or "")


def _timestamp(day: str, fallback: date) -> datetime:
    parsed = _ordinal(day)
    when = date.fromordinal(parsed) if parsed else fallback
    return datetime(when.year, when.month, when.day, tzinfo=timezone.utc)


def _atom(digest: Digest) -> bytes:
    """Atom 1.0 with stable ids (`urn:scan:development:<id>`), so readers never show an item twice."""
    from feedgen.feed import FeedGenerator

    from scanner import __version__

    period = digest.period
    feed = FeedGenerator()
    feed.id(f"urn:scan:digest:{period.name}")
    feed.title(f"Horizon scan digest {period.label}")
    feed.subtitle(f"Developments published {period.start} to {period.end}")
    feed.author(name="scan")
    feed.generator("scan", version=__version__)
    feed.updated(datetime(period.end.year, period.end.month, period.end.day, 23, 59, 59, tzinfo=timezone.utc))
    fragment = _templates(True).get_template("item.html.j2")
    for item in digest.items:
        entry = feed.add_entry(order="append")
        entry.id(f"urn:scan:development:{item['id']}")
        entry.title(_xml(item["title"]) or "(untitled)")
        stamp = _timestamp(day_of(item), period.end)
        entry.published(stamp)
        entry.updated(stamp)
        entry.author(name=_xml(item.get("source_name") or item["source"]))
        if safe_url(item["url"]):
            entry.link(href=_xml(safe_url(item["url"])), rel="alternate")
        entry.content(_xml(fragment.render(item=item)), type="html")
    return feed.atom_str(pretty=True)
