"""Attacker thresholds at a target false-accept rate, from different-person pairs of clean LFW photos."""
from __future__ import annotations

import numpy as np


def threshold_at_far(attacker, embeddings: np.ndarray, labels: np.ndarray, far: float = 1e-3,
                     pair_count: int = 8_000_000, seed: int = 0, chunk: int = 500_000) -> dict:
    """Score above which only `far` of random different-person pairs fall, and the same-person accept rate."""
    if len(embeddings) < 2:
        raise ValueError(f"need at least 2 embeddings to calibrate, got {len(embeddings)}")
    rng = np.random.default_rng(seed)
    negatives = []
    remaining = pair_count
    while remaining > 0:
        size = min(chunk, remaining)
        first, second = rng.integers(0, len(embeddings), size), rng.integers(0, len(embeddings), size)
        different = labels[first] != labels[second]
        first, second = first[different], second[different]
        negatives.append(_pair_scores(attacker, embeddings[first], embeddings[second]))
        remaining -= len(first)
    negative_scores = np.concatenate(negatives)[:pair_count]
    threshold = float(np.quantile(negative_scores, 1.0 - far))
    positive_scores = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) >= 2:
            first, second = np.triu_indices(len(members), 1)
            positive_scores.append(_pair_scores(attacker, embeddings[members[first]], embeddings[members[second]]))
    positives = np.concatenate(positive_scores) if positive_scores else np.empty(0)
    return {
        "threshold": threshold,
        "far": far,
        "negative_pairs": int(len(negative_scores)),
        "positive_pairs": int(len(positives)),
        "true_accept_rate": float(np.mean(positives > threshold)) if len(positives) else float("nan"),
    }


def _pair_scores(attacker, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    if attacker.name == "dlib":
        return -np.linalg.norm(first - second, axis=1)
    return np.einsum("ij,ij->i", first, second)
