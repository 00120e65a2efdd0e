"""The Federal Register documents API parser: fields, key dates, stages, thread keys, bad input."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from scanner.federal_register import FederalRegisterError, parse_documents, url_for

SAMPLE = Path(__file__).resolve().parent.parent / "scanner" / "data" / "federal_register" / "documents.json"


@pytest.fixture
def documents():
    return {d.document_number: d for d in parse_documents(SAMPLE.read_bytes())}


def test_sample_parses_every_document_with_its_fields(documents) -> None:
    assert len(documents) == 6
    proposed = documents["2026-00841"]
    assert proposed.type == "Proposed Rule" and proposed.publication_date == date(2026, 1, 16)
    assert proposed.html_url.startswith("https://www.federalregister.gov/documents/2026/01/16/")
    assert proposed.agencies == ("Federal Trade Commission",)
    assert proposed.abstract.startswith("The Federal Trade Commission proposes")


def test_structured_dates_map_to_key_dates_and_the_dates_section_adds_compliance(documents) -> None:
    proposed, final = documents["2026-00841"], documents["2026-12577"]
    assert [(k.date.isoformat(), k.type) for k in proposed.key_dates] == [("2026-03-17", "comments_due")]
    assert [(k.date.isoformat(), k.type) for k in final.key_dates] == [("2026-08-24", "effective"), ("2026-12-22", "compliance")]
    assert "August 24, 2026" in final.key_dates[0].phrase


def test_stages_by_document_type(documents) -> None:
    assert documents["2026-00841"].stage == "proposal"
    assert documents["2026-12577"].stage == "final"
    assert documents["2026-16204"].stage == "consultation"  # a request for information


def test_a_proposed_rule_and_its_final_rule_share_thread_keys(documents) -> None:
    shared = documents["2026-00841"].thread_keys & documents["2026-12577"].thread_keys
    assert shared == {"rin:3084-AB60", "docket:FTC-2026-0004"}
    assert not documents["2026-19930"].thread_keys & documents["2026-21318"].thread_keys


def test_as_development_has_the_contract_shape(documents) -> None:
    development = documents["2026-12577"].as_development()
    assert development["jurisdiction"] == "US" and development["kind"] == "regulator"
    assert development["published"] == "2026-06-25" and development["stage"] == "final"
    assert development["dates"][0] == {"date": "2026-08-24", "type": "effective", "phrase": development["dates"][0]["phrase"]}
    json.dumps(development)


def test_malformed_documents_are_skipped_and_bad_bodies_refused() -> None:
    body = json.dumps({"results": [
        {"title": "No number"},
        {"document_number": "2026-1", "title": "Odd fields", "type": "Rule", "effective_on": "not a date",
         "docket_ids": "FTC-1", "regulation_id_numbers": ["bogus", "3084-AB61"], "agencies": ["Federal Trade Commission"]},
        "junk",
    ]}).encode()
    [doc] = parse_documents(body)
    assert doc.effective_on is None and doc.docket_ids == () and doc.regulation_id_numbers == ("3084-AB61",)
    assert doc.agencies == ("Federal Trade Commission",)
    assert parse_documents(b'{"count": 0, "results": []}') == []
    for bad in (b"<html>", b"[]", b'{"results": {}}', b'{"errors": {"conditions": "bad"}}', b"\xff\xfe"):
        with pytest.raises(FederalRegisterError):
            parse_documents(bad)


def test_query_url_asks_for_the_parsed_fields() -> None:
    query = parse_qs(urlsplit(url_for("negative option", agencies=["federal-trade-commission"], types=["Proposed Rule"],
                                      since=date(2026, 1, 1))).query)
    assert query["conditions[term]"] == ["negative option"]
    assert query["conditions[type][]"] == ["PRORULE"]
    assert "regulation_id_numbers" in query["fields[]"] and "comments_close_on" in query["fields[]"]


def test_the_federal_register_source_type_crawls_dates_stage_and_thread_keys(tmp_path) -> None:
    """Through the real crawler and the lifecycle step: stated dates stored as given, proposed and final rule threaded."""
    from scanner.config import load_config
    from scanner.crawl import crawl
    from scanner.demo_site import build_site, demo_config, serve, write_policies
    from scanner.lifecycle import analyse_lifecycle, deadlines
    from scanner.store import Store

    root = tmp_path / "site"
    root.mkdir()
    with serve(root) as server:
        build_site(root, base_url=server.base_url)
        write_policies(tmp_path / "policies")
        config_path = tmp_path / "sources.yaml"
        config_path.write_text(demo_config(server.base_url, federal_register=True))
        config = load_config(config_path)
        with Store.open(config.database) as store:
            (result,) = crawl(config, store, ["us-federal-register"])
            assert result.status == "ok" and result.new == 6
            rows = store.developments.list(sources=["us-federal-register"])
            analyse_lifecycle(store)
            due = deadlines(store, since="2026-01-01")["deadlines"]
            threads = store.lifecycle.threads_for(r["id"] for r in rows)
            again = crawl(config, store, ["us-federal-register"])[0]
    assert again.status == "not-modified"
    rin = [r for r in rows if "RIN 3084-AB60" in r["text"]]
    proposed = next(r for r in rin if '"stage": "proposal"' in r["meta"])
    final = next(r for r in rin if '"stage": "final"' in r["meta"])
    assert any(d["date"] == "2026-03-17" and d["type"] == "comments_due" and d["development"]["url"] == proposed["url"]
               for d in due)
    assert threads[proposed["id"]]["stage"] == "proposal" and threads[final["id"]]["stage"] == "final"
    assert threads[proposed["id"]]["thread_id"] == threads[final["id"]]["thread_id"] == f"thread-{proposed['uid']}"
