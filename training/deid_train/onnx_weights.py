"""Read the initializers and nodes of an ONNX file with numpy alone (no `onnx`/`protobuf` package).

The bare GPU machine has torch and numpy but not necessarily the `onnx` package, and continuing training from the
shipped `models/deid_generator.onnx` must work there. An ONNX file is one protobuf message (ModelProto); this
decodes just the fields needed to get weights back: graph.initializer (name, dims, data type, data) and
graph.node (name, op type, inputs, outputs, integer attributes). Field numbers are those of onnx/onnx.proto.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# onnx.proto field numbers
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 3, 4, 5
_ATTRIBUTE_NAME, _ATTRIBUTE_INT = 1, 3
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_FLOAT_DATA, _TENSOR_INT32_DATA = 1, 2, 4, 5
_TENSOR_INT64_DATA, _TENSOR_NAME, _TENSOR_RAW_DATA, _TENSOR_DOUBLE_DATA, _TENSOR_DATA_LOCATION = 7, 8, 9, 10, 14

# TensorProto.DataType -> numpy dtype (the types a network's weights and shape constants use)
FLOAT, FLOAT16 = 1, 10
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
           10: np.float16, 11: np.float64}


@dataclass
class Node:
    name: str
    op_type: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    ints: dict[str, int] = field(default_factory=dict)      # integer attributes (Cast's `to`, Gemm's `transB`)


@dataclass
class Graph:
    initializers: dict[str, np.ndarray]
    nodes: list[Node]


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(data: memoryview):
    """(field number, wire type, value) of one message: an int for varint/fixed fields, a memoryview for bytes."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 1:
            value, position = int.from_bytes(data[position:position + 8], "little"), position + 8
        elif wire == 2:
            length, position = _varint(data, position)
            value, position = data[position:position + length], position + length
        elif wire == 5:
            value, position = int.from_bytes(data[position:position + 4], "little"), position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {number})")
        if position > len(data):
            raise ValueError(f"truncated message (field {number})")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(value, wire: int) -> list[int]:
    """A repeated integer field: packed (one length-delimited blob) or one varint per occurrence."""
    if wire == 0:
        return [_signed64(value)]
    numbers, position = [], 0
    while position < len(value):
        number, position = _varint(value, position)
        numbers.append(_signed64(number))
    return numbers


def _tensor(data: memoryview) -> tuple[str, np.ndarray]:
    name, dims, data_type, raw = "", [], None, None
    floats, int32s, int64s, doubles = [], [], [], []
    for number, wire, value in _fields(data):
        if number == _TENSOR_NAME:
            name = bytes(value).decode()
        elif number == _TENSOR_DIMS:
            dims += _packed_varints(value, wire)
        elif number == _TENSOR_DATA_TYPE:
            data_type = value
        elif number == _TENSOR_RAW_DATA:
            raw = bytes(value)
        elif number == _TENSOR_FLOAT_DATA:
            floats.append(np.frombuffer(value, "<f4") if wire == 2 else
                          np.array([value], "<u4").view("<f4"))
        elif number == _TENSOR_DOUBLE_DATA:
            doubles.append(np.frombuffer(value, "<f8") if wire == 2 else np.array([value], "<u8").view("<f8"))
        elif number == _TENSOR_INT32_DATA:
            int32s += _packed_varints(value, wire)
        elif number == _TENSOR_INT64_DATA:
            int64s += _packed_varints(value, wire)
        elif number == _TENSOR_DATA_LOCATION and value == 1:
            raise ValueError(f"initializer {name or '?'} is stored in an external data file; expected it inside the model")
    if data_type not in _DTYPES:
        raise ValueError(f"initializer {name!r}: unsupported ONNX data type {data_type}")
    dtype = np.dtype(_DTYPES[data_type]).newbyteorder("<")
    if raw is not None:
        array = np.frombuffer(raw, dtype)
    elif data_type == FLOAT:
        array = np.concatenate(floats) if floats else np.zeros(0, np.float32)
    elif data_type == 11:
        array = np.concatenate(doubles) if doubles else np.zeros(0, np.float64)
    elif data_type == FLOAT16:      # float16 bit patterns travel in int32_data
        array = np.array(int32s, np.uint16).view(np.float16)
    elif data_type == 7:
        array = np.array(int64s, np.int64)
    else:
        array = np.array(int32s).astype(dtype)
    count = int(np.prod(dims)) if dims else 1
    if array.size != count:
        raise ValueError(f"initializer {name!r}: expected {count} values for dims {dims}, got {array.size}")
    return name, array.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def _node(data: memoryview) -> Node:
    node = Node("", "")
    for number, _, value in _fields(data):
        if number == _NODE_INPUT:
            node.inputs.append(bytes(value).decode())
        elif number == _NODE_OUTPUT:
            node.outputs.append(bytes(value).decode())
        elif number == _NODE_NAME:
            node.name = bytes(value).decode()
        elif number == _NODE_OP_TYPE:
            node.op_type = bytes(value).decode()
        elif number == _NODE_ATTRIBUTE:
            attribute_name, integer = "", None
            for attribute_number, _, attribute_value in _fields(value):
                if attribute_number == _ATTRIBUTE_NAME:
                    attribute_name = bytes(attribute_value).decode()
                elif attribute_number == _ATTRIBUTE_INT:
                    integer = _signed64(attribute_value)
            if integer is not None:
                node.ints[attribute_name] = integer
    return node


def read_graph(path: str | Path) -> Graph:
    """The main graph's initializers (numpy arrays in their stored dtype) and nodes, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    data = memoryview(path.read_bytes())
    try:
        graphs = [value for number, wire, value in _fields(data) if number == _MODEL_GRAPH and wire == 2]
        if not graphs:
            raise ValueError("no graph field")
        initializers, nodes = {}, []
        for number, wire, value in _fields(graphs[-1]):
            if number == _GRAPH_INITIALIZER and wire == 2:
                name, array = _tensor(value)
                initializers[name] = array
            elif number == _GRAPH_NODE and wire == 2:
                nodes.append(_node(value))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: expected an ONNX model (protobuf ModelProto with a graph), "
                         f"could not decode it: {error}") from None
    return Graph(initializers, nodes)
