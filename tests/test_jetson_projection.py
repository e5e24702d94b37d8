"""benchmarks/jetson_projection.py counts operations and bytes right: against hand-counted small graphs, and
on the shipped files, where the generator's work grows with the faces and its weights do not."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from deid_sdk.model_files import shipped_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "jetson_projection.py"
spec = importlib.util.spec_from_file_location("jetson_projection", SCRIPT)
projection = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = projection  # dataclasses look their module up
spec.loader.exec_module(projection)


def small_model(path: Path) -> Path:
    """Conv 3->8 (3x3, pad 1) + Relu + ConvTranspose 8->4 (2x2, stride 2) on a dynamic-batch 3x16x16 input."""
    conv = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "conv_w")
    deconv = numpy_helper.from_array(np.zeros((8, 4, 2, 2), np.float32), "deconv_w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "conv_w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("ConvTranspose", ["r", "deconv_w"], ["y"], strides=[2, 2])],
        "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [conv, deconv])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_counts_match_a_hand_count(tmp_path):
    cost = projection.model_cost(small_model(tmp_path / "small.onnx"), {"x": (2, 3, 16, 16)})
    conv_macs = 2 * 8 * 16 * 16 * 3 * 3 * 3        # batch, out channels, out pixels, in channels x kernel
    deconv_macs = 2 * 16 * 16 * 8 * 4 * 2 * 2      # batch, in pixels, in x out channels x kernel
    assert cost.operations == 2 * (conv_macs + deconv_macs)
    assert cost.weights == 8 * 3 * 3 * 3 + 8 * 4 * 2 * 2
    assert cost.activation_elements == 2 * 8 * 16 * 16 + 2 * 4 * 32 * 32   # the Relu is fused into the Conv
    assert cost.bytes("int8") == cost.weights + 2 * cost.activation_elements
    assert cost.bytes("fp16") == 2 * cost.bytes("int8")


def test_generator_work_scales_with_faces_and_weights_do_not():
    shapes = lambda n: {"crop": (n, 3, 128, 128), "identity": (n, 128), "strength": (n, 1)}  # noqa: E731
    one, four = (projection.model_cost(shipped_model("deid_generator.onnx"), shapes(n)) for n in (1, 4))
    assert four.operations == 4 * one.operations and four.activation_elements == 4 * one.activation_elements
    assert one.weights == four.weights
    assert 0.9 < one.weights / 6_624_000 <= 1.0  # the manifest's parameter count (biases and norms not counted)


def test_detector_input_is_padded_like_the_detector():
    assert projection.detector_input(1920) == (1088, 1920)
    assert projection.detector_input(640) == (384, 640)


def test_script_prints_both_boards_and_refuses_a_bad_factor():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Orin Nano 8GB" in result.stdout and "AGX Orin 64GB" in result.stdout
    bad = subprocess.run([sys.executable, str(SCRIPT), "--compute-utilisation", "1.5"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "got 1.5" in bad.stderr
