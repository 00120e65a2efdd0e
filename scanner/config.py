"""Turn `sources.yaml` into typed settings, refusing a bad file before any network traffic.

Validation is pydantic's; the YAML node tree is kept beside the data so that every error can
name the file, the line and the field path (`sources[2].feed`), which is what a user editing the
file needs to fix it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from scanner import __version__, sourcetypes
from scanner.errors import ScanError

DEFAULT_USER_AGENT = f"scan/{__version__} (+https://github.com/scan-horizon/scan)"
SOURCE_ID = re.compile(r"^[a-z0-9-]+$")
KINDS = ("regulator", "legal-news", "competitor")


class ConfigError(ScanError):
    """A configuration problem, carrying where it is so the CLI can print `file:line: field: why`."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None, field: str | None = None):
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.path) if self.path else "config"
        if self.line:
            where += f":{self.line}"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value or ""):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


class _SourceBase(_Strict):
    """What every source has; the target keys (`feed`, `listing`, …) come from `scanner.sourcetypes`."""

    id: str
    name: str | None = None
    kind: Literal["regulator", "legal-news", "competitor"]
    jurisdiction: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not SOURCE_ID.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and hyphens ([a-z0-9-]+)")
        return value

    @field_validator(*sourcetypes.REGISTRY, check_fields=False)
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _one_target(self) -> "_SourceBase":
        keys = list(sourcetypes.REGISTRY)
        given = [k for k in keys if getattr(self, k, None)]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of {', '.join(keys)} (found {', '.join(given) or 'none'})")
        allowed = set(sourcetypes.REGISTRY[given[0]].options)
        for option in sourcetypes.option_keys():
            if getattr(self, option, None) is not None and option not in allowed:
                owners = [t.key for t in sourcetypes.REGISTRY.values() if option in t.options]
                raise ValueError(f"'{option}' only applies to a {' or '.join(owners)} source")
        return self

    @property
    def type(self) -> str:
        """Which registered source type it is: the one target key it sets."""
        return next(k for k in sourcetypes.REGISTRY if getattr(self, k, None))

    @property
    def url(self) -> str:
        return getattr(self, self.type)

    @property
    def display_name(self) -> str:
        return self.name or self.id


Source = create_model(
    "Source",
    __base__=_SourceBase,
    **{key: (str | None, None) for key in [*sourcetypes.REGISTRY, *sourcetypes.option_keys()]},
)
"""A configured source: the base fields plus one optional field per registered target key and option."""


class FetchSettings(_Strict):
    user_agent: str = DEFAULT_USER_AGENT
    per_host_delay: float = Field(1.0, ge=0)
    timeout: float = Field(20, gt=0)
    max_bytes: int = Field(15_000_000, gt=0)
    retries: int = Field(2, ge=0, le=10)
    obey_robots: bool = True
    allow_private: bool = False
    max_redirects: int = Field(5, ge=0, le=20)
    max_links: int = Field(200, gt=0)


class SmtpSettings(_Strict):
    host: str = "localhost"
    port: int = 25
    from_: str = Field("scan@localhost", alias="from")
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: str = "SCAN_SMTP_PASSWORD"
    timeout: float = 20

    def password(self) -> str | None:
        """The password is read from the environment only, so it never lands in files or the DB."""
        return os.environ.get(self.password_env) or None


class AlertSettings(_Strict):
    smtp: SmtpSettings = SmtpSettings()
    threshold: float | None = None
    webhook_timeout: float = 10


class _File(_Strict):
    database: str = "scanner.db"
    policies: str = "policies/"
    digests: str = "digests/"
    sources: list[Source] = []
    fetch: FetchSettings = FetchSettings()
    alerts: AlertSettings = AlertSettings()


@dataclass(frozen=True)
class Config:
    """The loaded configuration with paths resolved against the config file's folder."""

    path: Path | None
    database: Path
    policies: Path
    digests: Path
    sources: tuple[Source, ...]
    fetch: FetchSettings
    alerts: AlertSettings

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        from scanner.errors import closest

        hint = closest(source_id, [s.id for s in self.sources]) if self.sources else "none are configured"
        raise ConfigError(f"no source {source_id!r} ({hint})", self.path)


def _node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to the deepest line we can name."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "literal") or str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_config(text: str, path: Path | None = None, *, base: Path | None = None) -> Config:
    """Validate config text; `base` is where relative paths resolve (the file's folder)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if root is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path, mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping (database:, policies:, sources: …)", path, 1)
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif err["type"] == "missing":
            message = "is required"
        elif err["type"] == "literal_error" and loc and loc[-1] == "kind":
            message = f"{err.get('input')!r} is not one of {', '.join(KINDS)}"
        raise ConfigError(message, path, _node_line(root, loc), _field_path(loc)) from None
    seen: dict[str, int] = {}
    for index, source in enumerate(parsed.sources):
        if source.id in seen:
            raise ConfigError(
                f"duplicate source id {source.id!r} (first used by sources[{seen[source.id]}])",
                path, _node_line(root, ("sources", index, "id")), f"sources[{index}].id",
            )
        seen[source.id] = index
    base = base or (path.parent if path else Path.cwd())
    return Config(
        path=path,
        database=(base / parsed.database).resolve(),
        policies=(base / parsed.policies).resolve(),
        digests=(base / parsed.digests).resolve(),
        sources=tuple(parsed.sources),
        fetch=parsed.fetch,
        alerts=parsed.alerts,
    )


def load_config(path: Path | str | None = None, *, db: Path | str | None = None) -> Config:
    """Read the config from `path`, `$SCAN_CONFIG` or ./sources.yaml; `db`/`$SCAN_DB` override the database."""
    path = Path(path or os.environ.get("SCAN_CONFIG") or "sources.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found (pass --config or set SCAN_CONFIG)", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path) from None
    config = parse_config(text, path, base=path.resolve().parent)
    override = db or os.environ.get("SCAN_DB")
    if override:
        config = Config(**{**config.__dict__, "database": Path(override).resolve()})
    return config
