"""Scoring primitives shared by matching, search and alerts: one implementation of each, named for its variant.

Signals from different models and BM25 live on different scales; everything fuses them as
z-scores. Which z-score depends on what a missing value means, so each variant says it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def zscore(values: np.ndarray) -> np.ndarray:
    """Standardise values that are all present; a flat signal becomes all zeros."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std() if len(values) else 0.0
    return (values - values.mean()) / spread if spread > 1e-12 else np.zeros_like(values)


def zscore_fill_lowest(values: np.ndarray) -> np.ndarray:
    """Standardise; a missing value (NaN) counts as the lowest value seen (search: no signal = no evidence)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros_like(values)
    return zscore(np.where(finite, values, values[finite].min()))


def zscore_keep_missing(values: np.ndarray) -> np.ndarray:
    """Standardise the present values; missing ones stay NaN (alerts: a signal a development lacks does not count)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(len(values), np.nan)
    present = np.isfinite(values)
    if present.sum() > 1:
        out[present] = zscore(values[present])
    return out


def fuse_present(signals: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of the z-scores each row has; a row with none gets -inf."""
    total = sum(weights[k] * np.nan_to_num(v) for k, v in signals.items())
    present = sum(weights[k] * np.isfinite(v) for k, v in signals.items())
    return np.where(present > 0, total / np.maximum(present, 1e-12), -math.inf)


def logistic(z: np.ndarray | float, centre: float, scale: float) -> np.ndarray | float:
    """Map a fused z-score to (0, 1), 0.5 at `centre`; -inf maps to 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-(np.asarray(z, dtype=np.float64) - centre) / scale))


def hubness(vectors: np.ndarray, neighbours: int = 10) -> np.ndarray:
    """Each row's mean cosine to its nearest other rows: how generic a clause is (subtracted from cosines)."""
    if len(vectors) < 2:
        return np.zeros(len(vectors))
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    k = max(1, min(neighbours, len(vectors) - 1))
    return np.sort(sims, axis=1)[:, -k:].mean(axis=1)


def mean_unit_vectors(rows: Iterable[tuple[int, bytes]]) -> dict[int, np.ndarray]:
    """One unit vector per key from (key, float32 blob) rows: the normalised mean, e.g. of a development's chunks."""
    groups: dict[int, list[np.ndarray]] = {}
    for key, blob in rows:
        groups.setdefault(key, []).append(np.frombuffer(blob, dtype="<f4"))
    return {key: unit(np.mean(np.stack(parts), axis=0)) for key, parts in groups.items()}


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
