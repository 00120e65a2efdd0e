"""The clause workspace on a real analysed store: timelines, the review queue, clause text history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.config import load_config
from scanner.store import Store, utcnow

pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def busiest_clause(config: Path) -> tuple[str, set[str]]:
    """The clause attached to most developments, and the uids of those developments (from stored matches)."""
    with Store.open(load_config(config).database, readonly=True) as store:
        rows = store.db.execute(
            """select m.clause_id, d.uid from matches m join developments d on d.id = m.development_id
               where coalesce(m.tier, 1) = 1""").fetchall()
    by_clause: dict[str, set[str]] = {}
    for clause_id, uid in rows:
        by_clause.setdefault(clause_id, set()).add(uid)
    clause_id = max(by_clause, key=lambda c: (len(by_clause[c]), c))
    return clause_id, by_clause[clause_id]


def clause_json(config: Path, clause_id: str) -> dict:
    result = invoke("clause", clause_id, "--json", "--config", str(config))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def queue(config: Path) -> dict[str, dict]:
    result = invoke("clauses", "--needs-review", "--json", "--config", str(config))
    assert result.exit_code == 0, result.output
    return {c["id"]: c for c in json.loads(result.stdout)["clauses"]}


def test_a_clause_timeline_lists_exactly_its_attached_developments_newest_first(site: Path) -> None:
    clause_id, uids = busiest_clause(site)
    view = clause_json(site, clause_id)
    assert {d["id"] for d in view["developments"]} == uids
    days = [d["published"] or d["first_seen"][:10] for d in view["developments"]]
    assert days == sorted(days, reverse=True)
    assert {"id", "title", "policy", "text", "file", "line"} <= set(view["clause"])
    assert view["versions"] and view["versions"][0]["hash"]
    for item in view["developments"]:
        assert {"url", "title", "published", "source", "score", "evidence"} <= set(item)

    # a rejected development leaves the timeline; an added one joins it
    rejected = sorted(uids)[0]
    assert invoke("judge", rejected, "--wrong", clause_id, "--config", str(site)).exit_code == 0
    assert rejected not in {d["id"] for d in clause_json(site, clause_id)["developments"]}


def test_review_leaves_the_queue_until_a_new_development_attaches(site: Path) -> None:
    clause_id, uids = busiest_clause(site)
    before = queue(site)
    assert clause_id in before and before[clause_id]["reason"]
    assert invoke("review", clause_id, "--note", "checked", "--by", "ana", "--config", str(site)).exit_code == 0
    assert clause_id not in queue(site)
    assert clause_json(site, clause_id)["reviews"][-1]["note"] == "checked"

    # a development attached after the review (here: a specialist adds the clause to a newly seen one) brings it back
    config = load_config(site)
    with Store.open(config.database) as store:
        other = next(r for r in store.developments.list() if r["uid"] not in uids)
        store.db["developments"].update(other["id"], {"first_seen": utcnow()[:10] + "T23:59:59+00:00"})
    assert invoke("judge", other["uid"], "--add", clause_id, "--config", str(site)).exit_code == 0
    back = queue(site)
    assert clause_id in back and back[clause_id]["new_since_review"] == 1


def test_a_corpus_edit_records_a_version_and_flags_the_review(site: Path) -> None:
    clause_id, _ = busiest_clause(site)
    assert invoke("review", clause_id, "--config", str(site)).exit_code == 0
    config = load_config(site)
    path = next(p for p in config.policies.glob("*.md") if f"## {clause_id} " in p.read_text(encoding="utf-8"))
    text = path.read_text(encoding="utf-8")
    start = text.index("\n", text.index(f"## {clause_id} ")) + 1
    path.write_text(text[:start] + "\nSpecialists added this sentence after the regulator moved.\n" + text[start:],
                    encoding="utf-8")
    assert invoke("rematch", "--config", str(site)).exit_code == 0
    view = clause_json(site, clause_id)
    assert len(view["versions"]) == 2
    assert "+Specialists added this sentence" in view["versions"][1]["diff"]
    assert view["changed_since_review"]
    assert "changed since its last review" in queue(site)[clause_id]["reason"]


def test_a_removed_clause_keeps_its_developments(site: Path) -> None:
    clause_id, uids = busiest_clause(site)
    config = load_config(site)
    path = next(p for p in config.policies.glob("*.md") if f"## {clause_id} " in p.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {clause_id} "))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    path.write_text("".join(lines[:start] + lines[end:]), encoding="utf-8")
    assert invoke("rematch", "--config", str(site)).exit_code == 0
    view = clause_json(site, clause_id)
    assert view["clause"]["removed"]
    assert {d["id"] for d in view["developments"]} == uids
    listed = json.loads(invoke("clauses", "--json", "--config", str(site)).stdout)["clauses"]
    assert clause_id not in {c["id"] for c in listed}


def test_an_unknown_clause_suggests_the_closest(site: Path) -> None:
    result = invoke("clause", "GIFT-44", "--config", str(site))
    assert result.exit_code == 1 and "did you mean" in result.stderr and "GIFT-4" in result.stderr
