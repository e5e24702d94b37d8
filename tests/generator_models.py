"""Tiny generator ONNX files that follow the contract (models/README.md), for testing the pipeline's geometry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _contract_graph(nodes, initializers, name):
    inputs = [
        helper.make_tensor_value_info("crop", TensorProto.FLOAT, ["N", 3, 128, 128]),
        helper.make_tensor_value_info("identity", TensorProto.FLOAT, ["N", 128]),
        helper.make_tensor_value_info("strength", TensorProto.FLOAT, ["N", 1]),
    ]
    outputs = [
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 128, 128]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, 128, 128]),
    ]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _ones_mask_nodes():
    # mask = 0 * mean(crop over channels) + 1: a full mask of the right dynamic shape.
    return [
        helper.make_node("ReduceMean", ["crop"], ["channel_mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["channel_mean", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "one"], ["mask"]),
    ], [numpy_helper.from_array(np.array(0, np.float32), "zero"), numpy_helper.from_array(np.array(1, np.float32), "one")]


def write_passthrough_generator(path: Path) -> Path:
    """image = the input crop, mask = 1: the pipeline's warp round trip must give back the frame."""
    mask_nodes, mask_inits = _ones_mask_nodes()
    model = _contract_graph([helper.make_node("Identity", ["crop"], ["image"]), *mask_nodes], mask_inits, "passthrough")
    onnx.save(model, str(path))
    return path


def write_constant_generator(path: Path, rgb=(0, 255, 0)) -> Path:
    """image = one colour everywhere, mask = 1: shows exactly where the pipeline writes."""
    mask_nodes, mask_inits = _ones_mask_nodes()
    colour = (np.array(rgb, np.float32) / 127.5 - 1).reshape(1, 3, 1, 1)
    nodes = [helper.make_node("Mul", ["crop", "zero"], ["crop_zeros"]),
             helper.make_node("Add", ["crop_zeros", "colour"], ["image"]), *mask_nodes]
    model = _contract_graph(nodes, [*mask_inits, numpy_helper.from_array(colour, "colour")], "constant")
    onnx.save(model, str(path))
    return path


def write_broken_generator(path: Path) -> Path:
    """Declares the contract's names and shapes but returns a mask of 3 channels: the Generator must reject the
    output at run time (a file that declares a wrong shape is refused when it loads)."""
    nodes = [helper.make_node("Identity", ["crop"], ["image"]), helper.make_node("Identity", ["crop"], ["mask"])]
    graph = helper.make_graph(nodes, "broken", [
        helper.make_tensor_value_info("crop", TensorProto.FLOAT, ["N", 3, 128, 128]),
        helper.make_tensor_value_info("identity", TensorProto.FLOAT, ["N", 128]),
        helper.make_tensor_value_info("strength", TensorProto.FLOAT, ["N", 1])], [
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 128, 128]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, 128, 128])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def write_identity_colour_generator(path: Path, scale: float = 4.0) -> Path:
    """image = one colour per face, clip(scale * identity[:3]) as RGB in [-1, 1]; mask = 1.

    The colour written into a face tells which identity reached the generator for it.
    """
    mask_nodes, mask_inits = _ones_mask_nodes()
    constants = [numpy_helper.from_array(np.array([0], np.int64), "starts"),
                 numpy_helper.from_array(np.array([3], np.int64), "ends"),
                 numpy_helper.from_array(np.array([1], np.int64), "axis_one"),
                 numpy_helper.from_array(np.array([2, 3], np.int64), "spatial_axes"),
                 numpy_helper.from_array(np.array(scale, np.float32), "scale"),
                 numpy_helper.from_array(np.array(-1, np.float32), "low"),
                 numpy_helper.from_array(np.array(1, np.float32), "high")]
    nodes = [helper.make_node("Slice", ["identity", "starts", "ends", "axis_one"], ["first_three"]),
             helper.make_node("Mul", ["first_three", "scale"], ["scaled"]),
             helper.make_node("Clip", ["scaled", "low", "high"], ["rgb"]),
             helper.make_node("Unsqueeze", ["rgb", "spatial_axes"], ["rgb_map"]),
             helper.make_node("Mul", ["crop", "zero"], ["crop_zeros"]),
             helper.make_node("Add", ["crop_zeros", "rgb_map"], ["image"]), *mask_nodes]
    model = _contract_graph(nodes, [*mask_inits, *constants], "identity_colour")
    onnx.save(model, str(path))
    return path


def identity_colour_bgr(identity: np.ndarray, scale: float = 4.0) -> np.ndarray:
    """The BGR pixel value write_identity_colour_generator's model writes for `identity` (mask 1, no feather)."""
    rgb = np.clip(np.asarray(identity, np.float64)[:3] * scale, -1, 1)
    return ((rgb + 1) * 127.5)[::-1]


def write_nan_generator(path: Path) -> Path:
    """Follows the contract but returns NaN images (log of -1): a model fault the Filter must catch."""
    mask_nodes, mask_inits = _ones_mask_nodes()
    nodes = [helper.make_node("Mul", ["crop", "zero"], ["crop_zeros"]),
             helper.make_node("Sub", ["crop_zeros", "one"], ["minus_one"]),
             helper.make_node("Log", ["minus_one"], ["image"]), *mask_nodes]
    model = _contract_graph(nodes, mask_inits, "nan")
    onnx.save(model, str(path))
    return path


def write_failing_generator(path: Path) -> Path:
    """Follows the contract's names and declared shapes but fails inside onnxruntime on every call (a Reshape that
    cannot divide 3x128x128 values into rows of 7): the run-time fault the Filter must turn into a fallback."""
    mask_nodes, mask_inits = _ones_mask_nodes()
    nodes = [helper.make_node("Reshape", ["crop", "rows_of_seven"], ["flat"]),
             helper.make_node("Reshape", ["flat", "crop_shape"], ["image"]), *mask_nodes]
    constants = [numpy_helper.from_array(np.array([-1, 7], np.int64), "rows_of_seven"),
                 numpy_helper.from_array(np.array([-1, 3, 128, 128], np.int64), "crop_shape")]
    model = _contract_graph(nodes, [*mask_inits, *constants], "failing")
    onnx.save(model, str(path))
    return path


def write_other_contract_generator(path: Path, size: int = 64) -> Path:
    """A valid ONNX file with the contract's tensor names but crops of another size: refused when it loads."""
    nodes = [helper.make_node("Identity", ["crop"], ["image"]),
             helper.make_node("ReduceMean", ["crop"], ["mask"], axes=[1], keepdims=1)]
    graph = helper.make_graph(nodes, "other_contract", [
        helper.make_tensor_value_info("crop", TensorProto.FLOAT, ["N", 3, size, size]),
        helper.make_tensor_value_info("identity", TensorProto.FLOAT, ["N", 128]),
        helper.make_tensor_value_info("strength", TensorProto.FLOAT, ["N", 1])], [
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, size, size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
