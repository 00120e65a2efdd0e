"""Clause matching behaviour (not quality: that is `python -m scanner.evaluate`), embedding helpers and metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scanner import embed
from scanner.evaluate import ndcg_at_k, precision, recall_at_k
from scanner.match import MODELS, Matcher, detect_lang
from scanner.policies import load_corpus

EXAMPLE_CORPUS = Path(__file__).resolve().parents[1] / "scanner" / "data" / "policies"
"""The bundled copy of the example corpus: always there, so nothing here skips."""

RELEVANT_TITLE = "Regulator orders daily cap on gift purchases for livestream viewers"
RELEVANT_TEXT = (
    "The communications regulator said on Tuesday that live-streaming platforms must cap how much a "
    "viewer can spend on virtual Coins and gifts in one day. Platforms will have to show a warning before a "
    "large purchase of Coins and let users set a lower personal spending limit. The rule follows complaints "
    "from families of viewers who spent their savings on gifts to streamers.\n\n"
    "Under the draft, the daily purchase limit would apply to every Coin package sold in the app, and a "
    "cooling-off period would follow any purchase above the limit. Platforms would have to keep records of "
    "purchase limits and report how many users set their own budget.\n\n"
    "The regulator also asks platforms to stop promotions that reward viewers for buying more Coins, such "
    "as bonus Coins for large top-ups, and to make spending history easy to find."
)
UNRELATED_TITLE = "Slow-cooked lentil soup for cold evenings"
UNRELATED_TEXT = (
    "Rinse the lentils and chop two onions, a carrot and a stick of celery. Fry the vegetables gently in "
    "olive oil for ten minutes, then add cumin and smoked paprika. Pour in the stock, add the lentils and "
    "simmer for forty minutes until soft. Season with lemon juice and serve with warm bread."
)


class CountingEncoders(dict):
    """Encoders that record which model encoded how many texts: proves the caching hook is used."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}
        for model in MODELS.values():
            self[model] = self._counting(model)

    def _counting(self, model: str):
        def encode(texts: list[str]) -> np.ndarray:
            self.calls[model] = self.calls.get(model, 0) + len(texts)
            return embed.encode(texts, model)
        return encode


@pytest.fixture(scope="module")
def encoders() -> CountingEncoders:
    return CountingEncoders()


@pytest.fixture(scope="module")
def matcher(encoders: CountingEncoders) -> Matcher:
    return Matcher(load_corpus(EXAMPLE_CORPUS), encoders)


def test_unrelated_development_gets_no_clauses(matcher: Matcher) -> None:
    assert matcher.match(UNRELATED_TITLE, UNRELATED_TEXT) == []


def test_relevant_development_attaches_clauses_with_verbatim_evidence(matcher: Matcher) -> None:
    matches = matcher.match(RELEVANT_TITLE, RELEVANT_TEXT, "en")
    attached = [m for m in matches if m.tier == 1]
    assert attached, "a gift spending cap should attach at least one clause"
    assert "COIN-5" in [m.clause_id for m in matches[:3]]
    assert [m.tier for m in matches] == sorted(m.tier for m in matches)
    assert [m.score for m in attached] == sorted((m.score for m in attached), reverse=True)
    sentences = embed.split_sentences(RELEVANT_TEXT) + [RELEVANT_TITLE]
    threshold = matcher.scorer.rule.t1[0]
    for m in attached:
        assert threshold <= m.score <= 1
        assert m.evidence in sentences
        assert m.policy and m.title


def test_each_attached_clause_gets_its_own_supporting_sentence_where_one_exists(matcher: Matcher) -> None:
    text = ("Platforms must cap how much a viewer can spend on virtual gifts in one day. "
            "Creators must verify their identity before they can cash out their earnings. "
            "Viewers under 18 may not send gifts at all.")
    matches = matcher.match("New rules for gifts, payouts and minors on live streams", text, "en")
    quotes = [m.evidence for m in matches if m.tier == 1]
    assert len(quotes) >= 2 and len(set(quotes)) == len(quotes)


def test_rank_scores_every_clause(matcher: Matcher) -> None:
    ranked = matcher.rank(RELEVANT_TITLE, RELEVANT_TEXT)
    assert len(ranked) == len(matcher.clauses)
    scores = [m.score for m in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_each_language_uses_its_encoders(matcher: Matcher, encoders: CountingEncoders) -> None:
    """English: MiniLM and USE, never e5 (the costly one); other languages: USE and e5, never MiniLM."""
    before = dict(encoders.calls)
    matcher.rank("Tagesobergrenze für Geschenke in Livestreams", "Die Behörde plant eine Obergrenze. "
                 "Plattformen müssen Warnhinweise zeigen.", "de")
    assert encoders.calls[embed.MULTILINGUAL_MODEL] > before[embed.MULTILINGUAL_MODEL]
    assert encoders.calls[embed.USE_MODEL] > before[embed.USE_MODEL]
    assert encoders.calls[embed.DEFAULT_MODEL] == before[embed.DEFAULT_MODEL]
    before = dict(encoders.calls)
    matcher.rank(RELEVANT_TITLE + " (daily caps)", RELEVANT_TEXT, "en")
    assert encoders.calls[embed.DEFAULT_MODEL] > before[embed.DEFAULT_MODEL]
    assert encoders.calls[embed.MULTILINGUAL_MODEL] == before[embed.MULTILINGUAL_MODEL]


def test_detect_lang() -> None:
    assert detect_lang(RELEVANT_TEXT) == "en"
    assert detect_lang("国家网信办等四部门印发《网络直播打赏未成年人保护规定》。") == "zh"


def test_split_sentences_keeps_abbreviations_and_handles_cjk() -> None:
    text = 'The U.S. District Court ruled. Ridgeline Inc. appealed!\n\n"Leaving took a call." 第一句。第二句！'
    assert embed.split_sentences(text) == [
        "The U.S. District Court ruled.", "Ridgeline Inc. appealed!", '"Leaving took a call."', "第一句。", "第二句！"]


def test_chunks_cover_the_text_in_bounded_windows() -> None:
    text = "\n\n".join(" ".join(f"Sentence {p}.{s} about topic {p}." for s in range(12)) for p in range(3))
    chunks = embed.chunk_text(text, max_chars=200)
    assert all(len(c) <= 200 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_vector_blobs_round_trip_and_hash() -> None:
    vec = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    blob = embed.to_blob(vec)
    assert blob == vec.astype("<f4").tobytes() and len(blob) == 12
    assert np.array_equal(embed.from_blob(blob, 3), vec)
    with pytest.raises(ValueError):
        embed.from_blob(blob, 4)
    assert embed.content_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert embed.content_hash(" abc\n") == embed.content_hash("abc")  # whitespace is folded


def test_encode_is_normalised_float32() -> None:
    vectors = embed.encode(["gift limits", "lentil soup"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, embed.model_dim())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_metrics() -> None:
    relevant = {"A": 2, "B": 1}
    assert ndcg_at_k(["A", "B", "C"], relevant, 5) == pytest.approx(1.0)
    assert ndcg_at_k(["C", "B", "A"], relevant, 5) < ndcg_at_k(["A", "C", "B"], relevant, 5)
    assert ndcg_at_k(["A"], {}, 5) == 0.0
    assert recall_at_k(["C", "A"], relevant, 1) == 0.0 and recall_at_k(["C", "A"], relevant, 2) == 0.5
    assert precision(["A", "C"], relevant) == (1, 2)


@pytest.mark.parametrize("model", list(MODELS.values()))
def test_every_encoder_returns_one_unit_row_per_text_across_its_batches(model: str) -> None:
    """Batches are cut inside the encoders (e5 by 16, MiniLM by 32 and a token budget): sizes around the cuts."""
    for n in (1, 16, 17, 33):
        vectors = embed.encode([f"text number {i} about gifts" for i in range(n)], model)
        assert vectors.shape == (n, embed.model_dim(model))
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


# --- clause expansion: labelled and judged developments widen their clauses ------------------


def test_expansion_moves_only_labelled_clauses_and_can_leave_a_thread_out() -> None:
    from scanner.clause_scorer import EXPANDED_SIGNAL, ClauseScorer

    rng = np.random.default_rng(0)
    clauses = rng.normal(size=(4, 16))
    scorer = ClauseScorer(["A", "B", "C", "D"], {"use": clauses}, [["a"], ["b"], ["c"], ["d"]], params={})
    plain = scorer.expanded_vectors().copy()
    development = rng.normal(size=16)
    scorer.add_labelled(development, {"B": 2.0}, group="thread-1")
    widened = scorer.expanded_vectors()
    assert np.allclose(widened[[0, 2, 3]], plain[[0, 2, 3]]) and not np.allclose(widened[1], plain[1])
    assert widened[1] @ development / np.linalg.norm(development) > plain[1] @ development / np.linalg.norm(development)
    assert np.allclose(scorer.expanded_vectors(exclude="thread-1"), plain)
    near = (development + 0.1 * rng.normal(size=16))[None]
    signal = scorer.signals({"use": near}, {}, exclude=None)[EXPANDED_SIGNAL]
    left_out = scorer.signals({"use": near}, {}, exclude="thread-1")[EXPANDED_SIGNAL]
    assert signal[1] > left_out[1] and np.allclose(signal[[0, 2, 3]], left_out[[0, 2, 3]])
    scorer.add_labelled(development, {"C": 0.0}, group="nothing relevant")   # no relevant clause: ignored
    assert np.allclose(scorer.expanded_vectors(), widened)


@pytest.mark.slow
def test_bundled_labels_widen_the_clauses_of_their_own_corpus_only(encoders: CountingEncoders, tmp_path: Path) -> None:
    from scanner.analyse import add_bundled

    own = Matcher(load_corpus(EXAMPLE_CORPUS), encoders)
    assert add_bundled(own) == 84                   # the labelled developments with a relevant clause
    assert not np.allclose(own.scorer.expanded_vectors(), own.scorer.clause_vectors["use"])
    edited = tmp_path / "policies"
    edited.mkdir()
    for path in EXAMPLE_CORPUS.glob("*.md"):
        (edited / path.name).write_text(path.read_text(encoding="utf-8").replace("Coins", "Tokens", 1), encoding="utf-8")
    other = Matcher(load_corpus(edited), encoders)
    assert add_bundled(other) == 0
    assert np.allclose(other.scorer.expanded_vectors(), other.scorer.clause_vectors["use"])


@pytest.mark.slow
def test_a_judgment_moves_similar_unjudged_developments_at_once(encoders: CountingEncoders) -> None:
    fresh = Matcher(load_corpus(EXAMPLE_CORPUS), encoders)
    index = fresh.scorer.clause_ids.index("TAX-1")
    before = fresh.probabilities(RELEVANT_TITLE, RELEVANT_TEXT, "en")[0][index]
    judged_text = RELEVANT_TEXT.replace("on Tuesday", "this week").replace("savings", "money")
    fresh.add_judged("Daily limit on gift purchases ordered for live-stream viewers", judged_text,
                     right=[], wrong=[], added=["TAX-1"], group="judged-1")
    after = fresh.probabilities(RELEVANT_TITLE, RELEVANT_TEXT, "en")[0][index]
    assert after > before
    unchanged = fresh.probabilities(RELEVANT_TITLE, RELEVANT_TEXT, "en", exclude="judged-1")[0][index]
    assert abs(unchanged - before) < 1e-9
