"""deid-train export: the full-size generator to ONNX (float16 weights, float32 compute), checked in onnxruntime."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from deid_train import export  # noqa: E402
from deid_train.networks import Generator  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    generator = Generator().eval()
    folder = tmp_path_factory.mktemp("models")
    entry = export.export_generator(generator, folder, {"step": 123, "lambda": 0.05})
    return generator, folder, entry


def test_export_follows_the_contract(exported):
    _, folder, _ = exported
    model = onnx.load(str(folder / export.GENERATOR_FILE))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["crop", "identity", "strength"]
    assert [o.name for o in model.graph.output] == ["image", "mask"]
    for tensor in list(model.graph.input) + list(model.graph.output):
        assert tensor.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert tensor.type.tensor_type.shape.dim[0].dim_param == "N"
    assert any(op.domain in ("", "ai.onnx") and op.version == export.OPSET for op in model.opset_import)


def test_weights_are_float16_with_a_cast_each(exported):
    _, folder, _ = exported
    model = onnx.load(str(folder / export.GENERATOR_FILE))
    large = [t for t in model.graph.initializer if int(np.prod(t.dims)) >= export.MIN_FLOAT16_ELEMENTS]
    assert large and all(t.data_type == onnx.TensorProto.FLOAT16 for t in large)
    cast_inputs = {node.input[0] for node in model.graph.node if node.op_type == "Cast"}
    assert {t.name for t in large} <= cast_inputs


def onnxruntime_run(path, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """The exported file in onnxruntime, run here (not through the export module)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image, mask = session.run(["image", "mask"], inputs)
    return image, mask


def test_full_size_generator_fits_16_mib_and_matches_torch(exported):
    import copy

    generator, folder, entry = exported
    size = (folder / export.GENERATOR_FILE).stat().st_size
    assert size <= 16 * 2 ** 20
    assert entry["bytes"] == size
    rng = np.random.default_rng(7)
    inputs = {"crop": rng.uniform(-1, 1, (3, 3, 128, 128)).astype(np.float32),
              "identity": rng.normal(0, 0.12, (3, 128)).astype(np.float32),
              "strength": np.array([[0.0], [0.5], [1.0]], np.float32)}
    runtime = onnxruntime_run(folder / export.GENERATOR_FILE, inputs)
    rounded = copy.deepcopy(generator)
    with torch.no_grad():
        for parameter in rounded.parameters():
            parameter.copy_(parameter.half().float())
        tensors = [torch.from_numpy(inputs[name]) for name in ("crop", "identity", "strength")]
        full_precision = [t.numpy() for t in generator(*tensors)]
        same_weights = [t.numpy() for t in rounded(*tensors)]
    for ours, reference in zip(runtime, same_weights):  # the same float16-rounded weights: only the runtime differs
        assert np.abs(ours - reference).max() < 1e-4
    for ours, reference in zip(runtime, full_precision):  # float32 weights: the rounding's effect stays small
        assert np.abs(ours - reference).max() < 2e-2


def test_dynamic_batch_in_onnxruntime(exported):
    generator, folder, _ = exported
    rng = np.random.default_rng(1)
    for count in (1, 5):
        inputs = {"crop": rng.uniform(-1, 1, (count, 3, 128, 128)).astype(np.float32),
                  "identity": rng.normal(0, 0.12, (count, 128)).astype(np.float32),
                  "strength": rng.uniform(0, 1, (count, 1)).astype(np.float32)}
        image, mask = export.onnxruntime_outputs(folder / export.GENERATOR_FILE, inputs)
        assert image.shape == (count, 3, 128, 128) and mask.shape == (count, 1, 128, 128)
        assert image.dtype == np.float32 and -1 <= image.min() and image.max() <= 1
        assert 0 <= mask.min() and mask.max() <= 1


def test_manifest_entry_matches_the_file_and_keeps_other_entries(exported, tmp_path):
    _, folder, entry = exported
    manifest = json.loads((folder / export.MANIFEST_FILE).read_text())
    (stored,) = [m for m in manifest["models"] if m["file"] == export.GENERATOR_FILE]
    assert stored["sha256"] == hashlib.sha256((folder / export.GENERATOR_FILE).read_bytes()).hexdigest()
    assert stored["contract"] == 1 and stored["crop"]["size"] == 128 and stored["crop"]["padding"] == 0.45
    assert stored["training"]["step"] == 123 and stored["model_card"] == export.MODEL_CARD_FILE

    other = {"file": "dlib_resnet.onnx", "sha256": "0" * 64}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"contract": 1, "models": [other, {"file": export.GENERATOR_FILE, "sha256": "old"}]}))
    updated = export.update_manifest(path, entry)
    assert updated["models"][0] == other
    assert [m["sha256"] for m in updated["models"] if m["file"] == export.GENERATOR_FILE] == [entry["sha256"]]


def test_model_card_states_data_and_non_commercial_terms(exported):
    _, folder, entry = exported
    card = (folder / export.MODEL_CARD_FILE).read_text()
    for phrase in ("non-commercial", "UTKFace", "LFW", "300-W", "eval identities were never used", entry["sha256"]):
        assert phrase in card


def test_sdk_loads_the_export_and_checks_its_checksum(exported):
    from deid_sdk.generator import Generator as RuntimeGenerator

    _, folder, _ = exported
    runtime = RuntimeGenerator(folder / export.GENERATOR_FILE)
    image, mask = runtime(np.zeros((2, 3, 128, 128), np.float32), np.zeros((2, 128), np.float32),
                          np.ones((2, 1), np.float32))
    assert image.shape == (2, 3, 128, 128) and mask.shape == (2, 1, 128, 128)


def test_load_generator_reads_the_trainers_full_and_compact_checkpoints(tmp_path):
    from deid_train import checkpoint as checkpoints
    from deid_train.networks import Discriminator

    torch.manual_seed(3)
    generator, discriminator = Generator(), Discriminator()
    models = {"generator": generator, "discriminator": discriminator}
    optimizers = {name: torch.optim.Adam(model.parameters()) for name, model in models.items()}
    meta = {"step": 7, "lambda": 0.01, "lambda_stage": 0, "config": {"preset": "test"}}
    checkpoints.save_full(tmp_path / "run" / checkpoints.FULL_NAME,
                          {**meta, "models": {k: m.state_dict() for k, m in models.items()}})
    checkpoints.save_compact(tmp_path / "run" / "compact", models, optimizers, meta, checkpoints.rng_state())

    full, full_meta = export.load_generator(tmp_path / "run")          # the run folder: its full checkpoint
    compact, compact_meta = export.load_generator(tmp_path / "run" / "compact")
    assert full_meta["step"] == compact_meta["step"] == 7 and full_meta["config"] == {"preset": "test"}
    for key, value in generator.state_dict().items():
        torch.testing.assert_close(full.state_dict()[key], value)
        # bf16 storage keeps 8 mantissa bits: relative error below 2^-8.
        torch.testing.assert_close(compact.state_dict()[key], value, rtol=2 ** -8, atol=1e-6)
        assert compact.state_dict()[key].dtype == torch.float32


def test_load_generator_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        export.load_generator(tmp_path / "nothing.pt")


def test_refresh_card_adds_figures_without_touching_the_model(exported, tmp_path):
    import shutil

    _, folder, entry = exported
    copy = tmp_path / "models"
    shutil.copytree(folder, copy)
    figures = {"table": [{"measure": "dlib verifies output as input (d < 0.6)", "input": "100%", "output": "3.0%",
                          "target": "<= 5%"}], "command": "python -m deid_train.quick_eval", "faces": [{"x": 1}]}
    refreshed = export.refresh_card(copy, figures)
    assert refreshed["sha256"] == entry["sha256"] and "faces" not in refreshed["figures"]
    card = (copy / export.MODEL_CARD_FILE).read_text()
    assert "| dlib verifies output as input (d < 0.6) | 100% | 3.0% | <= 5% |" in card
    (copy / export.GENERATOR_FILE).write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="sha256"):
        export.refresh_card(copy, figures)


def test_cli_export_of_a_run_folder_puts_its_training_windows_in_the_card(tmp_path):
    from deid_train import checkpoint as checkpoints
    from deid_train.cli import main

    torch.manual_seed(5)
    run = tmp_path / "run"
    checkpoints.save_full(run / checkpoints.FULL_NAME, {"step": 40, "lambda": 0.02, "lambda_stage": 1,
                                                        "config": {"batch_size": 64, "lambda_max": 0.1},
                                                        "models": {"generator": Generator().state_dict()}})
    (run / "summary.json").write_text(json.dumps({"device_name": "NVIDIA H200", "first_step": 0, "last_step": 40,
                                                  "it_per_s": 21.5, "final_losses": {"mask_mean": 0.61}}))
    assert main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "models")]) == 0
    manifest = json.loads((tmp_path / "models" / export.MANIFEST_FILE).read_text())
    (entry,) = manifest["models"]
    assert entry["training"]["step"] == 40
    assert entry["training"]["windows"] == [{"device_name": "NVIDIA H200", "first_step": 0, "last_step": 40,
                                             "it_per_s": 21.5, "final_mask_mean": 0.61}]
    card = (tmp_path / "models" / export.MODEL_CARD_FILE).read_text()
    assert "| NVIDIA H200 | 0 | 40 | 21.5 | 0.61 |" in card and "lambda_max 0.1" in card
