"""The digest on the analysed example site: period edges, ordering, story clustering, escaping, determinism."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import feedparser
import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.config import load_config
from scanner.crawl import content_hash
from scanner.digest import (
    Period,
    build_digest,
    iso_week,
    last_complete_week,
    md_escape,
    render,
    resolve_period,
    same_story,
    trend_weeks,
)
from scanner.store import Store, development_uid

DEV_PERIOD = ["--since", "2026-09-14", "--until", "2026-11-22"]
HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)>"

REELPASS_ALERT = {
    "title": "FTC targets streaming service ReelPass over free-trial conversions and cancellation 'save funnel'",
    "text": (
        "On September 15 the Federal Trade Commission sued Ridgeline Media Group, which runs the ReelPass "
        "streaming service, together with two executives. The agency alleges that ReelPass converted '7-day free "
        "pass' users into $14.99 monthly or $129.99 annual subscriptions without their express consent, disclosing "
        "the charge only in faint text under the sign-up button, and that it stopped sending reminder emails before "
        "trials ended because those emails led to more cancellations.\n\n"
        "The complaint describes a cancellation flow of up to six screens of offers and surveys, and a phone-only "
        "cancellation route for connected-TV subscribers, and pleads violations of ROSCA and Section 5 of the FTC "
        "Act. The FTC asks for civil penalties, consumer refunds and an order requiring clear price and first-charge "
        "disclosures, express consent before a trial rolls over, reminders before trials end and before annual "
        "renewals, and online cancellation as easy as sign-up.\n\n"
        "What this means for clients: any subscription business with free trials should review its checkout "
        "disclosures, consent capture, renewal reminders and cancellation journey now."
    ),
}


def run(*args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def digest_json(config: Path, *period: str) -> dict:
    result = run("digest", "--config", str(config), *period, "--format", "json", "--out", "-")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def plant(config: Path, *, title: str, source: str = "ofcom", kind: str = "regulator", jurisdiction: str | None = "UK",
          published: str | None = "2026-11-18", first_seen: str = "2026-11-25T09:00:00+00:00", text: str = "Body text.",
          url: str | None = None, diff: str | None = None, clauses: list[dict] | None = None) -> str:
    """Insert a development (and optionally its clause matches) straight into the store; returns its public id."""
    url = url or f"https://example.org/{source}/{development_uid(title + (published or first_seen))}"
    uid = development_uid(url)
    with Store.open(load_config(config).database) as store:
        row_id = store.developments.add({
            "uid": uid, "source_id": source, "kind": kind, "jurisdiction": jurisdiction, "url": url,
            "canonical_url": url, "title": title, "text": text, "summary": text[:200], "published": published,
            "first_seen": first_seen, "content_hash": content_hash(title + text), "diff": diff,
        })
        if clauses is not None:
            store.vectors.save_matches(row_id, content_hash(title + text), store.vectors.get_state("corpus"), clauses)
    return uid


# --- the period -----------------------------------------------------------------------------


def test_iso_week_is_monday_to_sunday() -> None:
    assert iso_week("2026-W47") == Period(date(2026, 11, 16), date(2026, 11, 22), "2026-W47")
    assert iso_week("2026-W53").start == date(2026, 12, 28)  # 2026 has 53 ISO weeks
    with pytest.raises(ValueError, match="no ISO week 53"):
        iso_week("2025-W53")
    with pytest.raises(ValueError, match="ISO week like"):
        iso_week("2026-47")


@pytest.mark.parametrize("today", ["2026-11-23", "2026-11-25", "2026-11-29"])
def test_default_is_the_last_complete_week(today: str) -> None:
    assert last_complete_week(date.fromisoformat(today)).week == "2026-W47"


def test_period_options_conflict_or_default() -> None:
    with pytest.raises(ValueError, match="either --week"):
        resolve_period("2026-W47", "2026-11-01", None, date(2026, 11, 25))
    with pytest.raises(ValueError, match="after"):
        resolve_period(None, "2026-11-22", "2026-11-01", date(2026, 11, 25))
    assert resolve_period(None, "2026-11-01", None, date(2026, 11, 25)).name == "2026-11-01_2026-11-25"


def test_trend_window_is_twelve_weeks_ending_with_the_period() -> None:
    weeks = trend_weeks(iso_week("2026-W02"))
    assert [w.week for w in weeks][-3:] == ["2025-W52", "2026-W01", "2026-W02"] and len(weeks) == 12


def test_same_story_needs_meaning_and_shared_names() -> None:
    assert same_story(0.84, 0.75, days_apart=2)
    assert not same_story(0.86, 0.37, days_apart=13)  # two EU virtual-currency items: one topic, two stories
    assert not same_story(0.95, 0.90, days_apart=40)


# --- on the analysed example site -----------------------------------------------------------


def test_dev_period_lists_every_development_relevant_first(site: Path) -> None:
    doc = digest_json(site, *DEV_PERIOD)
    items = doc["items"]
    assert doc["period"] == {"start": "2026-09-14", "end": "2026-11-22", "week": None}
    assert len(items) + sum(len(i["related"]) for i in items) == 60
    assert len(items) == 60, "distinct dev-set stories must not be merged"
    flags = [bool(i["clauses"]) for i in items]
    assert flags == sorted(flags, reverse=True) and flags.count(True) >= 30
    for item in items:
        assert set(item) >= {"id", "title", "url", "source", "kind", "jurisdiction", "published", "summary", "clauses", "related"}


def test_relevant_items_grouped_by_policy_then_jurisdiction_by_relevance(site: Path) -> None:
    items = [i for i in digest_json(site, *DEV_PERIOD)["items"] if i["clauses"]]
    keys = [(i["clauses"][0]["policy"], i["jurisdiction"] or "Global") for i in items]
    policies = [k[0] for k in keys]
    assert len({p for p in policies}) == len([p for n, p in enumerate(policies) if n == 0 or policies[n - 1] != p])
    assert len(set(keys)) == len([k for n, k in enumerate(keys) if n == 0 or keys[n - 1] != k])
    for key in set(keys):
        scores = [i["clauses"][0]["score"] for i, k in zip(items, keys) if k == key]
        assert scores == sorted(scores, reverse=True)
    best = {}
    for item, key in zip(items, keys):
        best.setdefault(key[0], item["clauses"][0]["score"])
    assert list(best.values()) == sorted(best.values(), reverse=True)


def test_week_boundaries_sunday_2359_in_monday_0000_out(site: Path) -> None:
    sunday = plant(site, title="Sunday night item", published=None, first_seen="2026-11-22T23:59:00+00:00")
    monday = plant(site, title="Monday morning item", published=None, first_seen="2026-11-23T00:00:00+00:00")
    previous_sunday = plant(site, title="Week before", published="2026-11-15")
    w47 = {i["id"] for i in digest_json(site, "--week", "2026-W47")["items"]}
    w48 = {i["id"] for i in digest_json(site, "--week", "2026-W48")["items"]}
    assert sunday in w47 and monday not in w47 and previous_sunday not in w47
    assert monday in w48 and sunday not in w48


def test_planted_duplicate_story_is_shown_once_with_its_sources(site: Path) -> None:
    """A law-firm alert paraphrasing the FTC's ReelPass release, embedded by the real analyse step."""
    from scanner.analyse import analyse

    config = load_config(site)
    alert = plant(site, **REELPASS_ALERT, source="kestrel-vance-llp-client-alerts", kind="legal-news",
                  jurisdiction="US", published="2026-09-17", url="https://example.org/kv/reelpass")
    with Store.open(config.database) as store:
        analyse(config, store)
    items = digest_json(site, *DEV_PERIOD)["items"]
    assert len(items) == 60 and alert not in {i["id"] for i in items}
    story = next(i for i in items if "ReelPass" in i["title"])
    assert story["source"] == "us-federal-trade-commission"
    assert story["related"] == [{"url": "https://example.org/kv/reelpass", "source": "kestrel-vance-llp-client-alerts",
                                 "source_name": "Kestrel Vance LLP client alerts", "title": REELPASS_ALERT["title"]}]
    md = run("digest", "--config", str(site), *DEV_PERIOD, "--format", "md", "--out", "-").stdout
    assert "Also reported by: [FTC targets streaming service ReelPass" in md


COMMITTEE_RELEASE = {
    "title": "FTC Sues StreamCo Over Hidden Processing Fees Charged When Viewers Buy Coins For Creators",
    "text": (
        "The Federal Trade Commission today sued StreamCo Inc., the operator of the StreamCo live-streaming app, "
        "alleging that it charged undisclosed processing fees of up to 12% when viewers bought Coins to send "
        "virtual gifts to creators.\n\nAccording to the complaint, the fee was added only on the final payment "
        "screen and was labelled as a \"service adjustment\". The FTC alleges that StreamCo collected more than "
        "$48 million in such fees between 2024 and 2026."
    ),
}
COMMITTEE_ALERT = {
    "title": "Drip Pricing Meets Live Streaming: Regulator Targets Undisclosed Charges On Virtual Currency",
    "text": (
        "On November 16 the Federal Trade Commission sued StreamCo Inc., the operator of the StreamCo live-streaming "
        "app, alleging that it charged undisclosed processing fees of up to 12% when viewers bought Coins to send "
        "virtual gifts to creators.\n\nAccording to the complaint, the fee was added only on the final payment "
        "screen and was labelled as a \"service adjustment\". The FTC alleges that StreamCo collected more than "
        "$48 million in such fees between 2024 and 2026."
    ),
}


def test_title_case_headlines_no_longer_dilute_the_term_overlap() -> None:
    """A verbatim repeat under another Title Case headline: the headline's pseudo-names used to sink the overlap."""
    from scanner.digest import _idf, distinctive_terms, same_story, story_terms, term_overlap

    corpus = [json.loads(line) for line in (Path(__file__).parent.parent / "scanner/data/eval/dev.jsonl").open()]
    corpus += [COMMITTEE_RELEASE, COMMITTEE_ALERT]
    old_idf = _idf({"text": f"{d['title']}\n{d['text']}"} for d in corpus)  # headlines counted as names
    before = term_overlap(distinctive_terms(f"{COMMITTEE_RELEASE['title']}\n{COMMITTEE_RELEASE['text']}"),
                          distinctive_terms(f"{COMMITTEE_ALERT['title']}\n{COMMITTEE_ALERT['text']}"), old_idf)
    after = term_overlap(story_terms(**COMMITTEE_RELEASE), story_terms(**COMMITTEE_ALERT), _idf(corpus))
    assert not same_story(0.88, before, days_apart=3)
    assert after >= 0.95 and same_story(0.88, after, days_apart=3)


def test_a_release_and_its_verbatim_law_firm_repeat_are_one_story(site: Path) -> None:
    """The press release and a law-firm alert three days later repeating it under another title: one story."""
    from scanner.analyse import analyse

    config = load_config(site)
    release = plant(site, **COMMITTEE_RELEASE, source="us-federal-trade-commission", jurisdiction="US",
                    published="2026-11-16", url="https://example.org/ftc/streamco")
    alert = plant(site, **COMMITTEE_ALERT, source="kestrel-vance-llp-client-alerts", kind="legal-news",
                  jurisdiction="US", published="2026-11-19", url="https://example.org/kv/streamco")
    with Store.open(config.database) as store:
        analyse(config, store)
    items = digest_json(site, "--week", "2026-W47")["items"]
    ids = {i["id"] for i in items}
    assert release in ids and alert not in ids
    story = next(i for i in items if i["id"] == release)
    assert [r["url"] for r in story["related"]] == ["https://example.org/kv/streamco"]


def test_hostile_title_is_inert_in_html_and_escaped_in_atom_and_markdown(site: Path) -> None:
    plant(site, title=HOSTILE, text=f"Text {HOSTILE}", url="https://example.org/x?a=<b>",
          clauses=[{"clause_id": "GIFT-1", "score": 0.9, "evidence": HOSTILE}])
    plant(site, title=f"Also {HOSTILE}", url="javascript:alert(3)")
    out = {fmt: run("digest", "--config", str(site), "--week", "2026-W47", "--format", fmt, "--out", "-").stdout
           for fmt in ("html", "atom", "md")}
    html = out["html"]
    assert "<script" not in html.lower() and "<img" not in html.lower() and "javascript:" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    atom = out["atom"]
    assert "<script" not in atom and "<img" not in atom and "javascript:" not in atom
    feed = feedparser.parse(atom.encode())
    items = digest_json(site, "--week", "2026-W47")["items"]
    assert not feed.bozo and len(feed.entries) == len(items)
    assert HOSTILE in {e.title for e in feed.entries}
    assert len({e.id for e in feed.entries}) == len(items)
    assert not re.search(r"(?<!\\)<(script|img)", out["md"]) and r"\<script>alert(1)\</script>" in out["md"]


def test_markdown_escape_keeps_source_text_on_one_inert_line() -> None:
    assert md_escape("a\n\n# b [x](javascript:y) *c*") == r"a # b \[x\](javascript:y) \*c\*"


def test_competitor_change_shows_its_diff_not_the_page(site: Path) -> None:
    diff = "-You must be at least 16 years old to buy Coins.\n+You must be at least 18 years old to buy Coins."
    plant(site, title="Beamly Gifts and Coins policy: page changed", source="beamly-gifts-coins-policy",
          kind="competitor", jurisdiction=None, text="WHOLE PAGE TEXT " * 50, diff=diff,
          clauses=[{"clause_id": "MINOR-1", "score": 0.8, "evidence": "at least 18"}])
    md = run("digest", "--config", str(site), "--week", "2026-W47", "--format", "md", "--out", "-").stdout
    assert "```diff\n  -You must be at least 16 years old to buy Coins.\n  +You must be at least 18" in md
    assert "WHOLE PAGE TEXT" not in md
    html = run("digest", "--config", str(site), "--week", "2026-W47", "--format", "html", "--out", "-").stdout
    assert "+You must be at least 18 years old to buy Coins.</span>" in html and "WHOLE PAGE TEXT" not in html


def test_possible_clauses_are_shown_as_such_and_never_make_an_item_relevant(site: Path) -> None:
    plant(site, title="Regulator consults on streamer payout timing", text="Payouts to creators within seven days.",
          clauses=[{"clause_id": "CASH-1", "score": 0.7, "evidence": "Payouts to creators within seven days."},
                   {"clause_id": "CASH-3", "score": 0.3, "evidence": "", "tier": 2}])
    plant(site, title="Regulator notes a rise in streaming subscriptions", text="Subscriptions grew.",
          clauses=[{"clause_id": "SUB-1", "score": 0.25, "evidence": "", "tier": 2}])
    data = digest_json(site, "--week", "2026-W47")
    items = {i["title"]: i for i in data["items"]}
    payout = items["Regulator consults on streamer payout timing"]
    assert [c["id"] for c in payout["clauses"]] == ["CASH-1"] and [c["id"] for c in payout["possible"]] == ["CASH-3"]
    assert items["Regulator notes a rise in streaming subscriptions"]["clauses"] == []
    md = run("digest", "--config", str(site), "--week", "2026-W47", "--format", "md", "--out", "-").stdout
    relevant, also_seen = md.split("## Also seen")
    assert "Possibly also (lower confidence, check): CASH-3" in relevant
    assert "Regulator notes a rise in streaming subscriptions" not in relevant
    assert re.search(r"Regulator notes a rise in streaming subscriptions.*· possibly SUB-1", also_seen)
    html = run("digest", "--config", str(site), "--week", "2026-W47", "--format", "html", "--out", "-").stdout
    assert "Possibly also (lower confidence, check): <strong>CASH-3</strong>" in html and "possibly SUB-1" in html


def test_summary_names_failed_sources_and_top_clauses(site: Path) -> None:
    with Store.open(load_config(site).database) as store:
        store.db["fetches"].insert({"source_id": "ofcom", "started_at": "2026-11-18T06:00:00+00:00", "status": "error",
                                    "error": "https://ofcom.example/news: HTTP 503 after 2 retries"})
        store.db["fetches"].insert({"source_id": "sat", "started_at": "2026-11-23T00:00:00+00:00", "status": "error",
                                    "error": "next week"})
        summary = build_digest(store, iso_week("2026-W47")).summary
    assert [f["source"] for f in summary["failed_sources"]] == ["ofcom"]
    assert summary["top_clauses"] and summary["developments"] == sum(k["count"] for k in summary["by_kind"])
    md = run("digest", "--config", str(site), "--week", "2026-W47", "--format", "md", "--out", "-").stdout
    assert "HTTP 503 after 2 retries" in md and "## Trends" in md


def test_trends_count_policy_areas_per_week(site: Path) -> None:
    with Store.open(load_config(site).database) as store:
        digest = build_digest(store, iso_week("2026-W47"))
    assert digest.trends["weeks"][-1] == "2026-W47" and len(digest.trends["weeks"]) == 12
    totals = [sum(a["counts"]) for a in digest.trends["areas"]]
    assert totals == sorted(totals, reverse=True) and sum(totals) >= 44
    html = render(digest, "html").decode()
    assert "<svg" in html and '<table class="trends"' in html and "<script" not in html


def test_rerun_is_byte_identical_and_written_atomically(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run("digest", "--config", str(site), "--week", "2026-W47", "--out", str(out))
    assert first.exit_code == 0
    assert first.stdout.split() == [str(out / f"2026-W47.{ext}") for ext in ("md", "html", "atom", "json")] + [
        str(out / "deadlines.ics")]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run("digest", "--config", str(site), "--week", "2026-W47", "--out", str(out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    run("digest", "--config", str(site), *DEV_PERIOD, "--format", "md")
    assert (site.parent / "digests" / "2026-09-14_2026-11-22.md").exists()


def test_usage_errors_exit_2(site: Path) -> None:
    for args in (["--week", "2026-W99"], ["--week", "../../etc"], ["--format", "md,html", "--out", "-"],
                 ["--format", "pdf"], ["--week", "2026-W47", "--since", "2026-11-01"]):
        result = CliRunner().invoke(app, ["digest", "--config", str(site), *args])
        assert result.exit_code == 2, args


def test_unreadable_database_exits_1(tmp_path: Path) -> None:
    (tmp_path / "scanner.db").write_bytes(b"not a database" * 100)
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    result = CliRunner().invoke(app, ["digest", "--config", str(tmp_path / "sources.yaml")])
    assert result.exit_code == 1 and "scan: error:" in result.stderr
