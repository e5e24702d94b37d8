"""The small interface every inference backend implements."""
from __future__ import annotations

from typing import Protocol

import numpy as np


class InferenceSession(Protocol):
    """A loaded model: named float32 arrays in, named float32 arrays out."""

    backend: str          # "onnxruntime", "tensorrt", "torch"
    precision: str        # "fp32", "fp16", "int8"
    input_names: list[str]
    output_names: list[str]
    shapes: dict[str, tuple]  # declared dims of every input and output; None where symbolic

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...
