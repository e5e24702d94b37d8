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
