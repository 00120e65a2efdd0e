"""The `scan` command: parse options, call the library, print text or `--json`, map errors to exit codes.

Exit codes follow the contract: 0 done (even when some sources failed), 1 the run could not
proceed (bad config, unreadable corpus, database error), 2 usage error. Heavy libraries are
imported inside commands so `scan --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from scanner import __version__

app = typer.Typer(
    help="Horizon scanning for LIVE monetization policy: crawl regulators, law firms and competitors, "
    "match developments to your policy clauses, search, digest and alert.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="sources.yaml to use [env SCAN_CONFIG; default ./sources.yaml]")
]
DbOpt = Annotated[Optional[Path], typer.Option("--db", help="SQLite database (overrides the config) [env SCAN_DB]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]


def fail(message: str) -> None:
    typer.echo(f"scan: error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn the library's typed errors into one stderr line and exit code 1."""
    from scanner.config import ConfigError
    from scanner.policies import CorpusError
    from scanner.store import StoreError

    try:
        yield
    except (ConfigError, StoreError, CorpusError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}".strip())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scan {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail to stderr")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version")] = None,
) -> None:
    setup_logging(verbose)


def open_all(config_path: Path | None, db: Path | None):
    from scanner.config import load_config
    from scanner.store import Store

    config = load_config(config_path, db=db)
    return config, Store.open(config.database)


@app.command()
def crawl(
    source: Annotated[Optional[list[str]], typer.Option("--source", "-s", help="Only this source id (repeatable)")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch sources, extract text, store, embed and match to clauses. A failing source is recorded; the rest go on."""
    with errors_to_exit():
        cfg, store = open_all(config, db)
        with store:
            results = _crawl(cfg, store, source)
            if as_json:
                print_json({"sources": [r.__dict__ for r in results]})


def _crawl(cfg, store, source_ids):
    """Crawl then analyse: the shared first half of `crawl`, `run` and `demo`."""
    from scanner.analyse import analyse
    from scanner.crawl import crawl as run_crawl
    from scanner.policies import load_corpus
    from scanner.progress import CrawlProgress, analyse_line

    if source_ids:
        for source_id in source_ids:
            cfg.source(source_id)
    load_corpus(cfg.policies)
    with CrawlProgress(len(source_ids or cfg.sources)) as progress:
        results = run_crawl(cfg, store, source_ids, on_progress=progress.advance)
    progress.summary(results)
    with CrawlProgress(0, label="matching") as progress:
        outcome = analyse(cfg, store, on_progress=progress.step)
    progress.console.print(analyse_line(outcome), highlight=False)
    return results


@app.command()
def sources(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Each configured source with its health: last fetch, status, developments, last error."""
    with errors_to_exit():
        cfg, store = open_all(config, db)
        with store:
            store.sync_sources(cfg.sources)
            rows = store.source_health(s.id for s in cfg.sources)
        if as_json:
            print_json({"sources": rows})
            return
        for row in rows:
            status = row["last_status"] or "never fetched"
            line = f"{row['id']:<28} {row['kind']:<11} {row['jurisdiction'] or '-':<7} {status:<13} {row['developments']:>5} dev  last {row['last_fetch'] or '-'}"
            typer.echo(line)
            if row["last_error"]:
                typer.echo(f"    error: {row['last_error']}")


@app.command()
def digest(
    week: Annotated[Optional[str], typer.Option("--week", help="ISO week like 2026-W47 (Monday to Sunday) [default: the last complete week]")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="First day, YYYY-MM-DD (inclusive)")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Last day, YYYY-MM-DD (inclusive) [default: today]")] = None,
    formats: Annotated[str, typer.Option("--format", "-f", help="Comma-separated formats: md,html,atom,json")] = "md,html,atom,json",
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Directory to write into, or - for stdout (one format) [default: the config's digests/]")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The digest of developments published in a period: most relevant first, clauses attached, one file per format."""
    from datetime import datetime, timezone

    from scanner.digest import build_digest, parse_formats, render, resolve_period, write_files

    try:
        period = resolve_period(week, since, until, datetime.now(timezone.utc).date())
        chosen = parse_formats(formats)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if out == "-" and (len(chosen) != 1 or as_json):
        raise typer.BadParameter("--out - writes one format to stdout: pick it with --format (and drop --json)")
    with errors_to_exit():
        cfg, store = open_all(config, db)
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


def _iso_day(value: Optional[str], option: str) -> Optional[str]:
    """A YYYY-MM-DD date or a usage error (exit 2) naming the option."""
    from datetime import date

    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-18", param_hint=option) from None


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Free text, e.g. \"loot box odds disclosure\"")],
    since: Annotated[Optional[str], typer.Option("--since", help="Published on or after, YYYY-MM-DD")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Published on or before, YYYY-MM-DD")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", "-k", help="regulator, legal-news or competitor (repeatable)")] = None,
    jurisdiction: Annotated[Optional[list[str]], typer.Option("--jurisdiction", "-j", help="e.g. US, UK, EU (repeatable)")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", "-s", help="Source id (repeatable)")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Most results to show")] = 20,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ranked developments for a free-text query, each with its attached clauses (BM25 + embeddings)."""
    from scanner.config import KINDS

    since, until = _iso_day(since, "--since"), _iso_day(until, "--until")
    if since and until and since > until:
        raise typer.BadParameter(f"--since {since} is after --until {until}")
    for value in kind or []:
        if value.lower() not in KINDS:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(KINDS)}", param_hint="--kind")
    if not query.strip():
        raise typer.BadParameter("the query is empty", param_hint="QUERY")
    with errors_to_exit():
        from scanner.search import search as run_search

        _, store = open_all(config, db)
        with store:
            results = run_search(store, query, since=since, until=until, kinds=kind or (),
                                 jurisdictions=jurisdiction or (), sources=source or (), limit=limit)
    if as_json:
        print_json({"query": query, "results": results})
        return
    if not results:
        typer.echo("no developments match", err=True)
        return
    for number, item in enumerate(results, 1):
        typer.echo(f"{number:>2}. {item['title']}")
        facts = [item["source"], item["published"] or (item.get("first_seen") or "")[:10] or "undated",
                 item["kind"], item["jurisdiction"], item.get("lang"), f"score {item['score']:.2f}"]
        typer.echo("    " + " · ".join(str(f) for f in facts if f))
        typer.echo(f"    {item['url']}")
        if item["snippet"]:
            typer.echo(f"    “{item['snippet']}”")
        clauses = ", ".join(c["id"] for c in item["clauses"])
        typer.echo(f"    clauses: {clauses or 'none attached'}")


@app.command()
def policies(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The clauses of the policy corpus (read afresh from the config's policies/ folder)."""
    with errors_to_exit():
        from scanner.config import load_config
        from scanner.policies import load_corpus

        cfg = load_config(config)
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
    typer.echo(f"{len(rows)} clauses in {len({r['policy'] for r in rows})} policies", err=True)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where the demo writes everything")] = Path("scan-demo"),
) -> None:
    """The whole pipeline offline: serve the bundled example site on loopback, crawl, digest, search."""
    from scanner.demo import DEMO_QUERY, run_demo

    with errors_to_exit():
        folder = folder.resolve()
        result = run_demo(folder, lambda cfg, store: _crawl(cfg, store, None), say=lambda m: typer.echo(m, err=True))
        typer.echo(f"\nsearch: {DEMO_QUERY!r}")
        for hit in result.search_results:
            clauses = ", ".join(c["id"] for c in hit["clauses"]) or "no clauses"
            typer.echo(f"  {hit['score']:.3f}  {hit['title']}  [{clauses}]")
        typer.echo(f"\n{result.developments} developments stored in {folder / 'scanner.db'}")
        typer.echo(f"config: {result.config_path}")
        typer.echo("try:   scan search --config " + str(result.config_path) + " \"loot box odds\"")
        for path in result.digest_paths:
            typer.echo(f"digest: {path}")


# --- topic alerts ---------------------------------------------------------------------------------


@contextmanager
def alert_usage_errors() -> Iterator[None]:
    """A bad subscription (address, URL, duplicate or unknown name) is a usage error: exit 2."""
    from scanner.alerts import AlertError

    try:
        yield
    except AlertError as exc:
        typer.echo(f"scan: error: {exc}", err=True)
        raise typer.Exit(2)


@app.command()
def subscribe(
    name: Annotated[str, typer.Argument(help="Subscription name, e.g. loot-boxes-eu")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="What to be alerted about, in plain words")],
    jurisdiction: Annotated[Optional[list[str]], typer.Option("--jurisdiction", "-j", help="Only developments from this jurisdiction (repeatable; global sources do not pass)")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", "-k", help="Only this source kind: regulator, legal-news, competitor (repeatable)")] = None,
    email: Annotated[Optional[list[str]], typer.Option("--email", "-e", help="Send alerts to this address (repeatable)")] = None,
    webhook: Annotated[Optional[list[str]], typer.Option("--webhook", "-w", help="POST alerts to this URL, e.g. a Slack incoming webhook (repeatable)")] = None,
    backfill: Annotated[Optional[int], typer.Option("--backfill", metavar="DAYS", help="Also alert on stored developments published in the last DAYS days")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing subscription of this name")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Subscribe to a topic: new developments that match it are sent by email and/or webhook."""
    from scanner.alerts import make_subscription, subscribe as save

    with errors_to_exit(), alert_usage_errors():
        subscription = make_subscription(name, topic, jurisdictions=jurisdiction or [], kinds=kind or [],
                                         emails=email or [], webhooks=webhook or [], backfill_days=backfill)
        _, store = open_all(config, db)
        with store:
            save(store, subscription, replace=replace)
        where = ", ".join(subscription.channels) or "no channel: alerts only show in `scan alerts`"
        typer.echo(f"subscribed {name!r} → {where}", err=True)


@app.command("subscriptions")
def list_subscriptions(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List topic alert subscriptions with their filters and channels."""
    from scanner.alerts import subscriptions as load

    with errors_to_exit():
        _, store = open_all(config, db)
        with store:
            subs = load(store)
        if as_json:
            print_json({"subscriptions": [s.as_json() for s in subs]})
            return
        for s in subs:
            filters = " ".join([*(f"jurisdiction={j}" for j in s.jurisdictions), *(f"kind={k}" for k in s.kinds)])
            typer.echo(f"{s.name:<28} {s.topic!r} {filters}".rstrip())
            typer.echo(f"    → {', '.join(s.channels) or 'no channel'}")


@app.command()
def unsubscribe(
    name: Annotated[str, typer.Argument(help="Subscription name")], config: ConfigOpt = None, db: DbOpt = None
) -> None:
    """Remove a subscription; alerts not yet delivered to it are dropped."""
    from scanner.alerts import unsubscribe as remove

    with errors_to_exit(), alert_usage_errors():
        _, store = open_all(config, db)
        with store:
            remove(store, name)
        typer.echo(f"unsubscribed {name!r}", err=True)


@app.command()
def alerts(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; send and record nothing")] = False,
    resend_unconfirmed: Annotated[bool, typer.Option("--resend-unconfirmed", help="Resend deliveries a crashed run left unconfirmed (may duplicate)")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Match new developments against every subscription and deliver each alert once; failures retry next run."""
    with errors_to_exit():
        cfg, store = open_all(config, db)
        with store:
            _deliver_alerts(cfg, store, dry_run=dry_run, resend_unconfirmed=resend_unconfirmed, as_json=as_json)


def _deliver_alerts(cfg, store, *, dry_run: bool, resend_unconfirmed: bool = False, as_json: bool, extra: dict | None = None) -> None:
    """Run alerts and print them: shared by `alerts` and `run`."""
    from scanner.alerts import alerts_json, run_alerts

    result = alerts_json(store, run_alerts(cfg, store, dry_run=dry_run, resend_unconfirmed=resend_unconfirmed))
    if as_json:
        print_json({**(extra or {}), **result})
        return
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
    typer.echo(f"{len(result['alerts'])} alerts, {sent} deliveries sent, {failed} failed" + (" (dry run)" if dry_run else ""), err=True)


@app.command()
def run(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The cron entry point: crawl and analyse every due source, then deliver alerts."""
    with errors_to_exit():
        cfg, store = open_all(config, db)
        with store:
            results = _crawl(cfg, store, None)
            _deliver_alerts(cfg, store, dry_run=False, as_json=as_json, extra={"sources": [r.__dict__ for r in results]})
