"""Match developments to policy clauses: the encoders per language, the learned scorer, evidence.

How a development is scored (the method and its cross-validated figures: `scanner.clause_scorer`):

- English developments are encoded with MiniLM (ONNX int8) and the multilingual Universal Sentence
  Encoder (USE-m3); other languages with USE-m3 and multilingual-e5. Each text is encoded once per
  model (title + sentence-window chunks, a USE "head" of title + first 1,500 characters, and for
  English a MiniLM vector of the whole text), from the store's vector cache when it has them.
- `ClauseScorer` turns per-clause signals (best chunk, top-2 chunks, head / whole cosines, BM25 for
  English) into a probability per clause with one of two logistic models fitted on the labelled
  data; tier 1 clauses (probability over the fitted threshold, near the best) are attached, tier 2
  ones are shown as "possible" and never count as attached.
- Clause expansion: each clause's USE vector is widened towards the developments labelled (the
  bundled labelled data, when the corpus is the one it was labelled against) or judged relevant to
  it (`add_labelled`, `add_judged`); the chunks' cosine to the widened clause is one more signal, so
  a confirmed development changes the matching of unjudged ones at once.
- Judgments also retrain the scorer: `scan rematch --refit` (`scanner.fit_matcher.refit_from_store`) refits both models and the
  rule on the bundled labelled data plus the judged developments and stores the parameters in the
  database; `analyse` passes them to `Matcher(params=...)`.
- Evidence: each attached clause gets the sentence that best supports *that* clause (USE cosine,
  averaged with MiniLM for English), a different sentence from the other clauses' where one
  nearly as good exists.

No SQL and no printing here; callers pass caching encoders so stored vectors are reused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import embed
from .clause_scorer import HEAD_CHARS, ClauseScorer, evidence, is_english, models_for
from .policies import Clause

Encoder = Callable[[list[str]], np.ndarray]

MODELS = {"use": embed.USE_MODEL, "minilm": embed.DEFAULT_MODEL, "e5": embed.MULTILINGUAL_MODEL}
"""The scorer's short model names and the embed model each stands for."""
NON_ENGLISH_MIN_HEAD_COSINE = 0.38
"""Non-English developments attach nothing unless their USE head reaches this cosine with some clause.

The universal model sees only relative features (z-scores within the development), so an
off-topic text still has a "best" clause; the labelled data has almost no off-topic non-English
items to teach it otherwise. USE aligns languages: on the 100 labelled items every non-English
relevant development's best head cosine is >= 0.40 (min 0.401 of 20, leave-one-out min the same),
while 9 of 15 off-topic English items fall below 0.38 (and the one off-topic non-English, 0.29)."""
EVIDENCE_CHUNKS = 3
"""Evidence is looked for in the sentences of each attached clause's best chunks (and the title)."""

_TOKEN = re.compile(r"\w+")


def detect_lang(text: str) -> str:
    """ISO 639-1 code of the text's language (py3langid), used to route to the right encoders."""
    import py3langid

    return str(py3langid.classify(text)[0])


def detect_langs(texts: Sequence[str]) -> list[str]:
    """`detect_lang` for many texts, then the identifier is dropped: its model holds ~75 MiB that the
    encoders, loaded next, need more (py3langid keeps it in a module global until told otherwise)."""
    import gc

    import py3langid.langid

    langs = [detect_lang(t) for t in texts]
    py3langid.langid.IDENTIFIER = None
    gc.collect()
    return langs


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens for BM25; `\\w` keeps non-Latin scripts as words too."""
    return _TOKEN.findall(text.lower())


def chunks_of(title: str, text: str) -> list[str]:
    """What a development is cut into for matching and search: its title, then sentence windows."""
    return [c for c in [title.strip(), *embed.chunk_text(text)] if c]


def head_of(title: str, text: str) -> str:
    """The USE "head" text: the title and the opening of the text."""
    return f"{title}\n{text[:HEAD_CHARS]}".strip()


def whole_of(title: str, text: str) -> str:
    return f"{title}\n{text}".strip()


def texts_to_encode(title: str, text: str, lang: str) -> dict[str, list[str]]:
    """embed model → the texts `Matcher.match` will encode for this development (to batch them ahead)."""
    chunks = chunks_of(title, text)
    out = {MODELS[m]: list(chunks) for m in models_for(lang)}
    out[MODELS["use"]].append(head_of(title, text))
    if is_english(lang):
        out[MODELS["minilm"]].append(whole_of(title, text))
    return out


@dataclass(frozen=True)
class ClauseMatch:
    """One clause judged relevant to a development, with the sentence that supports it."""

    clause_id: str
    title: str
    policy: str
    score: float
    evidence: str
    tier: int = 1


class Matcher:
    """Scores developments against a fixed set of clauses; clause vectors and the scorer are built once."""

    def __init__(self, clauses: Sequence[Clause], encoders: Mapping[str, Encoder] | None = None,
                 params: Mapping | None = None):
        """`encoders` maps an embed model name to a (possibly caching) encode function; missing ones use embed.

        `params`: fitted parameters {"base": ...} as `scanner.fit_matcher` writes them (e.g. refitted
        with judgments, `refit_from_store`); None = the shipped literals of `clause_scorer`.
        """
        if not clauses:
            raise ValueError("Matcher needs at least one clause")
        self.clauses = list(clauses)
        self._encoders = dict(encoders or {})
        texts = [c.embedding_text for c in self.clauses]
        self._clause_vectors = {short: self._encode(model, texts) for short, model in MODELS.items()}
        self.params = params
        if params is None:
            self.scorer = ClauseScorer.from_clauses(self.clauses, self._clause_vectors)
        else:
            self.scorer = ClauseScorer.from_clauses(self.clauses, self._clause_vectors, params=params["base"])

    def models(self, lang: str) -> tuple[str, ...]:
        """The embed models a development in `lang` is scored with."""
        return tuple(MODELS[m] for m in models_for(lang))

    def add_judged(self, title: str, text: str, right: Sequence[str], wrong: Sequence[str], added: Sequence[str],
                   group: str) -> None:
        """A judged development joins the centroids of the clauses judged right or added (used at once).
        Clauses judged wrong only matter through a refit and the judgment itself, which always stands."""
        head = self._encode(MODELS["use"], [head_of(title, text)])[0]
        self.scorer.add_labelled(head, {c: 1.0 for c in [*right, *added]}, group=group)

    def add_labelled(self, developments: Sequence[Mapping[str, Any]]) -> int:
        """Labelled developments ({"title", "text", "relevant": {clause id: grade}, "group"}) join the clause
        centroids; their head vectors are encoded in one batch. Returns how many had a relevant clause."""
        known = set(self.scorer.clause_ids)
        useful = [d for d in developments if set(d.get("relevant") or {}) & known]
        heads = self._encode(MODELS["use"], [head_of(d["title"] or "", d["text"] or "") for d in useful])
        for d, head in zip(useful, heads):
            self.scorer.add_labelled(head, {c: g for c, g in d["relevant"].items() if c in known},
                                     group=str(d.get("group") or d.get("id")))
        return len(useful)

    def probabilities(self, title: str, text: str, lang: str | None = None, exclude: str | None = None
                      ) -> tuple[np.ndarray, dict[str, np.ndarray], list[str], str]:
        """Per-clause probabilities, with the chunk vectors and chunks they came from."""
        lang = _normalise_lang(lang) or detect_lang(whole_of(title, text))
        chunks = chunks_of(title, text) or [title or " "]
        vectors = {m: self._encode(MODELS[m], chunks) for m in models_for(lang)}
        whole = {"use": self._encode(MODELS["use"], [head_of(title, text)])[0]}
        if is_english(lang):
            whole["minilm"] = self._encode(MODELS["minilm"], [whole_of(title, text)])[0]
        probs = self.scorer.score(vectors, whole, tokens(whole_of(title, text)), lang, exclude=exclude)
        return probs, vectors, chunks, lang

    def match(self, title: str, text: str, lang: str | None = None, *, exclude: str | None = None) -> list[ClauseMatch]:
        """Attached (tier 1) then possible (tier 2) clauses, best first; `[]` for an unrelated development."""
        probs, vectors, chunks, lang = self.probabilities(title, text, lang, exclude)
        if not is_english(lang) and self._head_cosine(title, text) < NON_ENGLISH_MIN_HEAD_COSINE:
            return []
        tier1, tier2 = self.scorer.attach(probs, lang)
        quotes = self._evidence(title, text, tier1 + tier2, vectors, chunks, lang)
        return [self._clause_match(i, probs[i], quotes[i], 1 if i in tier1 else 2) for i in tier1 + tier2]

    def _head_cosine(self, title: str, text: str) -> float:
        head = self._encode(MODELS["use"], [head_of(title, text)])[0]
        return float((self.scorer.clause_vectors["use"] @ head).max())

    def rank(self, title: str, text: str, lang: str | None = None) -> list[ClauseMatch]:
        """Every clause with its probability, best first, without thresholds or evidence (for evaluation)."""
        probs = self.probabilities(title, text, lang)[0]
        return [self._clause_match(int(i), probs[i], "") for i in np.argsort(-probs, kind="stable")]

    def _evidence(self, title: str, text: str, chosen: list[int], vectors: dict[str, np.ndarray],
                  chunks: list[str], lang: str) -> dict[int, str]:
        """The sentence supporting each chosen clause, distinct across clauses where one nearly as good exists.

        Candidates are the title and the sentences of each clause's best chunks, so only those few
        sentences are encoded.
        """
        if not chosen:
            return {}
        sentences = embed.split_sentences(text)
        use_sims = vectors["use"] @ self.scorer.clause_vectors["use"][chosen].T
        candidates: list[str] = [title.strip()] if title.strip() else []
        for column in range(len(chosen)):
            for chunk_index in np.argsort(-use_sims[:, column])[:EVIDENCE_CHUNKS]:
                chunk = chunks[int(chunk_index)]
                candidates.extend(s for s in sentences if s in chunk)
        candidates = list(dict.fromkeys(c for c in candidates if c)) or [title or text[:200]]
        models = ["use", "minilm"] if is_english(lang) else ["use"]
        scores = np.mean([self._encode(MODELS[m], candidates) @ self.scorer.clause_vectors[m][chosen].T
                          for m in models], axis=0)
        picks = evidence(scores)
        return {clause: candidates[picks[column]] for column, clause in enumerate(chosen)}

    def _encode(self, model: str, texts: list[str]) -> np.ndarray:
        encode = self._encoders.get(model) or embed.encoder(model)
        return np.asarray(encode(texts), dtype=np.float32)

    def _clause_match(self, i: int, score: float, evidence_text: str, tier: int = 1) -> ClauseMatch:
        clause = self.clauses[i]
        return ClauseMatch(clause.id, clause.title, clause.policy, round(float(score), 4), evidence_text, tier)


def _normalise_lang(lang: str | None) -> str | None:
    """'en-GB' -> 'en'; empty -> None, so callers may pass what a feed declared."""
    if not lang:
        return None
    return lang.replace("_", "-").split("-")[0].lower() or None
