"""The web workspace end to end: a real uvicorn server on loopback over the analysed example site,
driven by real headless Chromium (Playwright) and httpx. No mocks.

Every page is screenshotted (wide and 375 px) into tests/artifacts/screenshots/ for a person to look at.
A missing Chromium fails these tests (it never skips them): CI installs it in .ci/run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scanner.web.app import running

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("SCAN_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE_TITLE = "<script>alert(1)</script> Zorblax gift rules <img src=x onerror=alert(1)>"
HOSTILE_UID = "hostile0000000001"
DIFF_UID = "pagechange0000001"
QUERY = "gift cash-out minors"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web_config(analysed_site, tmp_path_factory) -> Path:
    """The analysed site's copy, plus a hostile development, a tracked-page change and a written digest."""
    from scanner.config import load_config
    from scanner.digest import write_digest
    from scanner.store import Store

    config_path = analysed_site.copy_to(tmp_path_factory.mktemp("web") / "site")
    config = load_config(config_path)
    source = config.sources[0]
    competitor = next((s for s in config.sources if s.kind == "competitor"), source)
    with Store.open(config.database) as store:
        from datetime import datetime, timedelta, timezone

        from scanner.lifecycle import analyse_lifecycle

        analyse_lifecycle(store)  # key dates and threads, as a crawl cycle finds them

        today = datetime.now(timezone.utc).date()
        latest = (today - timedelta(days=today.isoweekday())).isoformat()  # in the last complete week: on "This week"
        store.developments.add({
            "uid": HOSTILE_UID, "source_id": source.id, "kind": source.kind, "jurisdiction": source.jurisdiction,
            "url": "https://example.invalid/hostile", "canonical_url": "https://example.invalid/hostile",
            "title": HOSTILE_TITLE, "summary": "<b>bold?</b> <script>alert(2)</script>",
            "text": "Gift rules changed.\n<script>alert(3)</script>\n<img src=x onerror=alert(4)> and \"quotes\" & ampersands.",
            "published": latest, "content_hash": "hostile-hash", "lang": "en"})
        store.developments.add({
            "uid": DIFF_UID, "source_id": competitor.id, "kind": "competitor", "jurisdiction": competitor.jurisdiction,
            "url": "https://example.invalid/policy", "canonical_url": "https://example.invalid/policy",
            "title": "Creator payout terms changed", "summary": "The payout threshold moved.",
            "text": "Creators can cash out gifts once they reach 50 USD.\nPayouts are monthly.",
            "diff": "--- before\n+++ after\n@@ -1,2 +1,2 @@\n-Creators can cash out gifts once they reach 100 USD.\n"
                    "+Creators can cash out gifts once they reach 50 USD.\n Payouts are monthly.",
            "published": latest, "content_hash": "diff-hash", "lang": "en"})
        write_digest(store, config, week=_week_of(latest))
    return config_path


def _week_of(day: str) -> str:
    from datetime import date

    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


@pytest.fixture(scope="module")
def base_url(web_config) -> Iterator[str]:
    from scanner.config import load_config
    from scanner.web import create_app

    with running(create_app(load_config(web_config), read_only=False, token=None, post_rate=1000)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it (apt-get install -y chromium) — "
                    "the web tests need a real browser and are never skipped")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.dialogs = []  # type: ignore[attr-defined]
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    console_errors: list[str] = []
    tab.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    tab.console_errors = console_errors  # type: ignore[attr-defined]
    yield tab
    context.close()


def shot(page, name: str) -> None:
    """A full-page screenshot wide and at 375 px (a phone), for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    wide = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(SHOTS / f"{name}-375.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size(wide)
    assert width <= 380, f"{name}: the page is {width}px wide at 375px (horizontal scrolling)"


def get_json(url: str, **params) -> dict:
    response = httpx.get(url, params={**params, "format": "json"}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def cli_json(web_config: Path, *args: str) -> dict:
    """The CLI's JSON for the same question (in process, through typer, as a user runs it)."""
    from typer.testing import CliRunner

    from scanner.cli import app

    result = CliRunner().invoke(app, ["--config", str(web_config), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def csrf_of(client: httpx.Client, url: str) -> str:
    html = client.get(url).text
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html)[1]


# --- browser journeys ----------------------------------------------------------------------------


def test_search_open_reject_clause_then_review_it(page, base_url, web_config) -> None:
    """search → open a development → reject a clause → the clause page no longer lists it → review the clause."""
    page.goto(base_url + "/")
    shot(page, "home")
    page.fill("#quick-q", QUERY)
    page.press("#quick-q", "Enter")
    page.wait_for_url("**/search?q=*")
    assert "result" in page.locator("#results").inner_text()
    shot(page, "search")
    results = get_json(base_url + "/search", q=QUERY)["results"]
    target = next(r for r in results if r["clauses"] and r["id"] not in (HOSTILE_UID, DIFF_UID))
    clause_id = target["clauses"][0]["id"]
    page.click(f'a[href="/developments/{target["id"]}"] >> nth=0')
    page.wait_for_url(f"**/developments/{target['id']}")
    assert page.locator("h1").inner_text().strip() == target["title"].strip()
    assert page.locator(".text mark").count() >= 1, "the evidence sentence is highlighted"
    shot(page, "development")

    queue = [c["id"] for c in get_json(base_url + "/clauses", needs_review="1")["clauses"]]
    assert clause_id in queue
    page.click(f'button[aria-label="{clause_id} is wrong"]')
    page.wait_for_url(f"**/developments/{target['id']}?judged=*")
    assert "recorded" in page.locator(".notice").inner_text()
    assert page.locator(f'table.clauses a[href="/clauses/{clause_id}"]').count() == 0

    page.goto(f"{base_url}/clauses/{clause_id}")
    assert page.locator(f'#timeline-h ~ ol a[href="/developments/{target["id"]}"]').count() == 0
    page.fill("#note", "No change needed <b>after</b> the web check")
    page.fill("#by", "web-test")
    page.click("form.review button[type=submit]")
    page.wait_for_url(f"**/clauses/{clause_id}?reviewed=1*")
    assert "No change needed <b>after</b> the web check" in page.locator("ul.reviews").inner_text()
    shot(page, "clause")
    assert clause_id not in [c["id"] for c in get_json(base_url + "/clauses", needs_review="1")["clauses"]]
    view = cli_json(web_config, "clause", clause_id)
    assert target["id"] not in [d["id"] for d in view["developments"]]
    assert view["reviews"][-1]["note"] == "No change needed <b>after</b> the web check"
    page.goto(base_url + "/clauses?needs_review=1")
    shot(page, "clauses")
    assert not page.dialogs and not page.console_errors


def test_add_a_clause_from_the_select(page, base_url) -> None:
    page.goto(f"{base_url}/developments/{DIFF_UID}")
    assert page.locator("pre.diff .add").count() == 1 and page.locator("pre.diff .del").count() == 1
    shot(page, "development-diff")
    choice = page.locator("#add-clause option").first.get_attribute("value")
    page.select_option("#add-clause", choice)
    page.click("form.add-clause button")
    page.wait_for_url("**?judged=*")
    row = page.locator(f'table.clauses a[href="/clauses/{choice}"]')
    assert row.count() == 1
    assert "added" in page.locator("table.clauses").inner_text()


def test_create_and_delete_a_subscription(page, base_url) -> None:
    page.goto(base_url + "/alerts")
    page.fill("#name", "loot-boxes-eu")
    page.fill("#topic", "loot boxes and paid random rewards")
    page.fill("#jurisdictions", "EU UK")
    page.fill("#email", "not-an-email")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("form.subscribe button[type=submit]")
    assert posted.value.status == 400
    error = page.locator("#form-error").inner_text()
    assert "not-an-email" in error
    assert page.input_value("#topic") == "loot boxes and paid random rewards", "the form keeps what was typed"
    shot(page, "alerts-error")
    page.fill("#email", "legal@example.com")
    page.click("form.subscribe button[type=submit]")
    page.wait_for_url("**/alerts?done=*")
    card = page.locator("article.subscription", has_text="loot-boxes-eu")
    assert card.count() == 1 and "email:legal@example.com" in card.inner_text()
    shot(page, "alerts")
    assert [s["name"] for s in get_json(base_url + "/alerts")["subscriptions"]] == ["loot-boxes-eu"]
    page.click('button[aria-label="Delete subscription loot-boxes-eu"]')
    page.wait_for_url("**/alerts?done=*")
    assert page.locator("article.subscription").count() == 0
    assert "unsubscribed loot-boxes-eu" in page.locator(".notice").inner_text().lower()


def test_hostile_titles_render_as_text(page, base_url) -> None:
    for path in (f"/developments/{HOSTILE_UID}", "/", "/search?q=zorblax"):
        page.goto(base_url + path)
        page.wait_for_load_state("load")
        assert HOSTILE_TITLE in page.locator("main").inner_text(), path
        assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0, path
    page.goto(f"{base_url}/developments/{HOSTILE_UID}")
    assert page.locator("h1").inner_text() == HOSTILE_TITLE
    assert "<script>alert(3)</script>" in page.locator(".text").inner_text()
    shot(page, "development-hostile")
    assert page.dialogs == [], f"a dialog fired: {page.dialogs}"


def test_every_other_page_renders(page, base_url, web_config) -> None:
    from scanner.config import load_config

    clause_id = cli_json(web_config, "clauses")["clauses"][0]["id"]
    pages = {"deadlines": "/deadlines", "digests": "/digests", "sources": "/sources",
             "not-found": "/developments/nope", "clause-not-found": f"/clauses/{clause_id}0"}
    written = sorted(p.stem for p in load_config(web_config).digests.glob("*.json"))
    pages["digest"] = f"/digests/{written[0]}"
    for name, path in pages.items():
        response = page.goto(base_url + path)
        assert response.status == (404 if "not-found" in name else 200), (name, response.status)
        assert response.headers["content-security-policy"] == CSP
        shot(page, name)
    page.goto(base_url + f"/clauses/{clause_id}0")
    assert "did you mean" in page.locator(".error").inner_text()
    page.goto(base_url + "/search?q=zzzzqqqq+xxyyzz&source=" + load_config(web_config).sources[0].id + "&since=2001-01-01&until=2001-01-02")
    assert "No relevant developments" in page.locator(".empty").inner_text()
    shot(page, "search-empty")
    page.goto(base_url + "/")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "quick-q", "'/' focuses the search box"
    assert not page.dialogs
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


# --- HTTP: security, JSON twins, calendar, digests ------------------------------------------------


def test_post_without_csrf_token_is_refused(base_url, web_config) -> None:
    clause_id = cli_json(web_config, "clauses")["clauses"][0]["id"]
    with httpx.Client(base_url=base_url) as client:
        assert client.post(f"/clauses/{clause_id}/reviews", data={"note": "x"}).status_code == 403
        token = csrf_of(client, f"/clauses/{clause_id}")
        other = httpx.post(f"{base_url}/clauses/{clause_id}/reviews", data={"note": "x", "csrf": token})
        assert other.status_code == 403, "a token without its cookie is refused"
        forged = client.post(f"/clauses/{clause_id}/reviews", data={"note": "x", "csrf": "0" * 64})
        assert forged.status_code == 403
        assert client.post("/alerts", data={"name": "x", "topic": "y"}).status_code == 403
        assert client.post(f"/developments/{HOSTILE_UID}/judgments", data={"clause": clause_id, "verdict": "wrong"}).status_code == 403
        big = client.post(f"/clauses/{clause_id}/reviews", data={"note": "x" * 70_000, "csrf": token})
        assert big.status_code == 413
        ok = client.post(f"/clauses/{clause_id}/reviews", data={"note": "fine", "csrf": token})
        assert ok.status_code == 303
        page = client.get("/")
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert client.get("/?week=2026-W99").status_code == 400
        rebound = client.get("/", headers={"host": "attacker.example:80"})
        assert rebound.status_code == 421, "a DNS-rebound page cannot read the loopback workspace"


def test_rate_limit_read_only_and_token(web_config) -> None:
    from scanner.config import load_config
    from scanner.web import create_app

    config = load_config(web_config)
    with running(create_app(config, read_only=False, token=None, post_rate=3, post_window=60)) as url:
        with httpx.Client(base_url=url) as client:
            token = csrf_of(client, "/alerts")
            codes = [client.post("/alerts", data={"csrf": token, "name": "bad name!", "topic": "t"}).status_code
                     for _ in range(4)]
            assert codes == [400, 400, 400, 429]
    with running(create_app(config, read_only=True, token=None)) as url:
        html = httpx.get(url + f"/developments/{HOSTILE_UID}").text
        assert "<form method=\"post\"" not in html and "Read-only workspace" in html
        refused = httpx.post(url + "/alerts", data={"name": "n", "topic": "t"})
        assert refused.status_code == 403 and "read-only" in refused.text
    with running(create_app(config, read_only=False, token="s3cret-token")) as url:
        assert httpx.get(url + "/").status_code == 401
        assert httpx.get(url + "/?format=json").json()["status"] == 401
        assert httpx.get(url + "/sources?format=json", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
        assert httpx.get(url + "/", headers={"authorization": "Bearer wrong"}).status_code == 401
        with httpx.Client(base_url=url) as client:
            login = client.get("/sources?token=s3cret-token")
            assert login.status_code == 303 and login.headers["location"] == "/sources"
            assert "s3cret-token" not in login.headers["set-cookie"]
            assert client.get("/sources").status_code == 200


def test_serve_refuses_a_public_address_without_a_token(web_config) -> None:
    result = subprocess.run([sys.executable, "-m", "scanner", "serve", "--host", "0.0.0.0", "--config", str(web_config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "SCAN_WEB_TOKEN": ""})
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a token" in result.stderr


def test_json_twins_are_the_cli_shapes(base_url, web_config) -> None:
    assert get_json(base_url + "/search", q=QUERY, kind="regulator") == cli_json(web_config, "search", QUERY, "--kind", "regulator")
    clause_id = cli_json(web_config, "clauses")["clauses"][0]["id"]
    assert get_json(base_url + f"/clauses/{clause_id}") == cli_json(web_config, "clause", clause_id)
    assert get_json(base_url + "/clauses") == cli_json(web_config, "clauses")
    assert get_json(base_url + "/clauses", needs_review="1") == cli_json(web_config, "clauses", "--needs-review")
    assert get_json(base_url + "/deadlines", since="2000-01-01") == cli_json(web_config, "deadlines", "--since", "2000-01-01")
    assert get_json(base_url + "/sources") == cli_json(web_config, "sources")
    thread = get_json(base_url + f"/developments/{DIFF_UID}")
    cli_thread = cli_json(web_config, "thread", DIFF_UID)
    assert thread["development"].pop("text") and thread.pop("duplicates") == []
    assert thread == cli_thread
    subs = get_json(base_url + "/alerts")["subscriptions"]
    assert [{k: v for k, v in s.items() if k != "recent"} for s in subs] == cli_json(web_config, "subscriptions")["subscriptions"]
    accept = httpx.get(base_url + "/deadlines", headers={"accept": "application/json"})
    assert accept.headers["content-type"].startswith("application/json") and "deadlines" in accept.json()
    home = get_json(base_url + "/")
    assert set(home) >= {"period", "items", "coming_up", "review_queue"}
    missing = httpx.get(base_url + "/developments/nope?format=json")
    assert missing.status_code == 404 and "no development 'nope'" in missing.json()["error"]


def test_deadlines_ics_parses(base_url) -> None:
    from icalendar import Calendar

    response = httpx.get(base_url + "/deadlines.ics?since=2000-01-01")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assert len(events) == len(get_json(base_url + "/deadlines", since="2000-01-01")["deadlines"]) > 0
    assert all(str(e["uid"]).endswith("@scan") for e in events)


def test_digests_refuse_paths(base_url, web_config) -> None:
    from scanner.config import load_config

    name = sorted(p.stem for p in load_config(web_config).digests.glob("*.json"))[0]
    listing = httpx.get(base_url + "/digests?format=json").json()["digests"]
    assert listing[0]["name"] == name and "html" in listing[0]["formats"]
    assert httpx.get(f"{base_url}/digests/{name}").status_code == 200
    md = httpx.get(f"{base_url}/digests/{name}.md")
    assert md.status_code == 200 and md.text.startswith("#")
    for bad in ("..%2F..%2Fsources.yaml", "..%2Fsources", "%2e%2e", "2026-W47.yaml", "2026-W47.md%2F..%2F..%2Fx",
                "..%5Csources.yaml", "2026-W4"):
        response = httpx.get(f"{base_url}/digests/{bad}")
        assert response.status_code == 404, bad
        assert "sources:" not in response.text
