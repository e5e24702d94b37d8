"""The one error type the Filter's fail-safe catches at run time."""
from __future__ import annotations

import numpy as np


class ModelError(RuntimeError):
    """A model failed on this input: the backend raised, or returned the wrong shape or non-finite values.

    `Filter` covers the faces it concerns with the fallback and logs each kind once; any other exception is a
    bug and propagates (after every pending face of the frame was covered).
    """

    def __init__(self, model: str, message: str):
        super().__init__(f"{model}: {message}")
        self.model = model
        self.kind = f"{model}: {message.split(':')[0]}"


def check_output(model: str, name: str, array: np.ndarray, shape: tuple) -> np.ndarray:
    """Raise ModelError unless `array` has `shape` (None: any size) and only finite values."""
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        raise ModelError(model, f"wrong output shape: {name} is {array.shape}, expected "
                                f"{tuple('N' if want is None else want for want in shape)}")
    if not np.isfinite(array).all():
        raise ModelError(model, f"non-finite output: {name} holds NaN or inf")
    return array
