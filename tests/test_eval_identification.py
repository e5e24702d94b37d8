"""Ranking, verification and threshold calibration of deid_eval on small synthetic embeddings."""
import numpy as np
import pytest

from deid_eval.calibration import threshold_at_far
from deid_eval.identification import (Gallery, identification_summary, identity_rank, rank_probes,
                                      verification_summary)


class CosineStub:
    name = "sface"
    threshold = 0.5

    @staticmethod
    def scores(probe, gallery):
        return np.asarray(gallery) @ np.asarray(probe).reshape(-1)


def test_identity_rank_uses_each_identitys_best_photo():
    scores = np.array([0.9, 0.1, 0.8, 0.85, 0.2])
    labels = np.array([0, 1, 1, 2, 3])
    assert identity_rank(scores, labels, 0, 4) == 1
    # identity 1's best photo (0.8) is beaten by identities 0 and 2 only.
    assert identity_rank(scores, labels, 1, 4) == 3
    assert identity_rank(scores, labels, 3, 4) == 4


def test_identity_rank_of_an_identity_absent_from_the_gallery_is_the_worst():
    assert identity_rank(np.array([0.3, 0.2]), np.array([0, 1]), 5, 6) == 2


def test_rank_probes_leaves_out_the_probes_own_photo_and_ranks_missing_faces_last():
    basis = np.eye(3, dtype=np.float32)
    gallery = Gallery(embeddings=np.stack([basis[0], basis[0], basis[1], basis[2]]),
                      labels=np.array([0, 0, 1, 2]), image_indices=np.array([10, 11, 12, 13]))
    # Probe 0 is photo 10 itself; its other photo (11) still ranks identity 0 first.
    ranks = rank_probes(CosineStub(), [basis[0], None, basis[2] * 0.1 + basis[1]], np.array([0, 1, 2]),
                        np.array([10, 12, 13]), gallery)
    assert ranks.tolist() == [1, 3, 2]
    summary = identification_summary(ranks, faces_missed=1, identity_count=3)
    assert summary["top1"] == pytest.approx(1 / 3)
    assert summary["top5"] == 1.0
    assert summary["median_rank"] == 2
    assert summary["no_face"] == 1


def test_verification_counts_an_output_without_face_as_no_match_and_skips_inputs_without_face():
    basis = np.eye(2, dtype=np.float32)
    result = verification_summary(CosineStub(), [basis[0], basis[1], None, basis[0]],
                                  [basis[0], basis[0], basis[0], None])
    assert result["pairs"] == 3
    assert result["rate"] == pytest.approx(1 / 3)
    assert result["output_no_face"] == 1


def test_threshold_at_far_matches_the_quantile_of_different_person_scores():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(400, 16)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.repeat(np.arange(200), 2)
    result = threshold_at_far(CosineStub(), embeddings, labels, far=0.01, pair_count=50_000)
    first, second = np.triu_indices(400, 1)
    different = labels[first] != labels[second]
    exhaustive = np.einsum("ij,ij->i", embeddings[first[different]], embeddings[second[different]])
    assert np.mean(exhaustive > result["threshold"]) == pytest.approx(0.01, abs=0.003)
    assert result["positive_pairs"] == 200
