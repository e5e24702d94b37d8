"""FP16 and INT8 models: their form (float16 compute / explicit per-channel Q/DQ, float32 inputs and outputs),
their outputs against FP32 on held-out faces, `Filter(precision=...)`, and `deid calibrate` with its calibration
set that never holds an evaluation identity. The figures themselves: benchmarks/quantized_accuracy.py and
benchmarks/generator_precision.py (models/README.md)."""
from __future__ import annotations

import json
import logging
import shutil

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from deid_sdk import Filter
from deid_sdk.cli import main as deid_main
from deid_sdk.generator import Generator
from deid_sdk.identity import IdentityEncoder
from deid_sdk.model_build.calibration_set import list_sources, record_generator_inputs
from deid_sdk.model_build.compare import psnr
from deid_sdk.model_files import GENERATOR_FILES, IDENTITY_FILES, shipped_model
from tests.privacy import assert_every_face_covered

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def eval_photos(shared_data):
    """First photo of the first 12 LFW eval identities: held out from training and from calibration."""
    splits = json.loads((shared_data / "faces" / "lfw_splits.json").read_text())
    return [sorted((shared_data / "faces" / "lfw" / name).glob("*.jpg"))[0]
            for name in sorted(splits["eval_identities"])[:12]]


@pytest.fixture(scope="module")
def held_out(eval_photos):
    inputs = record_generator_inputs(((str(p), cv2.imread(str(p))) for p in eval_photos),
                                     shipped_model(GENERATOR_FILES["fp32"]))
    assert len(inputs) >= 12
    return inputs


def run(model_file: str, inputs):
    generator = Generator(shipped_model(model_file))
    images, masks = zip(*(generator(f["crop"], f["identity"], f["strength"]) for f in inputs.feeds(4)))
    return np.concatenate(images), np.concatenate(masks)


@pytest.mark.parametrize("kind", ["fp16"])
@pytest.mark.parametrize("files", [GENERATOR_FILES, IDENTITY_FILES])
def test_fp16_files_compute_in_float16_with_float32_inputs_and_outputs(files, kind):
    model = onnx.load(str(shipped_model(files[kind])))
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT, value.name
    large = [t for t in model.graph.initializer if np.prod(t.dims) >= 1024]
    assert large and all(t.data_type == TensorProto.FLOAT16 for t in large)
    assert not any(n.op_type == "Cast" and n.input[0] in {t.name for t in large} for n in model.graph.node)


def test_int8_file_has_per_channel_qdq_on_every_conv(held_out):
    model = onnx.load(str(shipped_model(GENERATOR_FILES["int8"])))
    initializers = {t.name: t for t in model.graph.initializer}
    producers = {output: node for node in model.graph.node for output in node.output}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert len(convs) == 29
    for conv in convs:
        assert producers[conv.input[0]].op_type == "DequantizeLinear"   # quantized activation
        weight = producers[conv.input[1]]                              # quantized weight, one scale per channel
        assert weight.op_type == "DequantizeLinear"
        quantized, scales = initializers[weight.input[0]], numpy_helper.to_array(initializers[weight.input[1]])
        assert quantized.data_type == TensorProto.INT8 and scales.shape == (quantized.dims[0],)
        assert not np.any(numpy_helper.to_array(initializers[weight.input[2]]))  # symmetric weights


def test_quantized_generators_stay_close_to_fp32_on_held_out_faces(held_out):
    reference_image, reference_mask = run(GENERATOR_FILES["fp32"], held_out)
    for precision, floor in (("fp16", 40.0), ("int8", 24.0)):  # measured on 124 faces: fp16 exact on CPU, int8 27.0
        image, mask = run(GENERATOR_FILES[precision], held_out)
        assert psnr(reference_image, image, 2.0) > floor and psnr(reference_mask, mask, 1.0) > floor - 2, precision


def test_fp16_identity_encoder_matches_fp32_on_held_out_faces(held_out):
    crops = np.stack([np.clip(np.rint((c.transpose(1, 2, 0) + 1) * 127.5), 0, 255).astype(np.uint8)[..., ::-1]
                      for c in held_out.crops])
    fp32, fp16 = (IdentityEncoder(shipped_model(IDENTITY_FILES[p])).encode_crops(crops) for p in ("fp32", "fp16"))
    assert np.abs(fp32 - fp16).max() < 5e-3  # dlib's same-person distance is 0.6; measured 3.6e-4


@pytest.mark.parametrize("precision", ["int8", "fastest", "fp16"])
def test_filter_precision_selects_the_file_covers_every_face_and_logs_once(eval_photos, precision, caplog):
    frame = cv2.imread(str(eval_photos[0]))
    with caplog.at_level(logging.INFO, logger="deid_sdk"):
        for _ in range(2):
            # privacy="off": this checks which file runs; the guard would (rightly) escalate a leaking output
            with Filter(precision=precision, tracking=False, privacy="off") as face_filter:
                output = face_filter(frame)
    expected = GENERATOR_FILES["fp32" if precision == "fastest" else precision]  # int8 leaks more: not fastest
    assert face_filter.generator is None  # closed; the file it used is in the log line
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"precision {precision}")]
    assert len(lines) == 1 and lines[0].endswith(expected), lines
    assert all(face.status == "deidentified" for face in face_filter.faces)
    assert_every_face_covered(frame, output, face_filter.faces)
    leak_warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "leaks more" in r.getMessage()]
    assert len(leak_warnings) == (2 if precision == "int8" else 0)  # the manifest marks the INT8 file


def test_precision_with_an_explicit_model_is_refused_before_loading(tmp_path):
    with pytest.raises(ValueError, match="precision='int8' chooses one of the bundled generator files"):
        Filter(model=tmp_path / "missing.onnx", precision="int8")


def test_calibration_sources_never_hold_an_eval_identity(shared_data):
    splits = json.loads((shared_data / "faces" / "lfw_splits.json").read_text())
    evaluation = set(splits["eval_identities"])
    images, _ = list_sources(shared_data / "faces" / "lfw", images=100_000)
    people = {path.parent.name for path in images}
    assert len(people) > 5000 and not people & evaluation
    one_eval_person = shared_data / "faces" / "lfw" / sorted(evaluation)[0]
    with pytest.raises(ValueError, match="no images"):
        list_sources(one_eval_person, images=10)


def test_deid_calibrate_writes_a_qdq_generator_that_runs(shared_data, tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    for path in sorted((shared_data / "faces" / "utkface").glob("*.jpg"))[:4]:
        shutil.copy(path, folder / path.name)
    out = tmp_path / "g.int8.onnx"
    kept_float = ["/image_out/Conv", "/mask_out/Conv"]
    assert deid_main(["calibrate", "--images", str(folder), "--out", str(out), "--count", "4",
                      "--activations", "int8", "--exclude", ",".join(kept_float)]) == 0
    assert "calibration faces" in capsys.readouterr().out
    model = onnx.load(str(out))
    producers = {output: node.op_type for node in model.graph.node for output in node.output}
    convs = {node.name: node for node in model.graph.node if node.op_type == "Conv"}
    assert len(convs) == 29
    for name, conv in convs.items():  # TensorRT's form: Q/DQ on both inputs of each quantized conv, none on the rest
        fed_by = [producers.get(tensor) for tensor in conv.input[:2]]  # None: a float initializer
        if name in kept_float:
            assert fed_by[0] != "DequantizeLinear" and fed_by[1] is None, (name, fed_by)
        else:
            assert fed_by == ["DequantizeLinear"] * 2, (name, fed_by)
    quantize_inputs = {node.input[0] for node in model.graph.node if node.op_type == "QuantizeLinear"}
    assert len(quantize_inputs) >= 27
    zero_points = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.INT8
                   and t.name.endswith("zero_point")]
    assert zero_points and not any(np.any(z) for z in zero_points)  # int8 symmetric: TensorRT's form
    assert not any(t.data_type == TensorProto.UINT8 for t in model.graph.initializer)
    image, mask = Generator(out)(np.zeros((1, 3, 128, 128), np.float32), np.zeros((1, 128), np.float32),
                                 np.ones((1, 1), np.float32))
    assert image.shape == (1, 3, 128, 128) and np.isfinite(mask).all()


def test_deid_calibrate_refuses_an_unknown_layer_name_before_calibrating(tmp_path, capsys):
    (tmp_path / "faces").mkdir()
    assert deid_main(["calibrate", "--images", str(tmp_path / "faces"), "--out", str(tmp_path / "x.onnx"),
                      "--exclude", "/image_out/Conv,/no/such/Conv"]) == 1
    error = capsys.readouterr().err
    assert "'/no/such/Conv'" in error and "/mask_out/Conv" in error and not (tmp_path / "x.onnx").exists()


def test_deid_calibrate_reports_a_folder_without_faces(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert deid_main(["calibrate", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "x.onnx")]) == 1
    assert "no images" in capsys.readouterr().err


def test_int8_sensitivity_probe_scores_a_copy_as_a_full_leak_and_a_constant_face_as_none(held_out, tmp_path):
    from deid_sdk.model_build.int8_sensitivity import LeakProbe
    from tests.generator_models import write_constant_generator, write_passthrough_generator

    probe = LeakProbe(write_passthrough_generator(tmp_path / "copy.onnx"), held_out, faces=12)
    assert len(probe) == 12
    assert probe.reference.leak > 0.99 and probe.reference.image_psnr == float("inf")
    constant = probe.score(write_constant_generator(tmp_path / "constant.onnx"))
    assert constant.leak < 0.3 and constant.image_psnr < 20
