"""Input checks with errors that say what was expected and what was got."""
from __future__ import annotations

import numpy as np

COLOR_ORDERS = ("bgr", "rgb")


def check_frame(frame: object, name: str = "frame") -> np.ndarray:
    """Return `frame` if it is a non-empty HxWx3 uint8 C-contiguous ndarray, else raise."""
    if frame is None:
        raise TypeError(f"{name}: expected an HxWx3 uint8 numpy array, got None")
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{name}: expected an HxWx3 uint8 numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name}: expected shape HxWx3 (3 colour channels), got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise TypeError(f"{name}: expected dtype uint8, got {frame.dtype} (convert with frame.astype(np.uint8) "
                        "after scaling to 0..255)")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty image, got shape {frame.shape}")
    if not frame.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array, got a strided view with strides {frame.strides}; "
                         "pass np.ascontiguousarray(frame)")
    return frame


def check_cuda_frame(frame: object, writable: bool = False, name: str = "frame") -> dict:
    """The `__cuda_array_interface__` of a CUDA-array frame (cudaImage, torch/CuPy tensor) if it describes what
    `check_frame` asks of an ndarray (HxWx3 uint8, non-empty, C-contiguous; writable when `writable`), else raise.
    Returns {"shape", "typestr", "pointer", "stream"}."""
    from deid_sdk.ops.warp_blend import _cuda_interface

    interface = frame.__cuda_array_interface__
    if not isinstance(interface, dict) or "shape" not in interface or "typestr" not in interface \
            or "data" not in interface:
        raise TypeError(f"{name}: __cuda_array_interface__ must be a dict with shape, typestr and data, "
                        f"got {interface!r}")
    shape = tuple(interface["shape"])
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"{name}: expected shape HxWx3 (3 colour channels), got shape {shape} "
                         "(a cudaImage must be rgb8/bgr8, a tensor height x width x channels)")
    if np.dtype(interface["typestr"]) != np.uint8:
        raise TypeError(f"{name}: expected dtype uint8, got {np.dtype(interface['typestr'])} (typestr "
                        f"{interface['typestr']!r})")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty image, got shape {shape}")
    checked = _cuda_interface(name, frame, writable=writable)  # C-contiguous, writable, unmasked
    if not checked["pointer"]:
        raise ValueError(f"{name}: its __cuda_array_interface__ has a null data pointer")
    return {**checked, "stream": interface.get("stream")}


def check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_unit_interval(value: float, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {number}")
    return number


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_open_unit_interval(value, name: str) -> float:
    """A number strictly between 0 and 1 (a score threshold, an IoU threshold)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_detect_width(value) -> int | None:
    """None (detect at full size) or a width of at least 32 pixels."""
    if value is not None and check_positive_int(value, "detect_width") < 32:
        raise ValueError(f"detect_width must be >= 32 pixels or None, got {value!r}")
    return None if value is None else int(value)
