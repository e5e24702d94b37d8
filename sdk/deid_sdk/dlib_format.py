"""Reader of dlib's serialized face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`).

NumPy only: no dlib and no torch. The file holds the network outermost layer first: the loss header, then
one header per nested layer (add_layer version 2, tag/skip version 1, the innermost add_layer version 3),
then the input layer, then each computational layer's details innermost first, each followed by its
add_layer bookkeeping (three ASCII bools and three empty tensors). Primitive encodings:

- integer: a control byte (bit 0x80 = negative, low 4 bits = number of bytes), then the magnitude little-endian;
- float: an integer mantissa and an integer exponent (value = mantissa * 2**exponent);
- string: integer length, then the bytes; bool: ASCII '0' or '1';
- tensor: version 2, n, k, nr, nc, then n*k*nr*nc little-endian float32.

The result is a `DlibResNetWeights`: the input means, the stem (conv 7x7/2 + affine + max pool 3x3/2), 14
residual blocks (down blocks have a 2x2/2 average-pool shortcut) and the 256->128 fc matrix, all float32.
`DlibResNetWeights.tensors()` flattens it to named arrays; `save_compact` / `load_weights` store those in a
small `.npz` (float16 by default, ~11 MB) for machines without face-recognition-models:

    python -m deid_sdk.dlib_format --compact dlib_resnet_f16.npz
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODEL_FILE_NAME = "dlib_face_recognition_resnet_model_v1.dat"
# dlib's input layer divides the mean-subtracted pixel by 256 (not stored in the file).
INPUT_SCALE = 1.0 / 256.0


def default_model_path() -> Path:
    """The .dat file of the installed PyPI package face-recognition-models."""
    from deid_sdk.model_files import face_recognition_models_file

    return face_recognition_models_file(MODEL_FILE_NAME)


@dataclass
class Conv:
    weight: np.ndarray        # (out, in, kh, kw)
    bias: np.ndarray          # (out,)
    stride: tuple[int, int]   # (y, x)
    padding: tuple[int, int]  # (y, x), zero padding on both sides


@dataclass
class Affine:
    """Per-channel y = gamma * x + beta (dlib's affine_ layer in conv mode, a frozen batch norm)."""
    gamma: np.ndarray  # (channels,)
    beta: np.ndarray   # (channels,)


@dataclass
class Pool:
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass
class ResidualBlock:
    """relu(conv2-affine2(relu(conv1-affine1(x))) + shortcut(x)).

    The shortcut is x itself, or for a down block a 2x2/2 average pool of x; where the two branches differ in
    channels or size, the smaller one is zero-filled at the end (dlib's add_prev_).
    """
    conv1: Conv
    affine1: Affine
    conv2: Conv
    affine2: Affine
    shortcut_pool: Pool | None = None

    @property
    def is_down(self) -> bool:
        return self.shortcut_pool is not None


@dataclass
class DlibResNetWeights:
    input_mean: np.ndarray   # (3,) RGB means subtracted from 0..255 pixels
    chip_size: tuple[int, int]
    stem_conv: Conv
    stem_affine: Affine
    stem_pool: Pool
    blocks: list[ResidualBlock] = field(default_factory=list)
    fc_weight: np.ndarray = None  # (256, 128): identity = pooled @ fc_weight

    def num_parameters(self) -> int:
        return sum(int(a.size) for name, a in self.tensors().items() if np.issubdtype(a.dtype, np.floating)
                   and name != "input.mean")

    def tensors(self) -> dict[str, np.ndarray]:
        """Flat named arrays (floats and small int geometry vectors), the inverse of `from_tensors`."""
        out: dict[str, np.ndarray] = {
            "input.mean": self.input_mean,
            "input.size": np.array(self.chip_size, np.int32),
            "fc.weight": self.fc_weight,
        }
        _put_conv(out, "stem.conv", self.stem_conv)
        _put_affine(out, "stem.affine", self.stem_affine)
        _put_pool(out, "stem.pool", self.stem_pool)
        for index, block in enumerate(self.blocks):
            prefix = f"blocks.{index}"
            _put_conv(out, f"{prefix}.conv1", block.conv1)
            _put_affine(out, f"{prefix}.affine1", block.affine1)
            _put_conv(out, f"{prefix}.conv2", block.conv2)
            _put_affine(out, f"{prefix}.affine2", block.affine2)
            if block.shortcut_pool is not None:
                _put_pool(out, f"{prefix}.shortcut_pool", block.shortcut_pool)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> "DlibResNetWeights":
        try:
            blocks = []
            index = 0
            while f"blocks.{index}.conv1.weight" in tensors:
                prefix = f"blocks.{index}"
                blocks.append(ResidualBlock(
                    _get_conv(tensors, f"{prefix}.conv1"), _get_affine(tensors, f"{prefix}.affine1"),
                    _get_conv(tensors, f"{prefix}.conv2"), _get_affine(tensors, f"{prefix}.affine2"),
                    _get_pool(tensors, f"{prefix}.shortcut_pool") if f"{prefix}.shortcut_pool.geometry" in tensors
                    else None))
                index += 1
            weights = cls(
                input_mean=_float32(tensors["input.mean"]),
                chip_size=tuple(int(v) for v in tensors["input.size"]),
                stem_conv=_get_conv(tensors, "stem.conv"), stem_affine=_get_affine(tensors, "stem.affine"),
                stem_pool=_get_pool(tensors, "stem.pool"), blocks=blocks,
                fc_weight=_float32(tensors["fc.weight"]))
        except KeyError as error:
            raise ValueError(f"not a dlib ResNet tensor set: missing {error.args[0]!r}") from None
        if not blocks:
            raise ValueError("not a dlib ResNet tensor set: no residual blocks")
        return weights


def fold_affine(conv: Conv, affine: Affine) -> Conv:
    """The conv computing affine(conv(x)) = gamma * (W x + b) + beta, folded in float64, stored float32.

    Used by both the PyTorch and the ONNX builder so the two compute with identical weights.
    """
    gamma = affine.gamma.astype(np.float64)
    weight = conv.weight.astype(np.float64) * gamma[:, None, None, None]
    bias = conv.bias.astype(np.float64) * gamma + affine.beta.astype(np.float64)
    return Conv(weight.astype(np.float32), bias.astype(np.float32), conv.stride, conv.padding)


def _float32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _put_conv(out: dict, name: str, conv: Conv) -> None:
    out[f"{name}.weight"] = conv.weight
    out[f"{name}.bias"] = conv.bias
    out[f"{name}.geometry"] = np.array([*conv.stride, *conv.padding], np.int32)


def _get_conv(tensors: dict, name: str) -> Conv:
    geometry = [int(v) for v in tensors[f"{name}.geometry"]]
    return Conv(_float32(tensors[f"{name}.weight"]), _float32(tensors[f"{name}.bias"]),
                (geometry[0], geometry[1]), (geometry[2], geometry[3]))


def _put_affine(out: dict, name: str, affine: Affine) -> None:
    out[f"{name}.gamma"] = affine.gamma
    out[f"{name}.beta"] = affine.beta


def _get_affine(tensors: dict, name: str) -> Affine:
    return Affine(_float32(tensors[f"{name}.gamma"]), _float32(tensors[f"{name}.beta"]))


def _put_pool(out: dict, name: str, pool: Pool) -> None:
    out[f"{name}.geometry"] = np.array([*pool.window, *pool.stride, *pool.padding], np.int32)


def _get_pool(tensors: dict, name: str) -> Pool:
    g = [int(v) for v in tensors[f"{name}.geometry"]]
    return Pool((g[0], g[1]), (g[2], g[3]), (g[4], g[5]))


class _Stream:
    """Cursor over dlib's serialization primitives."""

    def __init__(self, data: bytes, source: str):
        self.data = data
        self.pos = 0
        self.source = source

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.source}: not a dlib face-recognition ResNet file: {what} at byte {self.pos}")

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def integer(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        control = self.data[self.pos]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        start = self.pos + 1
        self.pos = start + size
        if self.pos > len(self.data):
            raise self.fail("unexpected end of file")
        magnitude = int.from_bytes(self.data[start:self.pos], "little")
        return -magnitude if control & 0x80 else magnitude

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(np.ldexp(np.float64(mantissa), exponent))

    def string(self) -> str:
        length = self.integer()
        if not 0 <= length <= 256:
            raise self.fail(f"implausible string length {length}")
        text = self.data[self.pos:self.pos + length]
        self.pos += length
        return text.decode("ascii", errors="replace")

    def boolean(self) -> bool:
        value = self.data[self.pos:self.pos + 1]
        if value not in (b"0", b"1"):
            raise self.fail(f"expected an ASCII bool, got {value!r}")
        self.pos += 1
        return value == b"1"

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise self.fail(f"tensor version {version} (expected 2)")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if count < 0 or end > len(self.data):
            raise self.fail(f"tensor of shape {shape} overruns the file")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos = end
        return values.reshape(shape)

    def alias_shape(self) -> tuple[int, ...]:
        version = self.integer()
        if version != 1:
            raise self.fail(f"alias tensor version {version} (expected 1)")
        return tuple(self.integer() for _ in range(4))


def _read_layer(stream: _Stream) -> tuple[str, dict]:
    """One layer's details (the part after the nested headers)."""
    kind = stream.string()
    if kind == "con_4":
        params = stream.tensor().reshape(-1)
        num_filters, rows, cols = stream.integer(), stream.integer(), stream.integer()
        stride = (stream.integer(), stream.integer())
        padding = (stream.integer(), stream.integer())
        filter_shape = stream.alias_shape()
        bias_shape = stream.alias_shape()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            stream.real()
        filter_count = int(np.prod(filter_shape))
        if (filter_shape[0], filter_shape[2], filter_shape[3]) != (num_filters, rows, cols) \
                or filter_count + num_filters != params.size or int(np.prod(bias_shape)) != num_filters:
            raise stream.fail(f"inconsistent conv shapes {filter_shape} {bias_shape} for {params.size} params")
        weight = params[:filter_count].reshape(filter_shape)
        return "conv", {"conv": Conv(weight, params[filter_count:].copy(), stride, padding)}
    if kind == "affine_":
        params = stream.tensor().reshape(-1)
        gamma_shape, beta_shape = stream.alias_shape(), stream.alias_shape()
        mode = stream.integer()
        channels = int(np.prod(gamma_shape))
        if mode != 0 or int(np.prod(beta_shape)) != channels or params.size != 2 * channels:
            raise stream.fail(f"unsupported affine layer (mode {mode}, {params.size} params)")
        return "affine", {"affine": Affine(params[:channels].copy(), params[channels:].copy())}
    if kind in ("max_pool_2", "avg_pool_2"):
        window = (stream.integer(), stream.integer())
        stride = (stream.integer(), stream.integer())
        padding = (stream.integer(), stream.integer())
        return kind[:8], {"pool": Pool(window, stride, padding)}
    if kind in ("relu_", "add_prev_"):
        return kind.rstrip("_"), {}
    if kind == "fc_2":
        num_outputs, num_inputs = stream.integer(), stream.integer()
        params = stream.tensor()
        weight_shape, bias_shape = stream.alias_shape(), stream.alias_shape()
        bias_mode = stream.integer()
        for _ in range(4):
            stream.real()
        if int(np.prod(bias_shape)) != 0 or params.size != num_inputs * num_outputs or bias_mode != 1:
            raise stream.fail(f"expected an fc layer without bias, got shapes {weight_shape} {bias_shape}")
        return "fc", {"weight": params.reshape(num_inputs, num_outputs)}
    raise stream.fail(f"unknown layer type {kind!r}")


def _skip_layer_bookkeeping(stream: _Stream) -> None:
    for _ in range(3):
        stream.boolean()
    for _ in range(3):
        if stream.tensor().size:
            raise stream.fail("expected an empty bookkeeping tensor")


def read_dat(path: str | Path) -> DlibResNetWeights:
    """Parse dlib's serialized face-recognition ResNet into float32 arrays."""
    path = Path(path)
    stream = _Stream(path.read_bytes(), str(path))
    if stream.integer() != 1 or stream.string() != "loss_metric_2":
        raise stream.fail("expected the loss_metric_2 header")
    stream.real(), stream.real()  # margin, distance threshold
    header_versions = []
    while True:
        version = stream.integer()
        header_versions.append(version)
        if version == 3:  # the innermost add_layer, which wraps the input layer
            break
        if version not in (1, 2) or len(header_versions) > 10_000:
            raise stream.fail(f"unexpected layer header version {version}")
    if stream.string() != "input_rgb_image_sized":
        raise stream.fail("expected the input_rgb_image_sized layer")
    input_mean = np.array([stream.real() for _ in range(3)], np.float32)
    chip_size = (stream.integer(), stream.integer())

    layers = []
    while not stream.at_end():
        layers.append(_read_layer(stream))
        _skip_layer_bookkeeping(stream)
        if len(layers) == 1:
            stream.integer()  # sample expansion factor, stored by the innermost add_layer only
    if len(layers) != header_versions.count(2) + 1:
        raise stream.fail(f"{len(layers)} layers but {header_versions.count(2) + 1} layer headers")
    weights = _assemble(layers, input_mean, chip_size, stream)
    num_tags_and_skips = sum(3 if block.is_down else 1 for block in weights.blocks)
    if header_versions.count(1) != num_tags_and_skips:
        raise stream.fail("the tag/skip layers do not match the residual structure")
    return weights


def _assemble(layers: list, input_mean: np.ndarray, chip_size: tuple, stream: _Stream) -> DlibResNetWeights:
    """Group the innermost-first layer list into the ResNet's stem, blocks and head, checking the pattern."""
    kinds = [kind for kind, _ in layers]
    if kinds[:4] != ["conv", "affine", "relu", "max_pool"]:
        raise stream.fail(f"unexpected stem {kinds[:4]}")
    stem = [details for _, details in layers[:4]]
    blocks = []
    index = 4
    normal = ["conv", "affine", "relu", "conv", "affine", "add_prev", "relu"]
    down = ["conv", "affine", "relu", "conv", "affine", "avg_pool", "add_prev", "relu"]
    while kinds[index:index + 2] != ["avg_pool", "fc"]:
        if kinds[index:index + 7] == normal:
            pool, length = None, 7
        elif kinds[index:index + 8] == down:
            pool, length = layers[index + 5][1]["pool"], 8
        else:
            raise stream.fail(f"unexpected layer sequence {kinds[index:index + 8]}")
        blocks.append(ResidualBlock(layers[index][1]["conv"], layers[index + 1][1]["affine"],
                                    layers[index + 3][1]["conv"], layers[index + 4][1]["affine"], pool))
        index += length
    if index + 2 != len(layers) or layers[index][1]["pool"].window != (0, 0):
        raise stream.fail("expected a global average pool and the fc layer at the end")
    return DlibResNetWeights(input_mean, chip_size, stem[0]["conv"], stem[1]["affine"], stem[3]["pool"], blocks,
                             layers[index + 1][1]["weight"])


def save_compact(weights: DlibResNetWeights, path: str | Path, dtype=np.float16) -> Path:
    """Write the weights as an .npz (floats in `dtype`, float16 by default: ~11 MB)."""
    path = Path(path)
    arrays = {name: (array.astype(dtype) if np.issubdtype(array.dtype, np.floating) and name != "input.mean"
                     else array) for name, array in weights.tensors().items()}
    with open(path, "wb") as handle:  # a file handle keeps np.savez from appending ".npz"
        np.savez(handle, **arrays)
    return path


WEIGHTS_ENV = "DEID_DLIB_WEIGHTS"


def load_weights(path: str | Path | None = None) -> DlibResNetWeights:
    """dlib's .dat, a compact .npz written by `save_compact`, or None: `$DEID_DLIB_WEIGHTS` when set (for machines
    without face-recognition-models, e.g. a carried compact .npz), else the installed package's file."""
    if path is None:
        path = Path(os.environ[WEIGHTS_ENV]) if os.environ.get(WEIGHTS_ENV) else default_model_path()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dlib ResNet weights not found: {path} (expected {MODEL_FILE_NAME} or a compact .npz)")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(b"PK"):
        with np.load(path, allow_pickle=False) as archive:
            return DlibResNetWeights.from_tensors({name: archive[name] for name in archive.files})
    return read_dat(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=None, help="the .dat (default: face-recognition-models)")
    parser.add_argument("--compact", type=Path, required=True, metavar="OUT.npz", help="write the compact .npz")
    parser.add_argument("--float32", action="store_true", help="keep float32 (exact, ~22 MB) instead of float16")
    args = parser.parse_args(argv)
    weights = load_weights(args.source)
    out = save_compact(weights, args.compact, np.float32 if args.float32 else np.float16)
    print(f"{out}: {len(weights.blocks)} residual blocks, {weights.num_parameters():,} parameters, "
          f"{out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
