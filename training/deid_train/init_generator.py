"""Generator weights back from an exported ONNX file (`deid-train train --init-generator models/deid_generator.onnx`).

The travelling checkpoint cannot live in git, the shipped ONNX model does: a new training window can start from
it. How `deid_train.export` stores the weights, and how this maps them back to `Generator.state_dict()`:
  - each parameter is an initializer named after its state-dict key (`blocks.0.up.conv.weight`), stored as
    float16 under `<key>__float16` and turned back into `<key>` by a Cast node: Cast outputs are resolved first;
  - nn.Linear becomes MatMul with the transposed weight under a generated name (`onnx::MatMul_147`): it is found by
    the node's scope (`/encode_fc/MatMul` -> module `encode_fc`) and transposed back (Gemm: per its transB);
  - anything else is an error: a state-dict key with no tensor (missing), a weight tensor of the graph that no key
    takes (unexpected), or a shape that differs from the Generator's (mis-shaped), all listed at once.
The loaded values are the float16-rounded weights, widened to float32.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deid_train.onnx_weights import FLOAT, Graph, read_graph

# Ops whose non-first constant inputs are learned weights: every such tensor must belong to some parameter.
WEIGHT_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
MANIFEST_FILE = "manifest.json"
LIST_LIMIT = 12


def _constant_values(graph: Graph) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor known without running the graph: initializers and the float32 Casts of them.

    Returns (values by the name the graph uses, stored name for each value name, for error messages)."""
    values = dict(graph.initializers)
    stored_as = {name: name for name in values}
    for node in graph.nodes:
        if node.op_type == "Cast" and node.inputs and node.inputs[0] in values and node.ints.get("to") == FLOAT:
            values[node.outputs[0]] = values[node.inputs[0]].astype(np.float32)
            stored_as[node.outputs[0]] = stored_as[node.inputs[0]]
    return values, stored_as


def _scope(node_name: str) -> str:
    """'/blocks.0/up/conv/Conv' -> 'blocks.0.up.conv' (the exporter names nodes by module path, then op)."""
    parts = node_name.strip("/").split("/")
    return ".".join(parts[:-1])


def _linear_tensors(graph: Graph, values: dict, module_name: str) -> dict[str, tuple[str, np.ndarray]]:
    """{'weight': (graph name, array as in torch), 'bias': ...} of the nn.Linear `module_name`, from its MatMul/Gemm."""
    found: dict[str, tuple[str, np.ndarray]] = {}
    for node in graph.nodes:
        if _scope(node.name) != module_name:
            continue
        if node.op_type == "MatMul" and len(node.inputs) == 2 and node.inputs[1] in values:
            found["weight"] = (node.inputs[1], values[node.inputs[1]].T)
        elif node.op_type == "Gemm" and len(node.inputs) >= 2 and node.inputs[1] in values:
            weight = values[node.inputs[1]]
            found["weight"] = (node.inputs[1], weight if node.ints.get("transB", 0) else weight.T)
            if len(node.inputs) == 3 and node.inputs[2] in values:
                found["bias"] = (node.inputs[2], values[node.inputs[2]])
        elif node.op_type == "Add":            # MatMul + Add: the bias of an exported nn.Linear
            constants = [name for name in node.inputs if name in values]
            if len(constants) == 1:
                found["bias"] = (constants[0], values[constants[0]])
    return found


def generator_state_from_onnx(path: str | Path, generator: nn.Module) -> dict[str, torch.Tensor]:
    """float32 state dict for `generator` from the ONNX file; ValueError listing every mismatch otherwise."""
    path = Path(path)
    graph = read_graph(path)
    values, stored_as = _constant_values(graph)
    expected = generator.state_dict()
    modules = dict(generator.named_modules())
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing, misshaped = [], []
    for key, reference in expected.items():
        module_name, _, attribute = key.rpartition(".")
        linear = _linear_tensors(graph, values, module_name) if isinstance(modules.get(module_name), nn.Linear) else {}
        if key in values:
            graph_name, array = key, values[key]
        elif attribute in linear:
            graph_name, array = linear[attribute]
        else:
            missing.append(key)
            continue
        used.add(graph_name)
        if tuple(array.shape) != tuple(reference.shape):
            misshaped.append(f"{key}: expected {tuple(reference.shape)}, got {tuple(array.shape)} "
                             f"(stored as {stored_as[graph_name]})")
            continue
        if not np.issubdtype(array.dtype, np.floating):
            misshaped.append(f"{key}: expected floating-point values, got {array.dtype}")
            continue
        state[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    weight_inputs = {name for node in graph.nodes if node.op_type in WEIGHT_OPS
                     for name in node.inputs[1:] if name in values}
    unexpected = sorted(f"{name} (stored as {stored_as[name]})" if stored_as[name] != name else name
                        for name in weight_inputs - used)
    if missing or unexpected or misshaped:
        problems = [f"{label} ({len(items)}): {', '.join(items[:LIST_LIMIT])}{' ...' if len(items) > LIST_LIMIT else ''}"
                    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
                    if items]
        raise ValueError(f"{path} does not match deid_train.networks.{type(generator).__name__} "
                         f"({len(expected)} tensors expected): " + "; ".join(problems))
    return state


def load_generator_weights(generator: nn.Module, path: str | Path) -> None:
    """Copy the ONNX file's weights into `generator` in place (its device, dtype and memory format stay)."""
    state = generator_state_from_onnx(path, generator)
    generator.load_state_dict(state, strict=True)


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest_training(path: str | Path) -> dict | None:
    """The `training` record (step, lambda_max, ...) of this file in the manifest.json beside it, or None.

    The entry must describe this very file (sha256): a stale entry would restart the lambda ramp at the wrong
    step without anyone noticing, so it is an error that asks for --init-step instead."""
    path = Path(path)
    manifest_path = path.parent / MANIFEST_FILE
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    entries = [entry for entry in manifest.get("models", []) if entry.get("file") == path.name]
    if not entries:
        return None
    entry = entries[0]
    if entry.get("sha256") and entry["sha256"] != sha256_of(path):
        raise ValueError(f"{manifest_path}: the entry for {path.name} is for another file (sha256 differs), so its "
                         f"training step does not apply; pass --init-step N explicitly")
    return entry.get("training") or None
