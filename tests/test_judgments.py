"""Judgments through the CLI on a real analysed store: judged pairs stay as judged, forever and everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.config import load_config
from scanner.store import Store

pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def attached_development(config: Path) -> tuple[str, str, list[str]]:
    """(uid, url, attached clause ids) of a stored development with at least two attached clauses."""
    with Store.open(load_config(config).database, readonly=True) as store:
        for row in store.developments.list():
            clauses = [m["id"] for m in store.vectors.matches_for([row["id"]])[row["id"]]]
            if len(clauses) >= 2:
                return row["uid"], row["url"], clauses
    raise AssertionError("no development with two clauses in the example site")


def development_json(config: Path, uid: str) -> dict:
    from scanner.developments import as_json

    with Store.open(load_config(config).database, readonly=True) as store:
        return as_json(store, [store.developments.get(uid)])[0]


def unattached_clause(config: Path, attached: list[str]) -> str:
    with Store.open(load_config(config).database, readonly=True) as store:
        return next(c["id"] for c in store.vectors.clauses() if c["id"] not in attached)


def test_judged_pairs_survive_rematch_and_a_corpus_change(site: Path) -> None:
    uid, url, clauses = attached_development(site)
    rejected, confirmed = clauses[0], clauses[1]
    added = unattached_clause(site, clauses)
    result = invoke("judge", url, "--wrong", rejected, "--right", confirmed, "--add", added, "--by", "ana",
                    "--note", "checked", "--config", str(site), "--json")
    assert result.exit_code == 0, result.output
    shown = {c["id"]: c for c in json.loads(result.stdout)["development"]["clauses"]}
    assert rejected not in shown and shown[confirmed]["judged"] == "right" and shown[added]["judged"] == "added"

    assert invoke("rematch", "--config", str(site)).exit_code == 0
    policies = load_config(site).policies
    gifts = policies / "gifts.md"
    gifts.write_text(gifts.read_text(encoding="utf-8") + "\n## GIFT-99 A new clause\n\nGifts are reviewed weekly.\n",
                     encoding="utf-8")
    assert invoke("rematch", "--config", str(site)).exit_code == 0

    after = {c["id"]: c for c in development_json(site, uid)["clauses"]}
    assert rejected not in after
    assert after[confirmed]["judged"] == "right" and after[added]["judged"] == "added"
    search = json.loads(invoke("search", development_json(site, uid)["title"], "--json", "--config", str(site)).stdout)
    hit = next(r for r in search["results"] if r["id"] == uid)
    assert rejected not in {c["id"] for c in hit["clauses"]} and added in {c["id"] for c in hit["clauses"]}


def test_an_unknown_clause_or_development_is_refused_and_nothing_is_stored(site: Path) -> None:
    uid, _, clauses = attached_development(site)
    result = invoke("judge", uid, "--right", clauses[0], "--wrong", "GIFT-999", "--config", str(site))
    assert result.exit_code == 1 and "no clause 'GIFT-999'" in result.stderr
    result = invoke("judge", "no-such-development", "--right", clauses[0], "--config", str(site))
    assert result.exit_code == 1 and "no development" in result.stderr
    listed = json.loads(invoke("judgments", "--json", "--config", str(site)).stdout)
    assert listed["judgments"] == []


def test_export_then_import_into_a_fresh_database_gives_the_same_judgments(site: Path, tmp_path: Path) -> None:
    uid, _, clauses = attached_development(site)
    assert invoke("judge", uid, "--wrong", clauses[0], "--by", "ana", "--config", str(site)).exit_code == 0
    assert invoke("judge", uid, "--add", unattached_clause(site, clauses), "--by", "bo", "--config", str(site)).exit_code == 0
    exported = tmp_path / "judgments.jsonl"
    assert invoke("judgments", "--export", str(exported), "--config", str(site)).exit_code == 0
    fresh = tmp_path / "fresh.db"
    assert invoke("judgments", "--import", str(exported), "--config", str(site), "--db", str(fresh)).exit_code == 0
    again = invoke("judgments", "--import", str(exported), "--config", str(site), "--db", str(fresh))
    assert again.exit_code == 0 and "0 judgments" in again.stderr
    original = json.loads(invoke("judgments", "--json", "--config", str(site)).stdout)["judgments"]
    rebuilt = json.loads(invoke("judgments", "--json", "--config", str(site), "--db", str(fresh)).stdout)["judgments"]
    assert original == rebuilt and len(rebuilt) == 2


def test_a_bad_import_line_changes_nothing(site: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"development": "x", "clause": "GIFT-1", "verdict": "right", "at": "2026-01-01"}\nnot json\n')
    result = invoke("judgments", "--import", str(bad), "--config", str(site))
    assert result.exit_code == 2 and "bad.jsonl:2" in result.stderr
    assert json.loads(invoke("judgments", "--json", "--config", str(site)).stdout)["judgments"] == []
