"""The `scan` command: parse options, call the library, print text or `--json`, map errors to exit codes.

Exit codes follow the contract: 0 done (even when some sources failed), 1 the run could not
proceed (bad config, unreadable corpus, database error, unknown id, a crawl in which no source
could be fetched, another run holding the database too long), 2 usage error. Read commands open
the database read-only and never create one. Heavy libraries are imported inside commands so
`scan --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from scanner import __version__

if TYPE_CHECKING:
    from scanner.config import Config
    from scanner.store import Store

app = typer.Typer(
    help="Horizon scanning for LIVE monetization policy: crawl regulators, law firms and competitors, "
    "match developments to your policy clauses, search, digest and alert.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

CONFIG_HELP = "sources.yaml to use [env SCAN_CONFIG; default ./sources.yaml]"
DB_HELP = "SQLite database, overriding the config's [env SCAN_DB]"
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", metavar="PATH", help=CONFIG_HELP)]
DbOpt = Annotated[Optional[Path], typer.Option("--db", metavar="PATH", help=DB_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]
ByOpt = Annotated[Optional[str], typer.Option("--by", metavar="NAME", help="Who [default: the login name]")]
WaitOpt = Annotated[float, typer.Option("--wait", metavar="SECONDS", min=0,
                                        help="How long to wait for another run that holds the database [default: 300]")]


@dataclass
class Globals:
    """`--config`/`--db` given before the command; the command's own options win."""

    config: Path | None = None
    db: Path | None = None


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"scan: error: {message}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    typer.echo(f"scan: {message}", err=True)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn the library's typed errors into one stderr line and exit code 1 (2 for usage errors)."""
    from scanner.errors import ScanError, UsageError

    try:
        yield
    except UsageError as exc:
        fail(str(exc), 2)
    except ScanError as exc:
        fail(str(exc))
    except sqlite3.Error as exc:
        fail(f"database: {exc}")
    except OSError as exc:
        fail(f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}".strip())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


class _UserFormatter(logging.Formatter):
    """Warnings read `scan: warning: …`; debug and info keep the logger's name for the engineer on call."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.WARNING:
            return f"scan: {record.levelname.lower()}: {record.getMessage()}"
        return f"{record.levelname.lower()} {record.name}: {record.getMessage()}"


def setup_logging(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UserFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    for noisy in ("httpx", "httpcore", "filelock", "urllib3", "trafilatura", "htmldate", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose < 3 else logging.DEBUG)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scan {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: ConfigOpt = None,
    db: DbOpt = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="-v: each source's outcome; -vv: every fetch, retry, skip and decision")] = 0,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version")] = None,
) -> None:
    setup_logging(verbose)
    ctx.obj = Globals(config, db)


def settings(ctx: typer.Context, config: Path | None, db: Path | None) -> "Config":
    from scanner.config import load_config

    given = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    return load_config(config or given.config, db=db or given.db)


def open_read(ctx: typer.Context, config: Path | None, db: Path | None) -> tuple["Config", "Store"]:
    """Config and a read-only store: a missing or foreign database is an error, and nothing is written."""
    from scanner.store import Store

    from scanner.store import StoreError

    cfg = settings(ctx, config, db)
    try:
        return cfg, Store.open(cfg.database, readonly=True)
    except StoreError as exc:
        demo = Path("scan-demo/sources.yaml")
        if cfg.database.exists() or not demo.is_file() or (cfg.path and cfg.path.resolve() == demo.resolve()):
            raise
        raise StoreError(f"{exc}; to use the demo's database: scan --config {demo} {ctx.info_name} …") from None


def open_write(ctx: typer.Context, config: Path | None, db: Path | None, *, corpus: bool = False) -> tuple["Config", "Store"]:
    """Config and a writable store (created or migrated); with `corpus`, the corpus is checked first."""
    from scanner.store import Store

    cfg = settings(ctx, config, db)
    if corpus:
        from scanner.policies import load_corpus

        load_corpus(cfg.policies)
    return cfg, Store.open(cfg.database)


def who(by: str | None) -> str:
    """The name a judgment or review is recorded under: --by, else the login name."""
    import getpass

    return by or getpass.getuser()


def iso_day(value: Optional[str], option: str) -> Optional[str]:
    """A YYYY-MM-DD date or a usage error (exit 2) naming the option."""
    from scanner.errors import UsageError
    from scanner.textutil import iso_day as parse

    try:
        return parse(value, option)
    except UsageError as exc:
        raise typer.BadParameter(str(exc).removeprefix(f"{option} "), param_hint=option) from None


# --- crawling --------------------------------------------------------------------------------------


def _cycle(ctx: typer.Context, config: Path | None, db: Path | None, sources: list[str] | None, *, alerts: bool,
           wait: float) -> Any:
    """Crawl (and alert) under the run lock with progress on stderr; exits 1 when every source failed."""
    from scanner.pipeline import run_cycle, run_lock
    from scanner.progress import CycleProgress

    cfg, store = open_write(ctx, config, db, corpus=True)
    for source_id in sources or []:
        cfg.source(source_id)
    with store, run_lock(cfg.database, wait=wait):
        with CycleProgress() as progress:
            result = run_cycle(cfg, store, sources=sources, alerts=alerts, progress=progress)
        progress.summary(result.sources, result.analysis)
        alert_json = None
        if result.alerts is not None:
            from scanner.alerts import alerts_json

            alert_json = alerts_json(store, result.alerts)
    return cfg, result, alert_json


@app.command()
def crawl(
    ctx: typer.Context,
    source: Annotated[Optional[list[str]], typer.Option("--source", "-s", metavar="ID", help="Only this source id (repeatable)")] = None,
    wait: WaitOpt = 300.0,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch sources, extract text, store, embed and match to clauses. A failing source is recorded; the rest go on."""
    with errors_to_exit():
        _, result, _ = _cycle(ctx, config, db, source, alerts=False, wait=wait)
    if as_json:
        print_json({"sources": [r.as_json() for r in result.sources], "analysis": result.analysis.as_json()})
    _exit_on_outage(result)


def _exit_on_outage(result: Any) -> None:
    if result.all_failed:
        fail(f"no source could be fetched ({', '.join(result.failed_sources)}); `scan sources` shows each error")


@app.command()
def run(
    ctx: typer.Context,
    wait: WaitOpt = 300.0,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The cron entry point: crawl and analyse every due source, then deliver alerts."""
    with errors_to_exit():
        _, result, alert_json = _cycle(ctx, config, db, None, alerts=True, wait=wait)
    if as_json:
        print_json({"sources": [r.as_json() for r in result.sources], "analysis": result.analysis.as_json(),
                    **(alert_json or {})})
    else:
        _print_alerts(alert_json or {"alerts": [], "unconfirmed": []}, dry_run=False)
    _exit_on_outage(result)


@app.command()
def sources(ctx: typer.Context, config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Each configured source with its health: last fetch, status, developments, last error, and flags."""
    from scanner.health import source_rows

    with errors_to_exit():
        cfg = settings(ctx, config, db)
        rows = source_rows(cfg)
    if as_json:
        print_json({"sources": rows})
        return
    if not cfg.database.is_file():
        note(f"no database at {cfg.database} yet: every source is listed as never fetched (run `scan crawl`)")
    _print_sources(rows)


def _print_sources(rows: list[dict[str, Any]]) -> None:
    header = ("SOURCE", "KIND", "JUR", "STATUS", "DEVS", "LAST FETCH")
    table = [(r["id"], r["kind"], r["jurisdiction"] or "-", r["last_status"] or "never fetched", str(r["developments"]),
              (r["last_fetch"] or "-")[:16].replace("T", " ")) for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(header)]
    line = "  ".join(f"{{:<{w}}}" if i != 4 else f"{{:>{w}}}" for i, w in enumerate(widths))
    typer.echo(line.format(*header).rstrip())
    for row, cells in zip(rows, table):
        typer.echo(line.format(*cells).rstrip())
        if row["last_error"]:
            typer.echo(f"    error: {row['last_error']}")
        if row["same_text"]:
            typer.echo(f"    warning: {row['same_text']} pages gave the same text — extraction may be failing")
        if row["silent"]:
            typer.echo(f"    silent: nothing new for {row['days_since_last']} days (usually every "
                       f"{row['usual_gap_days']:g} days)")


# --- reading -----------------------------------------------------------------------------------------


@app.command()
def digest(
    ctx: typer.Context,
    week: Annotated[Optional[str], typer.Option("--week", metavar="YYYY-Www", help="ISO week like 2026-W47, Monday to Sunday [default: the last complete week]")] = None,
    since: Annotated[Optional[str], typer.Option("--since", metavar="DATE", help="First day, YYYY-MM-DD (inclusive)")] = None,
    until: Annotated[Optional[str], typer.Option("--until", metavar="DATE", help="Last day, YYYY-MM-DD (inclusive) [default: today]")] = None,
    formats: Annotated[Optional[str], typer.Option("--format", "-f", metavar="LIST", help="Comma-separated formats: md,html,atom,json [default: all four into a folder; md on stdout]")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", metavar="DIR", help="Directory to write into, or - for stdout (one format) [default: the config's digests/]")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The digest of developments published in a period: most relevant first, clauses attached, one file per format."""
    from datetime import datetime, timezone

    from scanner.digest import FORMATS, build_digest, parse_formats, render, resolve_period, write_files

    try:
        period = resolve_period(week, since, until, datetime.now(timezone.utc).date())
        chosen = parse_formats(formats or ("md" if out == "-" else ",".join(FORMATS)))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if out == "-" and (len(chosen) != 1 or as_json):
        raise typer.BadParameter("--out - writes one format to stdout: pick it with --format (and drop --json)")
    with errors_to_exit():
        cfg, store = open_read(ctx, config, db)
        with store:
            result = build_digest(store, period)
        if out == "-":
            sys.stdout.buffer.write(render(result, chosen[0]))
            return
        paths = write_files(result, chosen, Path(out) if out else cfg.digests)
    if as_json:
        print_json({"period": period.as_json(), "files": [str(p) for p in paths], "items": len(result.items)})
        return
    for path in paths:
        typer.echo(str(path))


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(metavar="QUERY", help="Free text, e.g. \"loot box odds disclosure\"")],
    since: Annotated[Optional[str], typer.Option("--since", metavar="DATE", help="Published on or after, YYYY-MM-DD")] = None,
    until: Annotated[Optional[str], typer.Option("--until", metavar="DATE", help="Published on or before, YYYY-MM-DD")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", "-k", metavar="KIND", help="regulator, legal-news or competitor (repeatable)")] = None,
    jurisdiction: Annotated[Optional[list[str]], typer.Option("--jurisdiction", "-j", metavar="CODE", help="e.g. US, UK, EU (repeatable)")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", "-s", metavar="ID", help="Source id (repeatable)")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Most results to show")] = 20,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ranked developments for a free-text query, each with its attached clauses (BM25 + embeddings)."""
    from scanner.config import KINDS

    since, until = iso_day(since, "--since"), iso_day(until, "--until")
    if since and until and since > until:
        raise typer.BadParameter(f"--since {since} is after --until {until}")
    for value in kind or []:
        if value.lower() not in KINDS:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(KINDS)}", param_hint="--kind")
    if not query.strip():
        raise typer.BadParameter("the query is empty", param_hint="QUERY")
    with errors_to_exit():
        from scanner.search import search as run_search

        cfg, store = open_read(ctx, config, db)
        with store:
            _check_source_ids(cfg, store, source or [])
            stored = store.developments.count()
            results = run_search(store, query, since=since, until=until, kinds=kind or (),
                                 jurisdictions=jurisdiction or (), sources=source or (), limit=limit)
    if as_json:
        print_json({"query": query, "results": results})
    if not results:
        _explain_empty(cfg, stored, filtered=bool(since or until or kind or jurisdiction or source))
        return
    if as_json:
        return
    for number, item in enumerate(results, 1):
        typer.echo(f"{number:>2}. {item['title']}")
        facts = [item.get("source_name") or item["source"], item["published"] or (item.get("first_seen") or "")[:10] or "undated",
                 item["kind"], item["jurisdiction"], item.get("lang"), f"score {item['score']:.2f}"]
        typer.echo("    " + " · ".join(str(f) for f in facts if f))
        typer.echo(f"    {item['url']}")
        if item["snippet"]:
            typer.echo(f"    “{item['snippet']}”")
        clauses = ", ".join(c["id"] + (f" ({c['judged']})" if c.get("judged") else "") for c in item["clauses"])
        typer.echo(f"    clauses: {clauses or 'none attached'}")


def _check_source_ids(cfg: "Config", store: "Store", ids: list[str]) -> None:
    """Unknown source ids are an error, as `crawl -s` makes them, rather than an empty result."""
    from scanner.errors import NotFoundError, closest

    known = sorted({s.id for s in cfg.sources} | set(store.sources.ids()))
    for source_id in ids:
        if source_id not in known:
            raise NotFoundError(f"no source {source_id!r} ({closest(source_id, known)})")


def _explain_empty(cfg: "Config", stored: int, *, filtered: bool) -> None:
    if stored == 0:
        demo = Path("scan-demo/sources.yaml")
        hint = (f"; to search the demo's, pass --config {demo}" if demo.is_file() and demo.resolve() != (cfg.path or Path()).resolve()
                else "")
        note(f"the database at {cfg.database} holds no developments yet — run `scan crawl`{hint}")
    elif filtered:
        note(f"no relevant developments under these filters (of {stored} stored); try fewer filters")
    else:
        note(f"no relevant developments for this query (of {stored} stored)")


@app.command()
def policies(ctx: typer.Context, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The clauses of the policy corpus (read afresh from the config's policies/ folder)."""
    with errors_to_exit():
        from scanner.policies import load_corpus

        cfg = settings(ctx, config, None)
        clauses = load_corpus(cfg.policies)
    rows = [{"id": c.id, "title": c.title, "policy": c.policy, "file": c.file, "line": c.line} for c in clauses]
    if as_json:
        print_json({"policies": str(cfg.policies), "clauses": rows})
        return
    policy = None
    for row in rows:
        if row["policy"] != policy:
            policy = row["policy"]
            typer.echo(f"{policy}  ({row['file']})")
        typer.echo(f"  {row['id']:<10} {row['title']}  [line {row['line']}]")
    note(f"{len(rows)} clauses in {len({r['policy'] for r in rows})} policies")


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--dir", metavar="DIR", help="Where the demo writes everything")] = Path("scan-demo"),
) -> None:
    """The whole pipeline offline: serve the bundled example site on loopback, crawl, digest, search."""
    from scanner.demo import DEMO_QUERY, run_demo
    from scanner.progress import CycleProgress

    with errors_to_exit():
        folder = folder.resolve()
        with CycleProgress() as progress:
            result = run_demo(folder, progress=progress)
    typer.echo(f"\nsearch: {DEMO_QUERY!r}")
    for hit in result.search_results:
        clauses = ", ".join(c["id"] for c in hit["clauses"]) or "no clauses"
        typer.echo(f"  {hit['score']:.3f}  {hit['title']}  [{clauses}]")
    typer.echo(f"\n{result.developments} developments stored in {result.database}")
    for path in result.digest_paths:
        typer.echo(f"digest: {path}")
    config_path = _shell_path(result.config_path)
    typer.echo(f"\nnext, point scan at the demo's config (or `export SCAN_CONFIG={config_path}`):")
    typer.echo(f"  scan --config {config_path} search \"{DEMO_QUERY}\"")
    typer.echo("open the web workspace on the demo's database:")
    typer.echo(f"  scan serve --config {config_path}      # then http://127.0.0.1:8765/")


def _shell_path(path: Path) -> str:
    """The path relative to the current folder when it is inside it: what a newcomer would type."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --- topic alerts ---------------------------------------------------------------------------------


@app.command()
def subscribe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Subscription name, e.g. loot-boxes-eu")],
    topic: Annotated[str, typer.Option("--topic", "-t", metavar="TEXT", help="What to be alerted about, in plain words")],
    jurisdiction: Annotated[Optional[list[str]], typer.Option("--jurisdiction", "-j", metavar="CODE", help="Only developments from this jurisdiction (repeatable; global sources do not pass)")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", "-k", metavar="KIND", help="Only this source kind: regulator, legal-news, competitor (repeatable)")] = None,
    email: Annotated[Optional[list[str]], typer.Option("--email", "-e", metavar="ADDR", help="Send alerts to this address (repeatable)")] = None,
    webhook: Annotated[Optional[list[str]], typer.Option("--webhook", "-w", metavar="URL", help="POST Slack-compatible JSON to this URL (repeatable)")] = None,
    teams: Annotated[Optional[list[str]], typer.Option("--teams", metavar="URL", help="Post a card to this Microsoft Teams webhook or Workflows URL (repeatable)")] = None,
    notify: Annotated[Optional[list[str]], typer.Option("--notify", metavar="URL", help="Send through apprise to this notification URL, e.g. discord://… (repeatable)")] = None,
    backfill: Annotated[Optional[int], typer.Option("--backfill", metavar="DAYS", help="Also alert on stored developments published in the last DAYS days")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing subscription of this name")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Subscribe to a topic: new developments that match it are sent by email, webhook, Teams or apprise."""
    from scanner.alerts import make_subscription, subscribe as save

    channels = [*(f"email:{e}" for e in email or []), *(f"webhook:{w}" for w in webhook or []),
                *(f"teams:{t}" for t in teams or []), *(f"apprise:{n}" for n in notify or [])]
    with errors_to_exit():
        subscription = make_subscription(name, topic, jurisdictions=jurisdiction or [], kinds=kind or [],
                                         channels=channels, backfill_days=backfill)
        _, store = open_write(ctx, config, db)
        with store:
            save(store, subscription, replace=replace)
    where = ", ".join(subscription.channels) or "no channel: alerts only show in `scan alerts`"
    note(f"subscribed {name!r} → {where}")
    if backfill is None:
        note("it alerts on developments first seen from now on; add --backfill DAYS (with --replace) to include stored ones")


@app.command("subscriptions")
def list_subscriptions(ctx: typer.Context, config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List topic alert subscriptions with their filters and channels."""
    from scanner.alerts import subscriptions as load

    with errors_to_exit():
        _, store = open_read(ctx, config, db)
        with store:
            subs = load(store)
    if as_json:
        print_json({"subscriptions": [s.as_json() for s in subs]})
        return
    if not subs:
        note("no subscriptions yet — add one with `scan subscribe NAME --topic \"…\" --email you@example.com`")
    for s in subs:
        filters = " ".join([*(f"jurisdiction={j}" for j in s.jurisdictions), *(f"kind={k}" for k in s.kinds)])
        typer.echo(f"{s.name:<28} {s.topic!r} {filters}".rstrip())
        typer.echo(f"    → {', '.join(s.channels) or 'no channel'}")


@app.command()
def unsubscribe(
    ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help="Subscription name")],
    config: ConfigOpt = None, db: DbOpt = None,
) -> None:
    """Remove a subscription; alerts not yet delivered to it are dropped."""
    from scanner.alerts import unsubscribe as remove

    with errors_to_exit():
        _, store = open_write(ctx, config, db)
        with store:
            remove(store, name)
    note(f"unsubscribed {name!r}")


@app.command()
def alerts(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; send and record nothing")] = False,
    resend_unconfirmed: Annotated[bool, typer.Option("--resend-unconfirmed", help="Resend deliveries a crashed run left unconfirmed (may duplicate)")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Match new developments against every subscription and deliver each alert once; failures retry next run."""
    from scanner.alerts import alerts_json, run_alerts

    with errors_to_exit():
        cfg, store = open_read(ctx, config, db) if dry_run else open_write(ctx, config, db)
        with store:
            result = alerts_json(store, run_alerts(cfg, store, dry_run=dry_run, resend_unconfirmed=resend_unconfirmed))
            subscribed = len(store.alerts.subscriptions())
    if as_json:
        print_json(result)
        return
    _print_alerts(result, dry_run=dry_run)
    if not result["alerts"]:
        if not subscribed:
            note("no subscriptions: add one with `scan subscribe NAME --topic \"…\"`")
        else:
            note("a subscription alerts on developments first seen after it was made; to include stored ones, "
                 "subscribe again with --backfill DAYS --replace")


def _print_alerts(result: dict[str, Any], *, dry_run: bool) -> None:
    for alert in result["alerts"]:
        d = alert["development"]
        typer.echo(f"{alert['score']:.2f}  {alert['subscription']:<24} {d['title']}")
        for channel in alert["delivered"]:
            typer.echo(f"    sent      {channel}")
        for channel in alert["pending"]:
            typer.echo(f"    {'would send' if dry_run else 'queued'} {channel}")
        for failure in alert["failed"]:
            typer.echo(f"    failed    {failure['error']} (retried next run)")
    for row in result["unconfirmed"]:
        typer.echo(f"scan: warning: delivery to {row['channel']} for {row['subscription']!r} was interrupted mid-send and is not "
                   "resent automatically; check the recipient, then `scan alerts --resend-unconfirmed` if it is missing", err=True)
    sent = sum(len(a["delivered"]) for a in result["alerts"])
    failed = sum(len(a["failed"]) for a in result["alerts"])
    note(f"{len(result['alerts'])} alerts, {sent} deliveries sent, {failed} failed" + (" (dry run)" if dry_run else ""))


# --- judgments ------------------------------------------------------------------------------------


@app.command()
def judge(
    ctx: typer.Context,
    development: Annotated[str, typer.Argument(metavar="DEVELOPMENT", help="The development's `id` (as --json outputs show) or its URL")],
    right: Annotated[Optional[list[str]], typer.Option("--right", metavar="CLAUSE", help="This attached clause is correct (repeatable)")] = None,
    wrong: Annotated[Optional[list[str]], typer.Option("--wrong", metavar="CLAUSE", help="This clause must not be attached (repeatable)")] = None,
    add: Annotated[Optional[list[str]], typer.Option("--add", metavar="CLAUSE", help="Attach this clause although the matcher did not (repeatable)")] = None,
    by: ByOpt = None,
    note_text: Annotated[Optional[str], typer.Option("--note", metavar="TEXT", help="Why, for the record")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge a development's clauses: right, wrong or added. A judged pair stays as judged in every output."""
    from scanner.judgments import judge as record

    with errors_to_exit():
        _, store = open_write(ctx, config, db)
        with store:
            result = record(store, development, right=right or [], wrong=wrong or [], add=add or [],
                            by=who(by), note=note_text)
    if as_json:
        print_json(result)
        return
    d = result["development"]
    typer.echo(d["title"])
    for row in result["recorded"]:
        typer.echo(f"  {row['verdict']:<6} {row['clause']}")
    typer.echo("  attached now: " + (", ".join(c["id"] + (f" ({c['judged']})" if c.get("judged") else "")
                                            for c in d["clauses"]) or "none"))


@app.command()
def judgments(
    ctx: typer.Context,
    export: Annotated[Optional[Path], typer.Option("--export", metavar="FILE", help="Write every judgment as JSONL (- for stdout)")] = None,
    import_: Annotated[Optional[Path], typer.Option("--import", metavar="FILE", help="Add the judgments of a JSONL export (- for stdin)")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List judgments, or export/import them as JSONL (keep them in git; rebuild a database without losing them)."""
    from scanner.judgments import export_jsonl, import_jsonl, listing

    if export and import_:
        raise typer.BadParameter("give --export or --import, not both")
    with errors_to_exit():
        if import_:
            text = sys.stdin.read() if str(import_) == "-" else import_.read_text(encoding="utf-8")
            _, store = open_write(ctx, config, db)
            with store:
                counts = import_jsonl(store, text.splitlines(), source=str(import_))
            if as_json:
                print_json(counts)
            note(f"imported {counts['imported']} judgments ({counts['skipped']} already present) from {import_}")
            return
        _, store = open_read(ctx, config, db)
        with store:
            rows = listing(store)
            if export and str(export) != "-":
                count = export_jsonl(store, export)
                note(f"exported {count} judgments to {export}")
                return
    if export:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    if as_json:
        print_json({"judgments": rows})
        return
    if not rows:
        note("no judgments yet — record one with `scan judge DEVELOPMENT --right CLAUSE` (or --wrong, --add)")
    for row in rows:
        typer.echo(f"{row['at'][:10]}  {row['verdict']:<6} {row['clause']:<10} {row['development']}  {row['by'] or ''}".rstrip())


@app.command()
def rematch(
    ctx: typer.Context,
    since: Annotated[Optional[str], typer.Option("--since", metavar="DATE", help="Only developments published (or first seen) on or after, YYYY-MM-DD")] = None,
    refit: Annotated[bool, typer.Option("--refit", help="First retrain the matcher on the bundled labelled data plus every judged development")] = False,
    wait: WaitOpt = 300.0,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score stored developments with the current corpus and judgments (cached vectors reused; judged pairs stay).

    With --refit the matcher is first refitted with the specialists' judgments as labels and its
    parameters stored in the database; every later analysis uses them.
    """
    from scanner.analyse import analyse
    from scanner.pipeline import run_lock
    from scanner.progress import CycleProgress, analyse_line

    since = iso_day(since, "--since")
    refitted = None
    with errors_to_exit():
        cfg, store = open_write(ctx, config, db, corpus=True)
        with store, run_lock(cfg.database, wait=wait):
            if refit:
                from scanner.fit_matcher import refit_from_store

                if not as_json:
                    note("refitting the matcher with the judgments (first run encodes the bundled labelled data)")
                refitted = refit_from_store(cfg, store)
            forgotten = store.vectors.forget_matches(since)
            with CycleProgress() as progress:
                outcome = analyse(cfg, store, progress=progress)
    if as_json:
        print_json({"rematched": outcome.matched, **outcome.as_json(), "selected": forgotten,
                    **({"refit": refitted} if refitted is not None else {})})
        return
    if refitted is not None:
        note(f"matcher refitted on {refitted['developments']} developments ({refitted['judged']} judged)")
    note(analyse_line(outcome))


# --- the clause workspace ---------------------------------------------------------------------------


@app.command()
def clause(
    ctx: typer.Context,
    clause_id: Annotated[str, typer.Argument(metavar="ID", help="Clause id, e.g. GIFT-4")],
    since: Annotated[Optional[str], typer.Option("--since", metavar="DATE", help="Only developments on or after, YYYY-MM-DD")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A clause: its text and text history, every development attached to it (newest first), dates, reviews."""
    from scanner.workspace import clause_view

    since = iso_day(since, "--since")
    with errors_to_exit():
        _, store = open_read(ctx, config, db)
        with store:
            view = clause_view(store, clause_id.strip().upper(), since=since)
    if as_json:
        print_json(view)
        return
    c = view["clause"]
    typer.echo(f"{c['id']} {c['title']}  ({c['policy']}, {c['file']}:{c['line']})"
               + ("  [removed from the corpus]" if c["removed"] else ""))
    typer.echo("")
    for line in c["text"].splitlines():
        typer.echo(f"  {line}")
    if len(view["versions"]) > 1:
        typer.echo(f"\ntext history: {len(view['versions'])} versions")
        for v in view["versions"][1:]:
            typer.echo(f"  {v['first_seen'][:10]}:")
            for line in (v["diff"] or "").splitlines():
                if line.startswith(("+", "-")):
                    typer.echo(f"    {line}")
    if view["changed_since_review"]:
        typer.echo("\nthe clause text changed since its last review")
    typer.echo(f"\nupcoming dates: {len(view['upcoming']) or 'none'}")
    for d in view["upcoming"]:
        typer.echo(f"  {d['date']}  {d['type']:<13} {d['development']['title']}")
    typer.echo(f"\ntimeline: {len(view['developments'])} developments")
    for d in view["developments"]:
        judged = f" [{d['judged']}]" if d.get("judged") else ""
        stage = f" · {d['stage']}" if d.get("stage") else ""
        typer.echo(f"  {d['published'] or (d['first_seen'] or '')[:10]}  {d['score']:.2f}{judged}  {d['title']}")
        typer.echo(f"      {d.get('source_name') or d['source']} · {d['kind']} · {d['jurisdiction'] or 'Global'}{stage} · {d['id']}")
        if d["evidence"]:
            typer.echo(f"      “{d['evidence'].strip(chr(34))}”")
    typer.echo(f"\nreviews: {len(view['reviews']) or 'none'}")
    for r in view["reviews"]:
        typer.echo(f"  {r['at'][:16].replace('T', ' ')}  {r['by'] or ''}  {r['note'] or ''}".rstrip())


@app.command()
def clauses(
    ctx: typer.Context,
    needs_review: Annotated[bool, typer.Option("--needs-review", help="Only the review queue, most urgent first")] = False,
    policy: Annotated[Optional[str], typer.Option("--policy", metavar="NAME", help="Only clauses of policies whose title contains NAME")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every clause with its attached developments (30 and 90 days), last review and next date; or the review queue."""
    from scanner.workspace import clauses_overview

    with errors_to_exit():
        _, store = open_read(ctx, config, db)
        with store:
            view = clauses_overview(store, needs_review=needs_review, policy=policy)
    if as_json:
        print_json(view)
        return
    rows = view["clauses"]
    if not rows:
        note("no clause needs review: nothing new attached since the last reviews" if needs_review
             else "no clauses match (has `scan crawl` loaded the corpus?)")
        return
    typer.echo(f"{'CLAUSE':<10} {'30D':>3} {'90D':>3}  {'LAST REVIEW':<11} {'NEXT DATE':<10}  TITLE")
    for r in rows:
        next_date = r["next_date"]["date"] if r["next_date"] else "-"
        typer.echo(f"{r['id']:<10} {r['attached_30d']:>3} {r['attached_90d']:>3}  {(r['last_review'] or '-')[:10]:<11} "
                   f"{next_date:<10}  {r['title']}")
        if needs_review and r["reason"]:
            typer.echo(f"    {r['reason']}")


@app.command()
def review(
    ctx: typer.Context,
    clause_id: Annotated[str, typer.Argument(metavar="ID", help="Clause id, e.g. GIFT-4")],
    note_text: Annotated[Optional[str], typer.Option("--note", metavar="TEXT", help="What was decided")] = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a review of a clause: it leaves the review queue until a new development attaches to it."""
    from scanner.workspace import record_review

    with errors_to_exit():
        _, store = open_write(ctx, config, db)
        with store:
            result = record_review(store, clause_id.strip().upper(), by=who(by), note=note_text)
    if as_json:
        print_json(result)
        return
    note(f"review of {result['clause']} recorded ({result['at']})")


# --- the regulatory lifecycle -----------------------------------------------------------------------


@app.command()
def deadlines(
    ctx: typer.Context,
    since: Annotated[Optional[str], typer.Option("--since", metavar="DATE", help="From this day, YYYY-MM-DD [default: today]")] = None,
    until: Annotated[Optional[str], typer.Option("--until", metavar="DATE", help="To this day, YYYY-MM-DD")] = None,
    type_: Annotated[Optional[list[str]], typer.Option("--type", "-t", metavar="TYPE", help="comments_due, effective or compliance (repeatable)")] = None,
    clause_id: Annotated[Optional[str], typer.Option("--clause", metavar="ID", help="Only dates of developments attached to this clause")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    ics: Annotated[bool, typer.Option("--ics", help="Print an iCalendar file (Outlook, Google Calendar) instead")] = False,
) -> None:
    """Key dates to act on — comments due, rules taking effect, compliance deadlines — in date order."""
    from datetime import datetime, timezone

    from scanner.lifecycle import TYPES, deadlines as load, to_ics

    since = iso_day(since, "--since") or datetime.now(timezone.utc).date().isoformat()
    until = iso_day(until, "--until")
    for value in type_ or []:
        if value not in TYPES:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(TYPES)}", param_hint="--type")
    if as_json and ics:
        raise typer.BadParameter("give --json or --ics, not both")
    with errors_to_exit():
        _, store = open_read(ctx, config, db)
        with store:
            result = load(store, since=since, until=until, types=tuple(type_ or ()),
                          clause=clause_id.upper() if clause_id else None)
    if ics:
        sys.stdout.buffer.write(to_ics(result["deadlines"]))
        return
    if as_json:
        print_json(result)
        return
    if not result["deadlines"]:
        note(f"no key dates from {since}" + (f" to {until}" if until else "") + " (developments' dates are found when they are crawled)")
    for item in result["deadlines"]:
        d = item["development"]
        clauses = ", ".join(c["id"] for c in item["clauses"])
        typer.echo(f"{item['date']}  {item['type']:<13} {d['title']}")
        typer.echo(f"    {d['source']} · {d['jurisdiction'] or 'Global'}{' · ' + clauses if clauses else ''} · {d['id']}")
        typer.echo(f"    “{item['phrase']}”")


@app.command()
def thread(
    ctx: typer.Context,
    development: Annotated[str, typer.Argument(metavar="DEVELOPMENT", help="The development's `id` or URL")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The regulatory matter a development belongs to, stage by stage (consultation → … → enforcement)."""
    from scanner.lifecycle import thread_view

    with errors_to_exit():
        _, store = open_read(ctx, config, db)
        with store:
            view = thread_view(store, development)
    if as_json:
        print_json(view)
        return
    if view["thread"] is None:
        note("this development is not part of a known regulatory thread (yet)")
    for member in view["members"]:
        here = "→" if member["id"] == view["development"]["id"] else " "
        stage = (member.get("thread") or {}).get("stage") or "-"
        typer.echo(f"{here} {member['published'] or (member['first_seen'] or '')[:10]}  {stage:<12} {member['title']}")
        typer.echo(f"    {member.get('source_name') or member['source']} · {member['url']}")


# --- the web workspace ---------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="ADDR", help="Address to bind; anything but loopback needs --token or --read-only")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on")] = 8765,
    read_only: Annotated[bool, typer.Option("--read-only", help="Hide forms and refuse every change (POST answers 403)")] = False,
    token: Annotated[Optional[str], typer.Option("--token", metavar="T", envvar="SCAN_WEB_TOKEN", help="Require this token: ?token=T once (a cookie keeps it) or Authorization: Bearer T")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The web workspace: this week, search, developments, clauses, deadlines, digests, sources, alerts (and JSON)."""
    from scanner.web.security import is_loopback

    token = token or None  # an empty SCAN_WEB_TOKEN is no token
    if not is_loopback(host) and not token and not read_only:
        fail(f"refusing to serve on {host} without a token: anyone who can reach it could change judgments, reviews "
             "and subscriptions; pass --token T (or set SCAN_WEB_TOKEN), or --read-only, or bind 127.0.0.1", 2)
    if token is not None and len(token) < 8:
        fail("--token must be at least 8 characters", 2)
    with errors_to_exit():
        import uvicorn

        from scanner.store import Store
        from scanner.web import create_app

        cfg = settings(ctx, config, db)
        Store.open(cfg.database, readonly=True).close()  # a missing or foreign database is an error now, not per page
        web = create_app(cfg, read_only=read_only, token=token)
    shown = f"[{host}]" if ":" in host else host
    note(f"web workspace on http://{shown}:{port}/ ({'read-only' if read_only else 'read-write'}"
         f"{', token required' if token else ''}; Ctrl-C stops it)")
    uvicorn.run(web, host=host, port=port, log_level="warning", server_header=False, proxy_headers=False)
