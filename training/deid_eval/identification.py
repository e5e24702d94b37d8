"""Identification (the paper's Table 3) and verification figures for one attacker.

Identity-level ranking: an identity's score is its best-scoring gallery photo; the rank of the true identity
is 1 + the number of other identities scoring strictly higher. A probe in which the attacker finds no face
gets the worst rank (the number of identities in the gallery).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gallery:
    embeddings: np.ndarray   # (G, D) of the photos where the attacker found a face
    labels: np.ndarray       # (G,) identity index
    image_indices: np.ndarray  # (G,) index into the face folder (to leave a probe's own photo out)

    @property
    def identity_count(self) -> int:
        return int(np.unique(self.labels).size)


def identity_rank(scores: np.ndarray, labels: np.ndarray, true_label: int, label_count: int) -> int:
    """1-based rank of `true_label` when each identity scores as its best photo; worst rank if it has none."""
    best = np.full(label_count, -np.inf)
    np.maximum.at(best, labels, scores)
    present = np.isfinite(best)
    worst = int(present.sum())
    if not present[true_label]:
        return worst
    return 1 + int((best[present] > best[true_label]).sum())


def rank_probes(attacker, probe_embeddings: list[np.ndarray | None], probe_labels: np.ndarray,
                probe_image_indices: np.ndarray, gallery: Gallery) -> np.ndarray:
    """(P,) ranks of the true identity; the probe's own original photo is left out of the gallery."""
    label_count = int(max(gallery.labels.max(initial=0), probe_labels.max(initial=0))) + 1
    worst = gallery.identity_count
    ranks = np.empty(len(probe_embeddings), dtype=np.int64)
    for row, (embedding, label, image_index) in enumerate(zip(probe_embeddings, probe_labels, probe_image_indices)):
        if embedding is None:
            ranks[row] = worst
            continue
        keep = gallery.image_indices != image_index
        scores = attacker.scores(embedding, gallery.embeddings[keep])
        ranks[row] = identity_rank(scores, gallery.labels[keep], int(label), label_count)
    return ranks


def identification_summary(ranks: np.ndarray, faces_missed: int, identity_count: int) -> dict:
    return {
        "top1": float(np.mean(ranks <= 1)),
        "top5": float(np.mean(ranks <= 5)),
        "median_rank": float(np.median(ranks)),
        "mean_rank": float(np.mean(ranks)),
        "probes": int(len(ranks)),
        "no_face": int(faces_missed),
        "gallery_identities": int(identity_count),
    }


def verification_summary(attacker, outputs: list[np.ndarray | None], inputs: list[np.ndarray | None]) -> dict:
    """How often the output still matches its own input at the attacker's threshold.

    Pairs whose input has no face (for this attacker) are left out; an output without a face is a non-match.
    """
    matched = compared = output_missed = 0
    scores = []
    for output, source in zip(outputs, inputs):
        if source is None:
            continue
        compared += 1
        if output is None:
            output_missed += 1
            continue
        score = float(attacker.scores(output, source[None])[0])
        scores.append(score)
        matched += score > attacker.threshold
    return {
        "rate": matched / compared if compared else float("nan"),
        "pairs": compared,
        "output_no_face": output_missed,
        "mean_score": float(np.mean(scores)) if scores else float("nan"),
    }
