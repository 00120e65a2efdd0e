"""Alert channels, as a registry: email (SMTP), webhook (Slack-compatible JSON), Microsoft Teams, and apprise.

Each channel declares how a target is validated (at `scan subscribe`, so a typo fails there and
not at 3 a.m.) and how it is sent; a new channel is one `register()` call. Email keeps its own
SMTP path because exactly-once needs the stable Message-ID; apprise covers dozens of services
(Discord, Telegram, Mattermost, PagerDuty, …) behind one URL scheme.

A send returns an error message instead of raising, so one bad address or a server that is down
fails only its own deliveries; `alerts.py` records the outcome and retries on the next run.
Every value from a source is escaped before it reaches HTML (Jinja autoescape), so a title like
`<script>` arrives as text. Nothing here touches the database.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx
import jinja2

from . import __version__
from .config import AlertSettings
from .errors import UsageError

SUBJECT_CHARS = 180

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_TEXT = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

_BODY = """\
{% if d.get("advance") %}A matter you were alerted on has moved to a new stage ({{ d.advance.stage }}, after {{ d.advance.after | join(", ") }}).
{% endif %}New development for your scan subscription "{{ name }}" (topic: {{ topic }}).

{{ d.title }}
{{ d.source }}{% if d.jurisdiction %} · {{ d.jurisdiction }}{% endif %}{% if d.published %} · {{ d.published }}{% endif %}
{{ d.url }}
{% if d.summary %}
{{ d.summary }}
{% endif %}{% if d.clauses %}
Policy clauses it touches:
{% for c in d.clauses %}- {{ c.id }} {{ c.title }} ({{ "%.2f"|format(c.score) }}){% if c.evidence %}: "{{ c.evidence }}"{% endif %}
{% endfor %}{% endif %}
Match score {{ "%.2f"|format(score) }}. Stop these alerts with: scan unsubscribe {{ name }}
"""

_HTML = """\
<!doctype html>
<html><body style="font-family: sans-serif; max-width: 42em">
{% if d.get("advance") %}<p><strong>A matter you were alerted on has moved to a new stage</strong> ({{ d.advance.stage }}, after {{ d.advance.after | join(", ") }}).</p>{% endif %}
<p>New development for your scan subscription <strong>{{ name }}</strong> (topic: {{ topic }}).</p>
<h2 style="font-size: 1.2em"><a href="{{ url }}">{{ d.title }}</a></h2>
<p style="color: #555">{{ d.source }}{% if d.jurisdiction %} · {{ d.jurisdiction }}{% endif %}{% if d.published %} · {{ d.published }}{% endif %}</p>
{% if d.summary %}<p>{{ d.summary }}</p>{% endif %}
{% if d.clauses %}<p>Policy clauses it touches:</p>
<ul>{% for c in d.clauses %}<li><strong>{{ c.id }}</strong> {{ c.title }} ({{ "%.2f"|format(c.score) }}){% if c.evidence %}: <q>{{ c.evidence }}</q>{% endif %}</li>{% endfor %}</ul>{% endif %}
<p style="color: #555; font-size: 0.9em">Match score {{ "%.2f"|format(score) }}. Stop these alerts with <code>scan unsubscribe {{ name }}</code>.</p>
</body></html>
"""


def subject(name: str, development: dict[str, Any]) -> str:
    """`[scan] NAME: TITLE`, one line, so the inbox shows which subscription and which development."""
    stage = development.get("advance", {}).get("stage") if isinstance(development.get("advance"), dict) else None
    marker = f"[{stage}] " if stage else ""
    line = " ".join(f"[scan] {name}: {marker}{development.get('title') or development.get('url')}".split())
    return line if len(line) <= SUBJECT_CHARS else line[: SUBJECT_CHARS - 1] + "…"


def _values(subscription: Any, development: dict[str, Any], score: float) -> dict[str, Any]:
    return {"name": subscription.name, "topic": subscription.topic, "d": development, "score": score,
            "url": _safe_href(development.get("url") or "")}


def email_message(settings: AlertSettings, to: str, subscription: Any, development: dict[str, Any],
                  score: float, message_id: str) -> EmailMessage:
    """The alert as a plain-text + HTML email with a stable Message-ID."""
    values = _values(subscription, development, score)
    message = EmailMessage()
    message["Subject"] = subject(subscription.name, development)
    message["From"] = settings.smtp.from_
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Mailer"] = f"scan/{__version__}"
    message.set_content(_TEXT.from_string(_BODY).render(values))
    message.add_alternative(_ENV.from_string(_HTML).render(values), subtype="html")
    return message


def webhook_payload(subscription: Any, development: dict[str, Any]) -> dict[str, Any]:
    """Slack-compatible JSON: `text` is one line with a link; the whole development rides along."""
    title = " ".join((development.get("title") or development.get("url") or "").split())
    text = f"[scan] {subscription.name}: <{development.get('url', '')}|{_slack_escape(title)}>"
    return {"text": text, "subscription": subscription.name, "development": development}


def teams_card(subscription: Any, development: dict[str, Any], score: float) -> dict[str, Any]:
    """A Teams message card: title, source line, clauses; every source value as escaped text, the link as a button."""
    clauses = "\n\n".join(f"- **{_md(c['id'])}** {_md(c.get('title') or '')}" for c in development.get("clauses") or [])
    facts = " · ".join(_md(str(v)) for v in (development.get("source_name") or development.get("source"),
                                               development.get("jurisdiction"), development.get("published")) if v)
    card: dict[str, Any] = {
        "@type": "MessageCard", "@context": "https://schema.org/extensions",
        "summary": _md(subject(subscription.name, development)), "themeColor": "2F5496",
        "title": _md(subject(subscription.name, development)),
        "text": "\n\n".join(p for p in (facts, _md(development.get("summary") or ""), clauses) if p),
    }
    if _safe_href(development.get("url") or ""):
        card["potentialAction"] = [{"@type": "OpenUri", "name": "Open the development",
                                    "targets": [{"os": "default", "uri": development["url"]}]}]
    return card


class Courier:
    """Sends deliveries for one run: one HTTP client, one SMTP connection opened on first use."""

    def __init__(self, settings: AlertSettings):
        self.settings = settings
        self._http: httpx.Client | None = None
        self._smtp: smtplib.SMTP | None = None
        self._smtp_error: str | None = None

    def __enter__(self) -> "Courier":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()

    def send(self, channel: str, subscription: Any, development: dict[str, Any], score: float, message_id: str) -> str | None:
        """Deliver to one `kind:target` channel; None when done, else a one-line reason."""
        kind, _, target = channel.partition(":")
        registered = CHANNELS.get(kind)
        if registered is None:
            return f"unknown channel {channel!r}"
        return registered.send(self, target, subscription, development, score, message_id)

    def post(self, url: str, payload: dict[str, Any]) -> str | None:
        """POST JSON with the run's client and the configured timeout; any non-2xx is a failure."""
        if self._http is None:
            self._http = httpx.Client(timeout=self.settings.webhook_timeout, follow_redirects=False,
                                      headers={"User-Agent": f"scan/{__version__}"})
        try:
            response = self._http.post(url, json=payload)
        except httpx.HTTPError as exc:
            return f"POST {url}: {type(exc).__name__}: {exc or 'no detail'}"
        if not response.is_success:
            return f"POST {url}: HTTP {response.status_code}"
        return None

    def email(self, to: str, message: EmailMessage) -> str | None:
        try:
            smtp = self._connect()
            smtp.send_message(message, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            return f"email {to}: refused: {_smtp_reason(exc.recipients.get(to))}"
        except (smtplib.SMTPException, OSError) as exc:
            self._drop_connection()
            return f"email {to}: {self._smtp_error or _describe(exc)}"
        return None

    def _connect(self) -> smtplib.SMTP:
        """The run's SMTP session; after one failure to connect, the rest of the run fails fast."""
        if self._smtp is not None:
            return self._smtp
        if self._smtp_error:
            raise smtplib.SMTPConnectError(0, self._smtp_error)
        smtp_settings = self.settings.smtp
        try:
            cls = smtplib.SMTP_SSL if smtp_settings.ssl else smtplib.SMTP
            kwargs: dict[str, Any] = {"context": ssl.create_default_context()} if smtp_settings.ssl else {}
            smtp = cls(smtp_settings.host, smtp_settings.port, timeout=smtp_settings.timeout, **kwargs)
            if smtp_settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if smtp_settings.username:
                password = smtp_settings.password()
                if password is None:
                    smtp.close()
                    raise smtplib.SMTPAuthenticationError(
                        0, f"no password: set ${smtp_settings.password_env} for {smtp_settings.username}")
                smtp.login(smtp_settings.username, password)
        except (smtplib.SMTPException, OSError) as exc:
            self._smtp_error = f"SMTP {smtp_settings.host}:{smtp_settings.port}: {_describe(exc)}"
            raise
        self._smtp = smtp
        return smtp

    def _drop_connection(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_smtp_reason((exc.smtp_code, exc.smtp_error))}"
    if isinstance(exc, socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _smtp_reason(reply: Any) -> str:
    if not reply:
        return "no reason given"
    code, text = reply
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}".strip()


def _safe_href(url: str) -> str:
    """Only http(s) links become href values; anything else (javascript:, data:) is dropped."""
    return url if url.lower().startswith(("http://", "https://")) else ""


def _md(text: str) -> str:
    """Markdown-inert text for a Teams card: markup characters escaped, HTML brackets entity-encoded."""
    text = re.sub(r"([\\`*_\[\]#|~])", r"\\\1", " ".join(text.split()))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_escape(text: str) -> str:
    """Slack's three control characters, so a title cannot forge a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Channel:
    """An alert channel: the CLI option that adds it, how a target is checked, and how it is sent."""

    name: str
    option: str
    summary: str
    validate: Callable[[str], str]
    send: Callable[["Courier", str, Any, dict[str, Any], float, str], str | None]


CHANNELS: dict[str, Channel] = {}


def register(channel: Channel) -> Channel:
    CHANNELS[channel.name] = channel
    return channel


def parse_channel(value: str) -> tuple[str, str]:
    """`email:a@b` → ("email", "a@b"); the target is validated by its channel."""
    kind, _, target = value.partition(":")
    channel = CHANNELS.get(kind)
    if channel is None or not target:
        raise UsageError(f"{value!r} is not a channel like {', '.join(c + ':…' for c in CHANNELS)}")
    return kind, channel.validate(target)


EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
HTTP_URL = re.compile(r"^https?://[^\s/?#@]+(?::\d+)?(?:[/?#]\S*)?$")


def _email_target(value: str) -> str:
    if not EMAIL.match(value):
        raise UsageError(f"--email {value!r} is not an address like name@example.com")
    return value


def _url_target(option: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not HTTP_URL.match(value):
            raise UsageError(f"{option} {value!r} is not an http(s) URL")
        return value
    return check


def _apprise_target(value: str) -> str:
    import apprise

    if apprise.Apprise.instantiate(value) is None:
        raise UsageError(f"--notify {value!r} is not a notification URL apprise knows "
                         "(see https://github.com/caronc/apprise/wiki for the schemes)")
    return value


def _send_email(courier: "Courier", target: str, subscription: Any, development: dict[str, Any], score: float,
                message_id: str) -> str | None:
    return courier.email(target, email_message(courier.settings, target, subscription, development, score, message_id))


def _send_webhook(courier: "Courier", target: str, subscription: Any, development: dict[str, Any], score: float,
                  message_id: str) -> str | None:
    return courier.post(target, webhook_payload(subscription, development))


def _send_teams(courier: "Courier", target: str, subscription: Any, development: dict[str, Any], score: float,
                message_id: str) -> str | None:
    return courier.post(target, teams_card(subscription, development, score))


def _send_apprise(courier: "Courier", target: str, subscription: Any, development: dict[str, Any], score: float,
                  message_id: str) -> str | None:
    import apprise

    sender = apprise.Apprise()
    sender.add(target)
    with apprise.LogCapture(level=apprise.logging.WARNING) as captured:
        ok = sender.notify(title=subject(subscription.name, development),
                           body=_TEXT.from_string(_BODY).render(_values(subscription, development, score)))
    if ok:
        return None
    reason = " ".join(captured.getvalue().split())[:300] or "no reason given"
    return f"apprise {target.split(':', 1)[0]}: {reason}"


register(Channel("email", "--email", "an email (plain text + HTML) per development", _email_target, _send_email))
register(Channel("webhook", "--webhook", "a Slack-compatible JSON POST (`text` + the development)",
                 _url_target("--webhook"), _send_webhook))
register(Channel("teams", "--teams", "a Microsoft Teams incoming-webhook or Workflows URL (a message card)",
                 _url_target("--teams"), _send_teams))
register(Channel("apprise", "--notify", "any apprise notification URL (Discord, Telegram, Mattermost, …)",
                 _apprise_target, _send_apprise))
