"""The analyse step on a real store: attach or not, evidence, re-matching on corpus change, vector reuse."""

from __future__ import annotations

from scanner.developments import as_json as developments_json

from pathlib import Path

import pytest

from scanner import embed
from scanner.analyse import analyse
from scanner.config import load_config
from scanner.store import Store

pytestmark = pytest.mark.timeout(1200)  # the first user of `analysed_site` pays for crawl + analyse

UNRELATED_TITLE = "Slow-cooked lentil soup for cold evenings"
UNRELATED_TEXT = (
    "Rinse the lentils and chop two onions, a carrot and a stick of celery. Fry the vegetables gently in "
    "olive oil for ten minutes, then add cumin and smoked paprika. Pour in the stock, add the lentils and "
    "simmer for forty minutes until soft. Season with lemon juice and serve with warm bread."
)


def add(store: Store, uid: str, title: str, text: str) -> int:
    return store.developments.add({
        "uid": uid, "source_id": "test-source", "kind": "regulator", "jurisdiction": "US",
        "url": f"https://example.test/{uid}", "canonical_url": f"https://example.test/{uid}",
        "title": title, "text": text, "summary": text[:100], "published": "2026-11-18",
        "content_hash": embed.content_hash(title + text),
    })


def embedding_keys(store: Store) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in store.db.execute("select hash, model from embeddings")}


def test_unrelated_development_gets_no_clauses(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        row_id = add(store, "soup", UNRELATED_TITLE, UNRELATED_TEXT)
        outcome = analyse(config, store)
        assert outcome.matched == 1 and outcome.attached == 0
        assert store.vectors.matches_for([row_id])[row_id] == []
        assert developments_json(store, store.developments.list(ids=[row_id]))[0]["clauses"] == []
        assert store.vectors.chunks(row_id), "even an unmatched development is chunked, so search can find it"


def test_evidence_is_a_sentence_of_the_development(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        rows = store.developments.list()
        matches = store.vectors.matches_for(r["id"] for r in rows)
        checked = 0
        for row in rows:
            sentences = set(embed.split_sentences(row["text"] or "")) | {(row["title"] or "").strip()}
            for match in matches[row["id"]]:
                assert match["evidence"] in sentences, (row["title"], match["id"], match["evidence"])
                checked += 1
    assert checked > 40


def test_second_analyse_encodes_nothing(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        before = embedding_keys(store)
        outcome = analyse(config, store)
        assert (outcome.matched, outcome.encoded) == (0, 0)
        assert embedding_keys(store) == before


def test_new_matcher_parameters_rematch_every_development_once_without_encoding(site: Path) -> None:
    import json

    from scanner.analyse import PARAMS_STATE
    from scanner.clause_scorer import PARAMS

    config = load_config(site)
    with Store.open(config.database) as store:
        developments = len(store.developments.list())
        store.vectors.set_state(PARAMS_STATE, json.dumps({"base": {**PARAMS, "rule": [0.9, 0.0, 1, 0.9]}}))
        outcome = analyse(config, store)
        assert (outcome.matched, outcome.encoded) == (developments, 0)
        per_development = store.vectors.matches_for([r["id"] for r in store.developments.list()])
        assert max(len(m) for m in per_development.values()) == 1       # the new rule attaches at most one
        assert analyse(config, store).matched == 0


def test_changed_clause_rematches_every_development_without_re_encoding_text(site: Path) -> None:
    config = load_config(site)
    gifts = config.policies / "gifts.md"
    with Store.open(config.database) as store:
        fingerprint = store.vectors.get_state("corpus")
        developments = len(store.developments.list())
        chunk_hashes = {r[0] for r in store.db.execute("select hash from chunks")}
        before = embedding_keys(store)
        old = {c["id"]: c["text"] for c in store.vectors.clauses()}
        titles = {c["id"]: c["title"] for c in store.vectors.clauses()}

        text = gifts.read_text(encoding="utf-8")
        marker = "## GIFT-1 "
        start = text.index("\n", text.index(marker)) + 1
        gifts.write_text(text[:start] + "Viewers must be verified adults to send any Gift.\n" + text[start:],
                         encoding="utf-8")
        outcome = analyse(config, store)

        assert outcome.matched == developments
        assert store.vectors.get_state("corpus") != fingerprint
        new = {c["id"]: c["text"] for c in store.vectors.clauses()}
        assert new["GIFT-1"] != old["GIFT-1"] and "verified adults" in new["GIFT-1"]
        assert {k: v for k, v in new.items() if k != "GIFT-1"} == {k: v for k, v in old.items() if k != "GIFT-1"}
        fresh = embedding_keys(store) - before
        assert len(fresh) == outcome.encoded
        assert not {h for h, _ in fresh} & chunk_hashes, "unchanged chunks must come from the vector cache"
        clause_text = f"{titles['GIFT-1']}. {new['GIFT-1']}"  # what Matcher encodes for a clause
        assert (embed.content_hash(clause_text), embed.DEFAULT_MODEL) in fresh
        assert outcome.encoded < 30


def test_changed_development_text_rematches_only_it(site: Path) -> None:
    config = load_config(site)
    with Store.open(config.database) as store:
        row = store.developments.list()[0]
        new_text = (row["text"] or "") + "\n\nUpdate: the regulator also capped daily gift spending per viewer."
        store.db["developments"].update(row["id"], {"text": new_text, "content_hash": embed.content_hash(new_text)})
        outcome = analyse(config, store)
        assert outcome.matched == 1
        assert store.vectors.chunks(row["id"])[-1]["text"].endswith("per viewer.")
