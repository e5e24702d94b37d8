"""The de-identification generator behind the ONNX contract in models/README.md."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deid_sdk.align import CROP_SIZE
from deid_sdk.backends import create_session
from deid_sdk.errors import check_output
from deid_sdk.identity import IDENTITY_SIZE
from deid_sdk.model_files import GENERATOR_FILES, find_model, manifest_entry

INPUT_NAMES = ("crop", "identity", "strength")
OUTPUT_NAMES = ("image", "mask")
# Every tensor's dims (None: the batch, any size); a file that fixes another size follows another contract.
CONTRACT_SHAPES = {"crop": (None, 3, CROP_SIZE, CROP_SIZE), "identity": (None, IDENTITY_SIZE), "strength": (None, 1),
                   "image": (None, 3, CROP_SIZE, CROP_SIZE), "mask": (None, 1, CROP_SIZE, CROP_SIZE)}


def _compatible(declared: tuple, expected: tuple) -> bool:
    """Same rank, and every dim the file fixes equals the contract's (a symbolic dim may be anything)."""
    return len(declared) == len(expected) and all(
        got is None or want is None or got == want for got, want in zip(declared, expected))


def _dims(shape: tuple) -> str:
    return "(" + ", ".join("N" if dim is None else str(dim) for dim in shape) + ")"


def default_generator_path(precision: str = "fp32") -> Path | None:
    """The bundled generator file of a precision ("fp32", "fp16", "int8"), None when it is not installed."""
    return find_model(GENERATOR_FILES[precision])


def check_generator_contract(model_path: str | Path, input_names, output_names, shapes: dict[str, tuple]) -> None:
    """Raise when a model lacks the generator's tensors or declares other dims (before a TensorRT build, and on
    every load). shapes: declared dims per tensor, None where symbolic (`InferenceSession.shapes`)."""
    missing = [name for name in INPUT_NAMES if name not in input_names]
    missing += [name for name in OUTPUT_NAMES if name not in output_names]
    if missing:
        raise ValueError(f"{model_path} does not follow the generator contract (models/README.md): "
                         f"missing tensors {missing}; it has inputs {list(input_names)} and outputs "
                         f"{list(output_names)}")
    wrong = [f"{name} is {_dims(shapes[name])}, expected {_dims(shape)}"
             for name, shape in CONTRACT_SHAPES.items() if not _compatible(shapes[name], shape)]
    if wrong:
        raise ValueError(f"{model_path} does not follow the generator contract (models/README.md): "
                         + "; ".join(wrong))


class Generator:
    """crop (N,3,128,128) RGB [-1,1] + identity (N,128) + strength (N,1) -> image (N,3,128,128), mask (N,1,128,128)."""

    def __init__(self, model_path: str | Path, backend: str = "auto", threads: int = 2, precision: str = "fp32"):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"generator model not found: {model_path}. Pass model=None to use the bundled "
                                    "one, or export one with `deid-train export`")
        self.path = model_path
        # checks the sha256 first; precision: of a TensorRT engine (onnxruntime runs the file as it is)
        self.session = create_session(model_path, backend=backend, threads=threads, precision=precision)
        self.manifest = manifest_entry(model_path)
        check_generator_contract(model_path, self.session.input_names, self.session.output_names, self.session.shapes)

    def __call__(self, crops: np.ndarray, identities: np.ndarray, strengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = len(crops)
        if crops.shape != (count, 3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"expected crops of shape (N, 3, {CROP_SIZE}, {CROP_SIZE}), got {crops.shape}")
        if identities.shape != (count, IDENTITY_SIZE):
            raise ValueError(f"expected identities of shape ({count}, {IDENTITY_SIZE}), got {identities.shape}")
        outputs = self.session.run({"crop": crops, "identity": identities,
                                    "strength": np.asarray(strengths, np.float32).reshape(count, 1)})
        name = self.path.name
        image = check_output(name, "image", outputs["image"], crops.shape)
        mask = check_output(name, "mask", outputs["mask"], (count, 1, CROP_SIZE, CROP_SIZE))
        return image, mask
