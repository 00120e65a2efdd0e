"""The web workspace: server-rendered pages over the same library calls the CLI makes.

One route per thing a specialist names (a development, a clause, the deadlines), each page also
as JSON in the CLI's shape (`Accept: application/json` or `?format=json`). Pages open the store
read-only; only the POST actions (judge, review, subscribe, unsubscribe) open it for writing, and
every POST passes the checks in `security` first (read-only mode, rate limit, body size, CSRF).
No SQL here and no second copy of any logic: the views call `scanner.search`, `developments`,
`workspace`, `judgments`, `lifecycle`, `alerts`, `health` and `digest`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from scanner.config import KINDS, Config
from scanner.errors import NotFoundError, ScanError, UsageError
from scanner.store import Store
from scanner.textutil import iso_day
from scanner.web import security

HERE = Path(__file__).parent
DIGEST_NAME = re.compile(r"^\d{4}-W\d{2}$|^\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}$")
"""The only digest names whose files are read: a URL never names a path."""
DIGEST_FORMATS = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8",
                  "json": "application/json", "atom": "application/atom+xml"}
COMING_UP_DAYS = 90
SEARCH_LIMIT = 20
REVIEW_QUEUE_SHOWN = 10
TIMELINE_SHOWN = 100
DEADLINES_SHOWN = 200
"""Pages list this many (newest developments on a clause, nearest dates) with a link to all; JSON has all."""
LATEST_DAYS = 180
LATEST_SHOWN = 10
"""When the week is empty, "This week" lists the newest developments of the half year before it."""
DELIVERIES_SHOWN = 5
NAV = [("/", "This week"), ("/search", "Search"), ("/clauses", "Clauses"), ("/deadlines", "Deadlines"),
       ("/digests", "Digests"), ("/sources", "Sources"), ("/alerts", "Alerts")]


def create_app(config: Config, *, read_only: bool, token: str | None,
               post_rate: int = security.POST_RATE, post_window: float = security.POST_WINDOW) -> ASGIApp:
    """The Starlette app for one config. `read_only` hides forms and refuses POSTs; `token` gates every request."""
    web = Workspace(config, read_only=read_only, post_rate=post_rate, post_window=post_window)
    routes = [
        Route("/", web.home),
        Route("/search", web.search),
        Route("/developments/{id}", web.development),
        Route("/developments/{id}/judgments", web.judge, methods=["POST"]),
        Route("/clauses", web.clauses),
        Route("/clauses/{id}", web.clause),
        Route("/clauses/{id}/reviews", web.review, methods=["POST"]),
        Route("/deadlines", web.deadlines),
        Route("/deadlines.ics", web.deadlines_ics),
        Route("/digests", web.digests),
        Route("/digests/{name}", web.digest),
        Route("/sources", web.sources),
        Route("/alerts", web.alerts, methods=["GET", "POST"]),
        Route("/alerts/{name}/delete", web.unsubscribe, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: web.http_error, NotFoundError: web.scan_error, ScanError: web.scan_error,
        security.BodyTooLarge: web.too_large,
    })
    return security.SecurityHeaders(TokenGate(app, token, web))


class TokenGate:
    """With a token, every request needs it: `Authorization: Bearer T`, or the cookie a `?token=T` visit sets."""

    def __init__(self, app: ASGIApp, token: str | None, web: "Workspace"):
        self.app, self.token, self.web = app, token, web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if not self.token:
            # Without a token the workspace is only served on loopback (read-write) or read-only. A page
            # elsewhere that rebinds its DNS name to 127.0.0.1 would still send its own Host: refuse it.
            if not self.web.read_only and not security.is_loopback(request.url.hostname or ""):
                await self.web.error(request, 421, "this workspace answers only on 127.0.0.1 or localhost "
                                     "(start it with --token to serve other names)")(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if security.authorised(request, self.token):
            await self.app(scope, receive, send)
            return
        given = request.query_params.get("token")
        if given is not None and security.hmac.compare_digest(given.encode(), self.token.encode()):
            response: Response = RedirectResponse(security.without_token(request), status_code=303)
            response.set_cookie(security.SESSION_COOKIE, security.session_value(self.token), httponly=True,
                                samesite="strict", secure=request.url.scheme == "https")
        else:
            response = self.web.error(request, 401, "this workspace needs its token: open any page once with "
                                      "?token=… (the browser keeps a session cookie) or send Authorization: Bearer …")
        await response(scope, receive, send)


class Workspace:
    """The views. Each reads with `self.read(fn)` (a read-only store, in a worker thread) or writes with `self.write`."""

    def __init__(self, config: Config, *, read_only: bool, post_rate: int, post_window: float):
        self.config = config
        self.read_only = read_only
        self.csrf = security.Csrf()
        self._cache: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self.limit = security.RateLimit(post_rate, post_window)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                      trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(seg=lambda v: quote(str(v), safe=""), safe_url=_safe_url, day=_day,
                                score=lambda v: f"{float(v):.2f}", label=lambda v: str(v or "").replace("_", " "),
                                diffclass=_diff_class, query=lambda d: urlencode([(k, v) for k, v in d if v]))

    # --- plumbing -------------------------------------------------------------------------------

    def version(self) -> tuple[Any, ...]:
        """Changes whenever the database is written by anyone (this server, a crawl, the CLI): the files' size and time."""
        out: list[Any] = [_today()]
        for suffix in ("", "-wal"):
            try:
                st = os.stat(f"{self.config.database}{suffix}")
                out += [st.st_mtime_ns, st.st_size]
            except OSError:
                out += [None, None]
        return tuple(out)

    async def cached(self, key: str, fn: Callable[[Store], Any]) -> Any:
        """`read(fn)`, remembered until the database changes: the aggregate views (This week, the clause list)
        cost a full pass over attachments, and most visits between two crawls ask the same question."""
        version = self.version()
        hit = self._cache.get(key)
        if hit and hit[0] == version:
            return hit[1]
        value = await self.read(fn)
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (version, value)
        return value

    async def read(self, fn: Callable[[Store], Any]) -> Any:
        def run() -> Any:
            with Store.open(self.config.database, readonly=True) as store:
                return fn(store)
        return await run_in_threadpool(run)

    async def write(self, fn: Callable[[Store], Any]) -> Any:
        def run() -> Any:
            with Store.open(self.config.database) as store:
                return fn(store)
        return await run_in_threadpool(run)

    def page(self, request: Request, template: str, data: Any, status: int = 200, **context: Any) -> Response:
        """The JSON twin when asked for, else the rendered template (with the CSRF token its forms need)."""
        if wants_json(request):
            return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})
        nonce, fresh = self.csrf.nonce(request)
        html = self.env.get_template(template).render(
            data=data, nav=NAV, path=request.url.path, read_only=self.read_only, csrf=self.csrf.sign(nonce),
            params=request.query_params, **context)
        response = HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
        if fresh:
            response.set_cookie(security.CSRF_COOKIE, nonce, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    def error(self, request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        return self.page(request, "error.html.j2", {"error": message}, status=status, title=_TITLES.get(status, "Error"),
                         message=message)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.error(request, exc.status_code, exc.detail or _TITLES.get(exc.status_code, "error"))

    async def scan_error(self, request: Request, exc: Exception) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, UsageError) else 500
        return self.error(request, status, str(exc))

    async def too_large(self, request: Request, exc: Exception) -> Response:
        return self.error(request, 413, f"request body over {security.MAX_BODY} bytes")

    async def action(self, request: Request) -> dict[str, list[str]]:
        """The checks every POST passes before it is read: read-only, rate, size, CSRF. Returns the form."""
        if self.read_only:
            raise HTTPException(403, "this workspace is read-only (started with --read-only)")
        client = request.client.host if request.client else "unknown"
        wait = self.limit.retry_after(client)
        if wait:
            raise HTTPException(429, f"too many changes from {client}: try again in {wait} s", headers={"retry-after": str(wait)})
        form = await security.read_form(request)
        if not self.csrf.valid(request, _one(form, security.CSRF_FIELD)):
            raise HTTPException(403, "missing or invalid CSRF token: reload the page and submit the form again")
        return form

    # --- pages ----------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """This week: the last complete ISO week's developments, Coming up, the review queue."""
        from scanner import developments
        from scanner.digest import _ranked, iso_week, last_complete_week, week_of
        from scanner.lifecycle import upcoming
        from scanner.workspace import review_queue

        today = _today()
        try:
            period = iso_week(request.query_params["week"]) if request.query_params.get("week") else last_complete_week(today)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

        def view(store: Store) -> dict[str, Any]:
            rows = store.developments.list(since=period.start.isoformat(), until=period.end.isoformat())
            items = sorted(developments.as_json(store, rows), key=_ranked)
            out = {"period": period.as_json(), "items": items, "coming_up": upcoming(store, COMING_UP_DAYS, today=today),
                   "review_queue": review_queue(store, limit=REVIEW_QUEUE_SHOWN, today=today)}
            if not items:  # a quiet week: show the latest ones rather than an empty page
                recent = store.developments.list(since=(period.start - timedelta(days=LATEST_DAYS)).isoformat())
                recent = sorted(recent, key=lambda r: ((r["published"] or r["first_seen"] or "")[:10], r["id"]), reverse=True)
                out["latest"] = developments.as_json(store, recent[:LATEST_SHOWN])
            return out

        data = await self.cached(f"home {period.name}", view)
        previous = week_of(period.start - timedelta(days=1)).week
        following = week_of(period.end + timedelta(days=1))
        return self.page(request, "home.html.j2", data, title=f"This week: {period.label}", period=period,
                         previous=previous, following=following.week if following.end < today else None)

    async def search(self, request: Request) -> Response:
        from scanner.search import search as run_search

        q = (request.query_params.get("q") or "").strip()
        kinds = [k for k in request.query_params.getlist("kind") if k]
        jurisdictions = [j.strip().upper() for j in request.query_params.getlist("jurisdiction") if j.strip()]
        sources = [s for s in request.query_params.getlist("source") if s]
        since, until = iso_day(request.query_params.get("since"), "since"), iso_day(request.query_params.get("until"), "until")
        for kind in kinds:
            if kind not in KINDS:
                raise UsageError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        if since and until and since > until:
            raise UsageError(f"since {since} is after until {until}")
        known_sources = sorted(s.id for s in self.config.sources)
        for source in sources:
            if source not in known_sources:
                from scanner.errors import closest

                raise UsageError(f"no source {source!r} ({closest(source, known_sources)})")

        def view(store: Store) -> dict[str, Any]:
            if not q:
                return {"query": "", "results": []}
            return {"query": q, "results": run_search(store, q, since=since, until=until, kinds=kinds,
                                                      jurisdictions=jurisdictions, sources=sources, limit=SEARCH_LIMIT)}

        data = await self.read(view)
        jurisdictions_known = sorted({s.jurisdiction for s in self.config.sources if s.jurisdiction})
        return self.page(request, "search.html.j2", data, title=f"Search: {q}" if q else "Search", q=q, kinds=KINDS,
                         chosen_kinds=kinds, jurisdictions=jurisdictions_known, chosen_jurisdictions=jurisdictions,
                         sources=known_sources, chosen_sources=sources, since=since or "", until=until or "")

    async def development(self, request: Request, *, status: int = 200, problem: str | None = None) -> Response:
        from scanner import developments
        from scanner.judgments import known_clause_ids
        from scanner.lifecycle import thread_view

        key = request.path_params["id"]

        def view(store: Store) -> dict[str, Any]:
            row = developments.find(store, key)
            out = thread_view(store, row["uid"])  # `scan thread --json`, which loads the development once
            out["development"]["text"] = row["text"] or ""
            twins = store.developments.duplicates_of([row["id"]])
            same = [i for ids in twins.values() for i in ids]
            out["duplicates"] = [{"id": r["uid"], "url": r["url"], "title": r["title"], "source": r["source_id"],
                                  "published": r["published"]} for r in store.developments.list(ids=same)] if same else []
            titles = {c["id"]: c["title"] for c in store.vectors.clauses()}
            out["_clause_choices"] = [(c, titles.get(c, "")) for c in sorted(known_clause_ids(store))]
            return out

        data = await self.read(view)
        choices = data.pop("_clause_choices")
        d = data["development"]
        attached = {c["id"] for c in d["clauses"]}
        evidence = [c["evidence"] for c in d["clauses"] + d.get("possible", []) if c.get("evidence")]
        return self.page(request, "development.html.j2", data, status=status, title=d["title"] or d["id"], d=d,
                         segments=highlight(d.get("text") or "", evidence),
                         choices=[c for c in choices if c[0] not in attached], problem=problem,
                         done=request.query_params.get("judged"))

    async def judge(self, request: Request) -> Response:
        from scanner.judgments import judge as record

        form = await self.action(request)
        key = request.path_params["id"]
        clause = (_one(form, "clause") or "").strip().upper()
        verdict = _one(form, "verdict") or ""
        if verdict not in ("right", "wrong", "added") or not clause:
            return await self._judge_problem(request, "choose a clause and right, wrong or add")
        by = (_one(form, "by") or "").strip()[:80] or "web"
        note = (_one(form, "note") or "").strip()[:2000] or None
        try:
            result = await self.write(lambda store: record(store, key, right=[clause] if verdict == "right" else [],
                                                           wrong=[clause] if verdict == "wrong" else [],
                                                           add=[clause] if verdict == "added" else [], by=by, note=note))
        except NotFoundError as exc:
            if "no development" in str(exc):
                raise
            return await self._judge_problem(request, str(exc))
        if wants_json(request):
            return JSONResponse(result)
        uid = result["development"]["id"]
        return RedirectResponse(f"/developments/{quote(uid, safe='')}?judged={quote(clause, safe='')}#clauses", status_code=303)

    async def _judge_problem(self, request: Request, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message, "status": 400}, status_code=400)
        return await self.development(request, status=400, problem=message)

    async def clauses(self, request: Request) -> Response:
        from scanner.workspace import clauses_overview

        needs = request.query_params.get("needs_review") in ("1", "true", "on", "yes")
        policy = request.query_params.get("policy") or None
        data = await self.cached(f"clauses {needs} {policy}",
                                 lambda store: clauses_overview(store, needs_review=needs, policy=policy, today=_today()))
        return self.page(request, "clauses.html.j2", data, title="Review queue" if needs else "Clauses", needs=needs,
                         policy=policy or "")

    async def clause(self, request: Request, *, status: int = 200, problem: str | None = None) -> Response:
        from scanner.workspace import clause_view

        clause_id = request.path_params["id"].strip().upper()
        since = iso_day(request.query_params.get("since"), "since")
        data = await self.cached(f"clause {clause_id} {since}", lambda store: clause_view(store, clause_id, since=since, today=_today()))
        c = data["clause"]
        shown = len(data["developments"]) if request.query_params.get("all") else TIMELINE_SHOWN
        return self.page(request, "clause.html.j2", data, status=status, title=f"{c['id']} {c['title']}", c=c,
                         problem=problem, done=request.query_params.get("reviewed"), shown=shown)

    async def review(self, request: Request) -> Response:
        from scanner.workspace import record_review

        form = await self.action(request)
        clause_id = request.path_params["id"].strip().upper()
        by = (_one(form, "by") or "").strip()[:80] or "web"
        note = (_one(form, "note") or "").strip()[:4000] or None
        result = await self.write(lambda store: record_review(store, clause_id, by=by, note=note))
        if wants_json(request):
            return JSONResponse(result)
        return RedirectResponse(f"/clauses/{quote(clause_id, safe='')}?reviewed=1#reviews", status_code=303)

    def _deadline_filters(self, request: Request) -> dict[str, Any]:
        from scanner.lifecycle import TYPES

        types = [t for t in request.query_params.getlist("type") if t]
        for value in types:
            if value not in TYPES:
                raise UsageError(f"type {value!r} is not one of {', '.join(TYPES)}")
        clause = (request.query_params.get("clause") or "").strip().upper() or None
        since = iso_day(request.query_params.get("since"), "since") or _today().isoformat()
        until = iso_day(request.query_params.get("until"), "until")
        return {"since": since, "until": until, "types": tuple(types), "clause": clause}

    async def deadlines(self, request: Request) -> Response:
        from scanner.lifecycle import TYPES, deadlines

        filters = self._deadline_filters(request)
        data = await self.cached(f"deadlines {sorted(filters.items())}", lambda store: deadlines(store, **filters))
        shown = len(data["deadlines"]) if request.query_params.get("all") else DEADLINES_SHOWN
        ics = "/deadlines.ics" + ("?" + request.url.query if request.url.query else "")
        return self.page(request, "deadlines.html.j2", data, title="Deadlines", filters=filters, types=TYPES, ics=ics,
                         shown=shown)

    async def deadlines_ics(self, request: Request) -> Response:
        from scanner.lifecycle import deadlines, to_ics

        filters = self._deadline_filters(request)
        data = await self.read(lambda store: deadlines(store, **filters))
        return Response(to_ics(data["deadlines"]), media_type="text/calendar; charset=utf-8",
                        headers={"content-disposition": 'inline; filename="deadlines.ics"'})

    async def digests(self, request: Request) -> Response:
        data = {"digests": digest_files(self.config.digests)}
        return self.page(request, "digests.html.j2", data, title="Digests")

    async def digest(self, request: Request) -> Response:
        """One written digest, shown from its JSON; `NAME.md|html|json|atom` is the file itself."""
        name, _, fmt = request.path_params["name"].partition(".")
        if not DIGEST_NAME.match(name) or (fmt and fmt not in DIGEST_FORMATS):
            raise HTTPException(404, f"{request.path_params['name']!r} is not a digest name like 2026-W47 "
                                     "(or 2026-W47.html, .md, .json, .atom)")
        folder = self.config.digests
        if fmt:
            path = folder / f"{name}.{fmt}"
            if not path.is_file():
                raise HTTPException(404, f"no {fmt} file for digest {name}")
            disposition = "attachment" if fmt == "html" else "inline"
            return Response(path.read_bytes(), media_type=DIGEST_FORMATS[fmt],
                            headers={"content-disposition": f'{disposition}; filename="{name}.{fmt}"'})
        path = folder / f"{name}.json"
        if not path.is_file():
            known = [d["name"] for d in digest_files(folder)]
            raise HTTPException(404, f"no digest {name} was written (written: {', '.join(known) or 'none'}); "
                                     "`scan digest` writes them")
        digest = json.loads(path.read_text(encoding="utf-8"))
        files = next((d for d in digest_files(folder) if d["name"] == name), {"formats": []})
        return self.page(request, "digest.html.j2", digest, title=f"Digest {name}", name=name, formats=files["formats"])

    async def sources(self, request: Request) -> Response:
        from scanner.health import source_rows

        rows = await run_in_threadpool(source_rows, self.config)
        return self.page(request, "sources.html.j2", {"sources": rows}, title="Sources")

    async def alerts(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.subscribe(request)
        return await self.alerts_page(request)

    async def alerts_page(self, request: Request, *, status: int = 200, problem: str | None = None,
                          form: dict[str, Any] | None = None) -> Response:
        from scanner.alerts import subscriptions

        def view(store: Store) -> dict[str, Any]:
            out = []
            for sub in subscriptions(store):
                sent = store.alerts.deliveries(subscription=sub.name, limit=DELIVERIES_SHOWN)
                rows = {r["id"]: r for r in store.developments.list(ids={s["development_id"] for s in sent})} if sent else {}
                out.append({**sub.as_json(), "recent": [
                    {"channel": s["channel"], "state": s["state"], "at": s["sent_at"] or s["updated_at"], "score": s["score"],
                     "error": s["last_error"], "development": {"id": rows[s["development_id"]]["uid"],
                                                               "title": rows[s["development_id"]]["title"]}
                     if s["development_id"] in rows else None} for s in sent]})
            return {"subscriptions": out}

        data = await self.read(view)
        if problem and wants_json(request):
            return JSONResponse({"error": problem, "status": status}, status_code=status)
        return self.page(request, "alerts.html.j2", data, status=status, title="Alerts", problem=problem,
                         form=form or {}, kinds=KINDS, done=request.query_params.get("done"))

    async def subscribe(self, request: Request) -> Response:
        from scanner.alerts import AlertError, make_subscription, subscribe

        form = await self.action(request)
        values = {k: (_one(form, k) or "").strip() for k in ("name", "topic", "jurisdictions", "email", "webhook", "backfill")}
        values["kinds"] = form.get("kind", [])
        channels = [*(f"email:{e}" for e in _words(values["email"])), *(f"webhook:{w}" for w in _words(values["webhook"]))]
        try:
            backfill = int(values["backfill"]) if values["backfill"] else None
            subscription = make_subscription(values["name"], values["topic"], jurisdictions=_words(values["jurisdictions"]),
                                             kinds=values["kinds"], channels=channels, backfill_days=backfill)
            await self.write(lambda store: subscribe(store, subscription))
        except ValueError:
            return await self.alerts_page(request, status=400, problem=f"backfill {values['backfill']!r} is not a number of days",
                                          form=values)
        except AlertError as exc:
            return await self.alerts_page(request, status=400, problem=str(exc), form=values)
        if wants_json(request):
            return JSONResponse({"subscription": subscription.as_json()}, status_code=201)
        return RedirectResponse(f"/alerts?{urlencode({'done': 'subscribed ' + subscription.name})}", status_code=303)

    async def unsubscribe(self, request: Request) -> Response:
        from scanner.alerts import AlertError, unsubscribe

        await self.action(request)
        name = request.path_params["name"]
        try:
            await self.write(lambda store: unsubscribe(store, name))
        except AlertError as exc:
            raise NotFoundError(str(exc)) from None
        if wants_json(request):
            return JSONResponse({"unsubscribed": name})
        return RedirectResponse(f"/alerts?{urlencode({'done': 'unsubscribed ' + name})}", status_code=303)


@contextmanager
def running(app: ASGIApp, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` with uvicorn on `host` at an ephemeral port in a thread; yields the base URL (tests, bench)."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


_TITLES = {400: "Bad request", 401: "Token needed", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           413: "Too large", 421: "Wrong host", 429: "Too many requests", 500: "Server error"}


def wants_json(request: Request) -> bool:
    """`?format=json`, or an Accept header that prefers JSON to HTML."""
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def digest_files(folder: Path) -> list[dict[str, Any]]:
    """Written digests, newest first: each name (only names matching `DIGEST_NAME`) with its formats."""
    found: dict[str, list[str]] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            name, _, fmt = path.name.partition(".")
            if DIGEST_NAME.match(name) and fmt in DIGEST_FORMATS and path.is_file():
                found.setdefault(name, []).append(fmt)
    order = list(DIGEST_FORMATS)
    return [{"name": n, "formats": sorted(f, key=order.index)} for n, f in sorted(found.items(), reverse=True)]


def highlight(text: str, sentences: list[str]) -> list[tuple[str, bool]]:
    """The text cut into (piece, is evidence) segments; the template escapes each piece, and marks the evidence.

    Nothing is ever joined into markup here: highlighting splits the text, so a `<script>` in it
    stays text.
    """
    spans: list[tuple[int, int]] = []
    for sentence in sentences:
        needle = sentence.strip().strip('"“”').strip()
        if len(needle) < 8:
            continue
        at = text.find(needle)
        if at >= 0:
            spans.append((at, at + len(needle)))
    spans.sort()
    out: list[tuple[str, bool]] = []
    pos = 0
    for start, end in spans:
        if start < pos:  # overlaps the previous mark: extend it
            if end > pos and out:
                piece, _ = out[-1]
                out[-1] = (piece + text[pos:end], True)
                pos = end
            continue
        if start > pos:
            out.append((text[pos:start], False))
        out.append((text[start:end], True))
        pos = end
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def _one(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,;]+", text or "") if w]


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _safe_url(url: str | None) -> str | None:
    from scanner.digest import safe_url

    return safe_url(url)


def _day(value: Any) -> str:
    return str(value or "")[:10]


def _diff_class(line: str) -> str:
    if line.startswith("+++") or line.startswith("---"):
        return "meta"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    if line.startswith("@@"):
        return "meta"
    return ""
