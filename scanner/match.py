"""Score developments against policy clauses, decide which clauses to attach, and pick evidence.

How a development is scored (each step measured on the dev set with `python -m scanner.evaluate`):

- The development is cut into its title plus sentence windows (`embed.chunk_text`), so one
  relevant paragraph in a long article counts fully instead of being diluted.
- Dense signals: for each clause, the best chunk and the whole development (mean of chunk vectors,
  or the full text for MiniLM, which is cheap) are both considered; the multilingual encoder also
  contributes the mean of its two best chunks. Clause vectors are "title. text" of the clause.
- Hubness correction: clauses that are close to many other clauses (generic ones) score high for
  every text; their mean similarity to their nearest clauses is subtracted.
- English developments fuse MiniLM, multilingual-e5 and BM25 (clause expanded with policy and
  clause titles). Other languages use multilingual-e5 only: MiniLM and BM25 do not cross languages.
- Signals are standardised per development (z-scores across clauses) and averaged, so scales
  from different models and BM25 are comparable; the fused z-score is mapped to [0, 1].

A clause is attached only if its score clears `ATTACH_THRESHOLD`, it is within
`RELATIVE_MARGIN_Z` of the best clause, and the development is topical in absolute terms:
z-scores are relative, so an off-topic text still has a "best" clause. For English the absolute
check is the MiniLM cosine of that clause; for other languages, whose cross-lingual cosines are
compressed, it is a stricter z-score for the best clause.
No SQL and no printing here; callers pass caching encoders to reuse stored vectors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import embed, scoring
from .policies import Clause

Encoder = Callable[[list[str]], np.ndarray]

FAST_MODEL = embed.DEFAULT_MODEL
MULTILINGUAL_MODEL = embed.MULTILINGUAL_MODEL
ENGLISH = "en"

ATTACH_THRESHOLD = 0.5
"""Score needed to attach a clause. Scores are logistic in the fused z-score, centred on `Z_ATTACH`."""
Z_ATTACH = 1.8
"""Fused z-score at which a clause is attached; dev precision stays 0.79-0.85 between 1.6 and 2.0."""
Z_SCALE = 0.5
"""Width of the logistic map from z-score to [0, 1]: z = 3 gives ~0.92, z = 1 gives ~0.17."""
RELATIVE_MARGIN_Z = 0.8
"""Attached clauses must be within this many z of the best clause: keeps side topics off."""
MIN_TOPICAL_COSINE = 0.2
"""English: the clause's MiniLM cosine (hub-corrected) must reach this. Off-topic dev texts top out ~0.21."""
MIN_CROSSLINGUAL_TOP_Z = 2.5
"""Non-English: the best clause must reach this z, else nothing is attached (see module docstring)."""
MAX_ATTACHED = 5
HUB_WEIGHT = 0.5
HUB_NEIGHBOURS = 10
SIGNAL_WEIGHTS = {"e5_mix": 1.0, "e5_top2": 1.0, "minilm_mix": 1.0, "bm25": 0.5}

_TOKEN = re.compile(r"\w+")


def chunks_of(title: str, text: str) -> list[str]:
    """What a development is cut into for matching and search: its title, then sentence windows."""
    return [c for c in [title.strip(), *embed.chunk_text(text)] if c]


@dataclass(frozen=True)
class Scored:
    """One development scored against every clause: fused z-scores, [0, 1] scores and what evidence needs."""

    lang: str
    chunks: list[str]
    z: np.ndarray
    score: np.ndarray
    best_chunk: np.ndarray
    topical: np.ndarray | None


@dataclass(frozen=True)
class ClauseMatch:
    """One clause judged relevant to a development, with the sentence that supports it."""

    clause_id: str
    title: str
    policy: str
    score: float
    evidence: str


def detect_lang(text: str) -> str:
    """ISO 639-1 code of the text's language (py3langid), used to route to the right encoder."""
    import py3langid

    return str(py3langid.classify(text)[0])


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens for BM25; `\\w` keeps non-Latin scripts as words too."""
    return _TOKEN.findall(text.lower())


class Matcher:
    """Scores developments against a fixed set of clauses; clause vectors and BM25 stats are built once."""

    def __init__(self, clauses: Sequence[Clause], encoders: Mapping[str, Encoder] | None = None):
        """`encoders` maps a model name to a (possibly caching) encode function; missing ones use embed."""
        from rank_bm25 import BM25Okapi

        if not clauses:
            raise ValueError("Matcher needs at least one clause")
        self.clauses = list(clauses)
        self._encoders = dict(encoders or {})
        self._bm25 = BM25Okapi([tokens(f"{c.policy}\n{c.title}\n{c.text}") for c in self.clauses])
        texts = [c.embedding_text for c in self.clauses]
        self._vectors = {m: self._encode(m, texts) for m in (FAST_MODEL, MULTILINGUAL_MODEL)}
        self._hub = {m: HUB_WEIGHT * scoring.hubness(v, HUB_NEIGHBOURS) for m, v in self._vectors.items()}

    def match(self, title: str, text: str, lang: str | None = None) -> list[ClauseMatch]:
        """The clauses to attach, best first; `[]` for a development unrelated to the corpus."""
        scored = self._score(title, text, lang)
        chosen = self._attach(scored)
        evidence = self._evidence(title, text, scored, chosen)
        return [self._clause_match(i, scored.score[i], evidence[i]) for i in chosen]

    def rank(self, title: str, text: str, lang: str | None = None) -> list[ClauseMatch]:
        """Every clause with its score, best first, without thresholds or evidence (for evaluation)."""
        scored = self._score(title, text, lang)
        order = np.argsort(-scored.z, kind="stable")
        return [self._clause_match(i, scored.score[i], "") for i in order]

    def _encode(self, model: str, texts: list[str]) -> np.ndarray:
        encode = self._encoders.get(model) or embed.encoder(model)
        return np.asarray(encode(texts), dtype=np.float32)

    def models(self, lang: str) -> tuple[str, ...]:
        """The encoders a development in `lang` is scored with (so a caller can encode a batch ahead)."""
        return (MULTILINGUAL_MODEL, FAST_MODEL) if _normalise_lang(lang) == ENGLISH else (MULTILINGUAL_MODEL,)

    def _score(self, title: str, text: str, lang: str | None) -> Scored:
        """Per-clause signals, fused z-scores and [0, 1] scores for one development."""
        whole = f"{title}\n{text}".strip()
        lang = _normalise_lang(lang) or detect_lang(whole)
        chunks = chunks_of(title, text)
        e5 = self._dense(MULTILINGUAL_MODEL, chunks)
        signals = {"e5_mix": e5["mix"], "e5_top2": e5["top2"]}
        minilm = None
        if lang == ENGLISH:
            minilm = self._dense(FAST_MODEL, chunks, whole)
            signals["minilm_mix"] = minilm["mix"]
            signals["bm25"] = self._bm25.get_scores(tokens(whole))
        weights = {k: SIGNAL_WEIGHTS[k] for k in signals}
        z = sum(w * scoring.zscore(signals[k]) for k, w in weights.items()) / sum(weights.values())
        return Scored(lang, chunks, z, scoring.logistic(z, Z_ATTACH, Z_SCALE), e5["best_chunk"],
                      None if minilm is None else minilm["mix"])

    def _dense(self, model: str, chunks: list[str], whole: str | None = None) -> dict[str, np.ndarray]:
        """Best-chunk, whole-text and top-2 cosines per clause, hub-corrected."""
        clause_vectors, hub = self._vectors[model], self._hub[model]
        chunk_vectors = self._encode(model, chunks)
        sims = chunk_vectors @ clause_vectors.T
        if whole is None:
            whole_vector = scoring.unit(chunk_vectors.mean(axis=0))
        else:
            whole_vector = self._encode(model, [whole])[0]
        best = sims.max(axis=0)
        top2 = np.sort(sims, axis=0)[-2:].mean(axis=0)
        mix = 0.5 * best + 0.5 * (clause_vectors @ whole_vector)
        return {"mix": mix - hub, "top2": top2 - hub, "best_chunk": sims.argmax(axis=0)}

    def _attach(self, scored: Scored) -> list[int]:
        """Indices of clauses to attach, best first (see the module docstring for the rules)."""
        z, topical = scored.z, scored.topical
        order = np.argsort(-z, kind="stable")
        best = z[order[0]]
        if topical is None and best < MIN_CROSSLINGUAL_TOP_Z:
            return []
        chosen = [int(i) for i in order
                  if scored.score[i] >= ATTACH_THRESHOLD and z[i] >= best - RELATIVE_MARGIN_Z
                  and (topical is None or topical[i] >= MIN_TOPICAL_COSINE)]
        return chosen[:MAX_ATTACHED]

    def _evidence(self, title: str, text: str, scored: Scored, chosen: list[int]) -> dict[int, str]:
        """For each chosen clause, the sentence of its best-matching chunk closest to the clause.

        Only the sentences of those chunks are encoded, which keeps evidence cheap; the title is
        its own chunk, so a development matched by its headline quotes the headline.
        """
        sentences = embed.split_sentences(text)
        candidates: dict[int, list[str]] = {}
        for i in chosen:
            chunk = scored.chunks[scored.best_chunk[i]]
            inside = [s for s in sentences if s in chunk] if chunk != title.strip() else []
            candidates[i] = inside or [title.strip() or chunk]
        unique = list(dict.fromkeys(s for group in candidates.values() for s in group))
        if not unique:
            return {}
        model = FAST_MODEL if scored.lang == ENGLISH else MULTILINGUAL_MODEL  # MiniLM is ~2x cheaper
        vectors = dict(zip(unique, self._encode(model, unique)))
        clause_vectors = self._vectors[model]
        return {i: max(group, key=lambda s: float(vectors[s] @ clause_vectors[i]))
                for i, group in candidates.items()}

    def _clause_match(self, i: int, score: float, evidence: str) -> ClauseMatch:
        clause = self.clauses[i]
        return ClauseMatch(clause.id, clause.title, clause.policy, round(float(score), 4), evidence)


def _normalise_lang(lang: str | None) -> str | None:
    """'en-GB' -> 'en'; empty -> None, so callers may pass what a feed declared."""
    if not lang:
        return None
    return lang.replace("_", "-").split("-")[0].lower() or None
