"""Every command has help and is documented in the README; the README's commands are the ones CI runs."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_the_contract_commands_exist() -> None:
    contract = {"crawl", "run", "search", "digest", "subscribe", "subscriptions", "unsubscribe", "alerts",
                "sources", "policies", "demo"}
    assert contract <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_has_help_and_is_in_readme(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert f"`scan {command}" in README, f"scan {command} is not documented in README.md"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    marker = "# 2. install and run the tests"
    assert marker in ci and marker in README
    command = README.split(marker, 1)[1].strip().splitlines()[0]
    assert re.search(r"pip install -e '\.\[test\]'.*pytest", command)

