"""deid_train.quick_eval: the figures of issue 5 point 9 on an exported (random) generator, and its measures."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deid_train import quick_eval  # noqa: E402


def test_laplacian_energy_grows_with_texture_and_ignores_outside_the_region():
    rng = np.random.default_rng(0)
    flat = np.full((128, 128, 3), 120, np.uint8)
    noisy = np.clip(flat + rng.normal(0, 20, flat.shape), 0, 255).astype(np.uint8)
    region = quick_eval.hull_region(np.array([[40, 40], [90, 40], [90, 90], [40, 90]], float), 128)
    assert quick_eval.laplacian_energy(flat, region) == 0
    assert quick_eval.laplacian_energy(noisy, region) > 100
    outside_only = flat.copy()
    outside_only[:20] = noisy[:20]
    assert quick_eval.laplacian_energy(outside_only, region) == 0


def test_hull_region_covers_the_hull():
    region = quick_eval.hull_region(np.array([[10, 10], [50, 10], [30, 40]], float), 64)
    assert region[20, 30] and not region[50, 5]


@pytest.mark.shared_data
def test_eval_pairs_are_eval_identities_with_two_photos(shared_data):
    pairs = quick_eval.eval_pairs(shared_data)
    splits = json.loads((shared_data / "faces" / "lfw_splits.json").read_text())
    assert len(pairs) == 300
    assert {identity for identity, _, _ in pairs} <= set(splits["eval_identities"])
    assert all(probe != gallery and probe.parent.name == gallery.parent.name == identity
               for identity, probe, gallery in pairs)


@pytest.mark.slow
@pytest.mark.shared_data
def test_quick_eval_runs_the_sdk_and_reports_every_figure(shared_data, tmp_path):
    from deid_train.export import export_generator
    from deid_train.networks import Generator

    torch.manual_seed(0)
    export_generator(Generator().eval(), tmp_path / "models")
    report = quick_eval.evaluate(tmp_path / "models" / "deid_generator.onnx", strength=1.0, limit=4,
                                 out=tmp_path / "eval", data_root=shared_data, sheet=4, show_progress=False)
    for key in ("dlib_verified", "sface_top1", "sface_verified", "mobilefacenet_top1", "mobilefacenet_verified",
                "detection_rate", "deidentified"):
        assert 0.0 <= report[key] <= 1.0, key
    assert report["identities"] == 4 and report["deidentified"] == 1.0
    # Clean probes against their own second photo: the independent attackers know these people.
    assert report["sface_input_top1"] >= 0.75
    assert np.isfinite(report["landmark_error"]) and report["landmark_error"] >= 0
    assert report["artifact_ratio"] > 0
    sheet = cv2.imread(str(tmp_path / "eval" / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 128
    stored = json.loads((tmp_path / "eval" / "quick_eval.json").read_text())
    assert len(stored["faces"]) == 4 and stored["table"]
