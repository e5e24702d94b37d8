"""ONNX graph of dlib's face-recognition ResNet, built with onnx.helper from the parsed weights (no torch).

Contract (models/README.md): input `chip` [N, 3, 150, 150] float32 RGB raw pixels 0..255 (dlib's mean
subtraction and /256 are inside the graph), output `identity` [N, 128] float32 (not normalised).
Each affine is folded into its conv (`dlib_format.fold_affine`), exactly as in `deid_train.identity_net`, so
both compute with identical weights. The model build (`deid_sdk.model_build`) writes it from the installed
face-recognition-models file; the runtime only loads the result (`deid_sdk.identity`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deid_sdk.dlib_format import INPUT_SCALE, DlibResNetWeights, fold_affine, load_weights

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "chip", "identity"   # read back by deid_sdk.identity from the session


def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class _GraphBuilder:
    """Accumulates nodes and initializers while tracking each tensor's static (C, H, W)."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def constant(self, prefix: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attributes) -> str:
        from onnx import helper

        output = self.name(prefix)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x: str, shape: tuple, conv, prefix: str) -> tuple[str, tuple]:
        out_channels, _, kernel_h, kernel_w = conv.weight.shape
        padding_y, padding_x = conv.padding
        stride_y, stride_x = conv.stride
        y = self.node("Conv", [x, self.constant(f"{prefix}_w", conv.weight), self.constant(f"{prefix}_b", conv.bias)],
                      prefix, kernel_shape=[kernel_h, kernel_w], strides=[stride_y, stride_x],
                      pads=[padding_y, padding_x, padding_y, padding_x])
        return y, (out_channels, _conv_output_size(shape[1], kernel_h, stride_y, padding_y),
                   _conv_output_size(shape[2], kernel_w, stride_x, padding_x))

    def pool(self, op: str, x: str, shape: tuple, pool, prefix: str) -> tuple[str, tuple]:
        (window_y, window_x), (stride_y, stride_x), (padding_y, padding_x) = pool.window, pool.stride, pool.padding
        y = self.node(op, [x], prefix, kernel_shape=[window_y, window_x], strides=[stride_y, stride_x],
                      pads=[padding_y, padding_x, padding_y, padding_x])
        return y, (shape[0], _conv_output_size(shape[1], window_y, stride_y, padding_y),
                   _conv_output_size(shape[2], window_x, stride_x, padding_x))

    def zero_fill(self, x: str, shape: tuple, target: tuple, prefix: str) -> str:
        """Pad at the end of C, H, W up to `target` (dlib's add_prev_ on branches of different sizes)."""
        if shape == target:
            return x
        pads = np.array([0, 0, 0, 0, 0, *(t - s for t, s in zip(target, shape))], np.int64)
        return self.node("Pad", [x, self.constant(f"{prefix}_pads", pads)], prefix, mode="constant")


def build_onnx_model(weights: DlibResNetWeights):
    """An onnx.ModelProto computing dlib's descriptor from 0..255 RGB chips."""
    from onnx import TensorProto, helper

    if not isinstance(weights, DlibResNetWeights):
        raise TypeError(f"expected DlibResNetWeights, got {type(weights).__name__}")
    g = _GraphBuilder()
    height, width = weights.chip_size
    x = g.node("Sub", [INPUT_NAME, g.constant("mean", weights.input_mean.reshape(1, 3, 1, 1))], "centred")
    x = g.node("Mul", [x, g.constant("scale", np.array(INPUT_SCALE, np.float32))], "scaled")
    shape = (3, height, width)
    x, shape = g.conv(x, shape, fold_affine(weights.stem_conv, weights.stem_affine), "stem")
    x = g.node("Relu", [x], "stem_relu")
    x, shape = g.pool("MaxPool", x, shape, weights.stem_pool, "stem_pool")
    for index, block in enumerate(weights.blocks):
        prefix = f"block{index}"
        y, y_shape = g.conv(x, shape, fold_affine(block.conv1, block.affine1), f"{prefix}_conv1")
        y = g.node("Relu", [y], f"{prefix}_relu1")
        y, y_shape = g.conv(y, y_shape, fold_affine(block.conv2, block.affine2), f"{prefix}_conv2")
        shortcut, shortcut_shape = x, shape
        if block.shortcut_pool is not None:
            shortcut, shortcut_shape = g.pool("AveragePool", x, shape, block.shortcut_pool, f"{prefix}_shortcut")
        target = tuple(max(a, b) for a, b in zip(y_shape, shortcut_shape))
        y = g.zero_fill(y, y_shape, target, f"{prefix}_fill_residual")
        shortcut = g.zero_fill(shortcut, shortcut_shape, target, f"{prefix}_fill_shortcut")
        x = g.node("Relu", [g.node("Add", [y, shortcut], f"{prefix}_add")], f"{prefix}_relu")
        shape = target
    pooled = g.node("Flatten", [g.node("GlobalAveragePool", [x], "pool")], "pooled", axis=1)
    fc = g.constant("fc_w", weights.fc_weight)
    g.nodes.append(helper.make_node("MatMul", [pooled, fc], [OUTPUT_NAME], name="fc"))

    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", weights.fc_weight.shape[1]])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="deid_sdk.model_build")
    model.ir_version = 8
    model.doc_string = ("dlib_face_recognition_resnet_model_v1 (dlib), converted from the PyPI package "
                        "face-recognition-models. Input: chip N x 3 x 150 x 150 RGB 0..255. "
                        "Output: identity, dlib's 128-D face descriptor (not normalised).")
    return model


def build(source: Path, destination: Path) -> None:
    """The model-build step: dlib's .dat (or a compact .npz) -> the ONNX identity encoder."""
    from deid_sdk.model_build.onnx_edit import checked

    destination.write_bytes(checked(build_onnx_model(load_weights(source))))
