from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.config import ConfigError, load_config, parse_config

GOOD = """\
database: data/scan.db
policies: policies/
sources:
  - id: ftc-press
    name: FTC
    kind: regulator
    jurisdiction: US
    feed: https://www.ftc.gov/feeds/press.xml
  - id: ofcom-news
    kind: regulator
    jurisdiction: UK
    listing: https://www.ofcom.org.uk/news
    match: "/news/"
  - id: rival-gifts
    kind: competitor
    page: https://rival.example/legal/gifts
"""


def test_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "sources.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.database == (tmp_path / "conf" / "data" / "scan.db").resolve()
    assert config.policies == (tmp_path / "conf" / "policies").resolve()
    assert [s.type for s in config.sources] == ["feed", "listing", "page"]
    assert config.fetch.per_host_delay == 1.0 and config.fetch.max_bytes == 15_000_000
    assert config.fetch.user_agent.startswith("scan/")


@pytest.mark.parametrize(
    "change, line, field, words",
    [
        (("https://www.ftc.gov/feeds/press.xml", "htp://x"), 8, "sources[0].feed", "not an http(s) URL"),
        (("kind: competitor", "kind: rival"), 15, "sources[2].kind", "not one of"),
        (("    match: \"/news/\"\n", "    match: \"/news/\"\n    bogus: 1\n"), 14, "sources[1].bogus", "unknown field"),
        (("    page: https://rival.example/legal/gifts\n", ""), 14, "sources[2]", "exactly one of feed, listing, page"),
        (("id: ofcom-news", "id: Ofcom News"), 9, "sources[1].id", "[a-z0-9-]+"),
        (("id: ofcom-news", "id: ftc-press"), 9, "sources[1].id", "duplicate source id"),
    ],
)
def test_bad_config_names_file_line_and_field(change, line, field, words) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("sources.yaml"))
    message = str(info.value)
    assert message.startswith(f"sources.yaml:{line}: {field}: "), message
    assert words in message


def test_cli_refuses_bad_config_with_exit_1_before_any_fetch(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(GOOD.replace("https://www.ftc.gov/feeds/press.xml", "ftp://x"))
    result = CliRunner().invoke(app, ["crawl", "--config", str(path)])
    assert result.exit_code == 1
    assert "sources.yaml:8: sources[0].feed" in result.output
    assert not (tmp_path / "data" / "scan.db").exists()


def test_missing_config_says_how_to_point_at_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sources", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "SCAN_CONFIG" in result.output


def test_env_overrides_config_and_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("SCAN_CONFIG", str(path))
    monkeypatch.setenv("SCAN_DB", str(tmp_path / "other.db"))
    config = load_config()
    assert config.database == (tmp_path / "other.db").resolve()


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(app, ["crawl", "--no-such-flag"])
    assert result.exit_code == 2
