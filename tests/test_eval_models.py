"""The SFace file deid_eval and the privacy guard load (prepared by the model build), and the five-point alignment."""
import numpy as np
import onnx
import onnxruntime
import pytest

from deid_sdk.align import ARCFACE_TEMPLATE, align_five_points
from deid_sdk.model_build import ENTRIES, _prepare_quantized
from deid_sdk.model_build.onnx_edit import dequantize_blocked
from deid_sdk.model_files import shipped_model


def _session(model_bytes):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def test_prepared_sface_gives_the_outputs_of_the_original_graph(tmp_path):
    (entry,) = [e for e in ENTRIES if e.file == "sface.onnx"]
    original = entry.source.resolve(tmp_path).read_bytes()
    folded_path = tmp_path / "sface_float32.onnx"
    _prepare_quantized(entry.source.resolve(tmp_path), folded_path)
    folded, shipped = _session(folded_path.read_bytes()), _session(shipped_model("sface.onnx").read_bytes())
    # The reference: the original graph with only the unused inputs removed (what onnxruntime needs to load it).
    model = onnx.load_from_string(original)
    initializers = {tensor.name for tensor in model.graph.initializer}
    used = {name for node in model.graph.node for name in node.input}
    inputs = [value for value in model.graph.input if value.name in used and value.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    reference = _session(model.SerializeToString())
    assert not any(node.op_type == "DequantizeLinear" for node in onnx.load(str(folded_path)).graph.node)
    face = np.random.default_rng(0).uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)
    expected = reference.run(None, {"data": face})[0]
    assert np.abs(folded.run(None, {"data": face})[0] - expected).max() < 1e-4 * np.abs(expected).max()
    # The shipped file stores those weights as float16: the embedding's direction is kept (the decisive figure,
    # over real LFW pairs, is benchmarks/sface_precision.py's; see models/README.md).
    half = shipped.run(None, {"data": face})[0][0]
    cosine = float(half @ expected[0] / np.linalg.norm(half) / np.linalg.norm(expected[0]))
    assert cosine > 1 - 1e-4


def test_blocked_dequantization_repeats_each_scale_over_its_block():
    quantized = np.arange(12, dtype=np.int8).reshape(2, 6)
    scales = np.array([[1.0, 10.0], [2.0, 20.0]], dtype=np.float32)
    zero_points = np.array([[0, 1], [0, 1]], dtype=np.int8)
    result = dequantize_blocked(quantized, scales, zero_points, axis=1, block_size=4)
    assert np.allclose(result, [[0, 1, 2, 3, 30, 40], [12, 14, 16, 18, 180, 200]])


def test_alignment_puts_the_five_points_on_the_template():
    # Channel 0 holds each pixel's x, channel 1 its y: the aligned crop shows where each pixel came from.
    ys, xs = np.mgrid[0:250, 0:250]
    image = np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    points = ARCFACE_TEMPLATE * 2 + [10, 5]   # a face twice the template's size, shifted
    aligned = align_five_points(image, points)
    assert aligned.shape == (112, 112, 3)
    for u, v in [(20, 30), (56, 71), (100, 90)]:
        assert aligned[v, u, 0] == pytest.approx(2 * u + 10, abs=1)
        assert aligned[v, u, 1] == pytest.approx(2 * v + 5, abs=1)
    with pytest.raises(ValueError, match="5x2"):
        align_five_points(image, points[:4])
