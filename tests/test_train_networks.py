"""Generator/discriminator shape, size and ONNX export; augmentation, losses and checkpoint pieces (no shared data)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deid_train import checkpoint as checkpoints  # noqa: E402
from deid_train.augment import RobustTransform, blur, distort  # noqa: E402
from deid_train.config import PRESETS, TrainConfig  # noqa: E402
from deid_train.losses import face_weight_map, high_frequency_excess, laplacian_energy  # noqa: E402
from deid_train.networks import Discriminator, Generator, parameter_count  # noqa: E402
from deid_train.shard import load_shard, write_test_shard  # noqa: E402

torch.set_num_threads(2)


def test_generator_contract_shapes_ranges_and_size():
    torch.manual_seed(0)
    generator = Generator().eval()
    assert parameter_count(generator) <= 8_000_000
    crop = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        image, mask = generator(crop, torch.randn(2, 128) * 0.1, torch.rand(2, 1))
    assert image.shape == (2, 3, 128, 128) and mask.shape == (2, 1, 128, 128)
    assert image.abs().max() <= 1 and 0 <= mask.min() and mask.max() <= 1
    assert all(not hasattr(m, "bias") or m.bias is None for m in generator.modules() if isinstance(m, torch.nn.Conv2d))


def test_generator_output_depends_on_identity_and_strength():
    torch.manual_seed(0)
    generator = Generator().eval()
    crop = torch.rand(1, 3, 128, 128) * 2 - 1
    identity = torch.randn(1, 128) * 0.1
    with torch.no_grad():
        base = generator(crop, identity, torch.zeros(1, 1))[0]
        other_identity = generator(crop, -identity, torch.zeros(1, 1))[0]
        other_strength = generator(crop, identity, torch.ones(1, 1))[0]
    assert (base - other_identity).abs().max() > 1e-4
    assert (base - other_strength).abs().max() > 1e-4


def test_discriminator_patch_output():
    discriminator = Discriminator()
    with torch.no_grad():
        out = discriminator(torch.rand(3, 3, 128, 128) * 2 - 1)
    assert out.shape == (3, 1, 8, 8) and 0 <= out.min() and out.max() <= 1


def test_generator_onnx_export_matches_torch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    generator = Generator().eval()
    crop, identity, strength = torch.rand(2, 3, 128, 128) * 2 - 1, torch.randn(2, 128) * 0.1, torch.rand(2, 1)
    path = tmp_path / "generator.onnx"
    names = ["crop", "identity", "strength", "image", "mask"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation and instance-norm notes
        torch.onnx.export(generator, (crop, identity, strength), str(path), opset_version=17,
                          input_names=names[:3], output_names=names[3:],
                          dynamic_axes={name: {0: "N"} for name in names}, dynamo=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    crop3 = torch.rand(3, 3, 128, 128) * 2 - 1   # another batch size: N is dynamic
    identity3, strength3 = torch.randn(3, 128) * 0.1, torch.rand(3, 1)
    image_onnx, mask_onnx = session.run(None, {"crop": crop3.numpy(), "identity": identity3.numpy(),
                                               "strength": strength3.numpy()})
    with torch.no_grad():
        image, mask = generator(crop3, identity3, strength3)
    assert np.abs(image_onnx - image.numpy()).max() <= 1e-4
    assert np.abs(mask_onnx - mask.numpy()).max() <= 1e-4


def test_distort_without_distortion_is_identity_and_distortion_moves_pixels():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 128, 128)
    same = distort(images, scale=0, rotation_degrees=0, translate=0, elastic=0, elastic_grid=5)
    assert (same - images).abs().max() < 1e-4
    moved = distort(images, scale=0.08, rotation_degrees=10, translate=0.04, elastic=0.025, elastic_grid=5)
    assert (moved - images).abs().mean() > 0.05


def test_robust_transform_is_shared_and_differentiable():
    torch.manual_seed(0)
    images = (torch.rand(2, 3, 128, 128) * 2 - 1).requires_grad_(True)
    transform = RobustTransform(2, 128, "cpu", 0.03, 0.05, 5.0, 1.0, 0.03, 0.5)
    first, second = transform(images), transform(images.detach())
    assert torch.allclose(first.detach(), second, atol=1e-6)    # one draw, applied identically
    first.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_blur_keeps_constant_images_and_smooths_noise():
    constant = torch.full((2, 3, 32, 32), 0.3)
    assert torch.allclose(blur(constant, torch.tensor([0.0, 1.0])), constant, atol=1e-6)
    noise = torch.randn(1, 3, 32, 32)
    assert blur(noise, torch.tensor([1.0])).std() < 0.7 * noise.std()


def test_high_frequency_excess_penalises_added_texture_only():
    torch.manual_seed(0)
    weight = face_weight_map(128)
    source = blur(torch.rand(2, 3, 128, 128) * 2 - 1, torch.tensor([2.0, 2.0]))
    assert high_frequency_excess(source, source, weight) == 0
    assert high_frequency_excess(blur(source, torch.tensor([1.0, 1.0])), source, weight) == 0   # smoother: free
    textured = source + 0.05 * torch.randn_like(source)
    assert high_frequency_excess(textured, source, weight) > 0.5
    assert laplacian_energy(textured, weight).shape == (2,)


def test_config_presets_and_lambda_ramp():
    config = TrainConfig(**PRESETS["cpu"])
    config.validate()
    assert config.batch_size == 8 and config.max_minutes <= 120
    steps = config.lambda_ramp_steps
    lambdas = [config.lambda_at(s) for s in (steps[0], steps[1], steps[2], steps[3], steps[3] * 10)]
    assert lambdas == sorted(lambdas) and len(set(lambdas)) == 4 and lambdas[-1] == config.lambda_max
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="four lambda ramp stages"):
        TrainConfig(lambda_ramp_steps=(0, 1)).validate()


@pytest.mark.parametrize("moments, size_limit_mib, moment_tolerance",
                         [("second", 40, 1e-2), ("second8", 30, 0.1), ("none", 20, None)])
def test_compact_checkpoint_parts_are_small_and_round_trip(tmp_path, moments, size_limit_mib, moment_tolerance):
    torch.manual_seed(0)
    models = {"generator": Generator(), "discriminator": Discriminator()}
    optimizers = {name: torch.optim.Adam(model.parameters(), 1e-4, betas=(0.5, 0.99)) for name, model in models.items()}
    loss = models["generator"](torch.rand(2, 3, 128, 128), torch.zeros(2, 128), torch.ones(2, 1))[0].mean()
    loss = loss + models["discriminator"](torch.rand(2, 3, 128, 128)).mean()
    loss.backward()
    for optimizer in optimizers.values():
        optimizer.step()
    paths = checkpoints.save_compact(tmp_path, models, optimizers, {"step": 1}, checkpoints.rng_state(), moments)
    assert all(path.stat().st_size <= 15 * 2 ** 20 for path in paths)
    assert sum(path.stat().st_size for path in paths) < size_limit_mib * 2 ** 20
    meta, tensors, rng = checkpoints.load_compact(tmp_path)
    fresh = {"generator": Generator(), "discriminator": Discriminator()}
    fresh_optimizers = {name: torch.optim.Adam(model.parameters(), 1e-4, betas=(0.5, 0.99))
                        for name, model in fresh.items()}
    checkpoints.restore_compact(tensors, meta, fresh, fresh_optimizers)
    for name in models:
        for (key, original), restored in zip(models[name].state_dict().items(), fresh[name].state_dict().values()):
            assert torch.allclose(original, restored, rtol=1e-2, atol=1e-6), key   # bf16 rounding only
        for param, original_param in zip(fresh[name].parameters(), models[name].parameters()):
            if moment_tolerance is None:
                assert param not in fresh_optimizers[name].state    # Adam restarts cleanly
                continue
            if "exp_avg_sq" not in optimizers[name].state.get(original_param, {}):
                assert param not in fresh_optimizers[name].state    # no gradient yet: no state either
                continue
            restored_v = fresh_optimizers[name].state[param]["exp_avg_sq"]
            original_v = optimizers[name].state[original_param]["exp_avg_sq"]
            assert torch.allclose(restored_v, original_v, rtol=moment_tolerance, atol=1e-30)
    if len(paths) > 1:
        paths[-1].unlink()
        with pytest.raises(FileNotFoundError, match="lacks"):
            checkpoints.load_compact(tmp_path)


def test_shard_round_trip_rgb(tmp_path):
    rng = np.random.default_rng(0)
    crops = [np.full((128, 128, 3), (200, 100, 30), np.uint8) for _ in range(2)]   # BGR
    crops.append(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    write_test_shard(tmp_path, crops, quality=95)
    images = load_shard(tmp_path)
    assert images.shape == (3, 3, 128, 128) and images.dtype == torch.uint8
    assert abs(int(images[0, 0, 64, 64]) - 30) <= 3 and abs(int(images[0, 2, 64, 64]) - 200) <= 3   # RGB
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_shard(tmp_path / "missing")
