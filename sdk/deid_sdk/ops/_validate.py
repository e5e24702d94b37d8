"""Argument checks shared by every implementation of the warp/blend operations.

Each check raises TypeError/ValueError saying what was expected and what was got, so a wrong call fails the same
way whether it lands on the reference, the C++ or the CUDA kernel.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

MAX_MATRIX_MAGNITUDE = 1e12
# Pixel format -> (channels, frame stores blue first)
PIXEL_FORMATS = {"bgr": (3, True), "rgb": (3, False), "bgra": (4, True), "rgba": (4, False)}


def pixel_format_info(pixel_format: str) -> tuple[int, bool]:
    """(channel count, True when the frame is blue-first) for a pixel format name."""
    if not isinstance(pixel_format, str) or pixel_format.lower() not in PIXEL_FORMATS:
        raise ValueError(f"pixel_format must be one of {sorted(PIXEL_FORMATS)}, got {pixel_format!r}")
    return PIXEL_FORMATS[pixel_format.lower()]


def check_frame_geometry(shape: Sequence[int], dtype_str: str, pixel_format: str) -> tuple[int, int, int, bool]:
    """Check an HxWxC uint8 frame description; returns (height, width, channels, blue_first)."""
    channels, blue_first = pixel_format_info(pixel_format)
    if len(shape) != 3 or shape[2] != channels:
        raise ValueError(f"frame must be HxWx{channels} for pixel_format={pixel_format!r}, got shape {tuple(shape)}")
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"frame must not be empty, got shape {tuple(shape)}")
    if np.dtype(dtype_str) != np.uint8:
        raise TypeError(f"frame must be uint8, got {np.dtype(dtype_str)}")
    return int(shape[0]), int(shape[1]), channels, blue_first


def check_numpy_frame(frame, pixel_format: str, writable: bool) -> tuple[int, int, int, bool]:
    """Check a NumPy frame (C-contiguous because the kernels address it as packed rows)."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy.ndarray (or a CUDA array for impl='cuda'), got {type(frame).__name__}")
    info = check_frame_geometry(frame.shape, frame.dtype.str, pixel_format)
    if not frame.flags.c_contiguous:
        raise ValueError("frame must be C-contiguous (packed HxWxC rows); got a strided view, "
                         "pass np.ascontiguousarray(frame)")
    if writable and not frame.flags.writeable:
        raise ValueError("frame must be writable: blend_from_crop works in place")
    return info


def as_matrices(matrices) -> np.ndarray:
    """(N,2,3) float64 copy of frame->crop matrices; a single (2,3) matrix counts as N=1."""
    array = np.asarray(matrices)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"matrices must be a float array, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if array.shape == (2, 3):
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (2, 3):
        raise ValueError(f"matrices must have shape (N,2,3) or (2,3), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("matrices must be finite, got NaN or inf")
    # Beyond this a frame->crop map means nothing, and products of its entries overflow float64 (found by fuzzing).
    if np.abs(array).max(initial=0.0) > MAX_MATRIX_MAGNITUDE:
        raise ValueError(f"matrices must hold values of magnitude at most {MAX_MATRIX_MAGNITUDE:g}, got "
                         f"{np.abs(array).max():.3g}")
    return np.ascontiguousarray(array)


def check_invertible(matrices: np.ndarray) -> None:
    """warp_to_crop needs the crop->frame map, so each matrix must be invertible."""
    determinants = matrices[:, 0, 0] * matrices[:, 1, 1] - matrices[:, 0, 1] * matrices[:, 1, 0]
    bad = np.flatnonzero(np.abs(determinants) < 1e-12)
    if bad.size:
        raise ValueError(f"matrices must be invertible, matrix {int(bad[0])} has determinant {determinants[bad[0]]:.3g}")


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an int >= 2 (crop side in pixels), got {size!r}")
    return int(size)


def check_crop_batch(name: str, shape: Sequence[int], dtype_str: str, count: int, channels: int,
                     size: int | None = None) -> int:
    """Check an (N,channels,S,S) float32 batch description; returns S."""
    shape = tuple(int(s) for s in shape)
    expected = f"({count},{channels},S,S)" if size is None else f"({count},{channels},{size},{size})"
    if len(shape) != 4 or shape[0] != count or shape[1] != channels or shape[2] != shape[3] or shape[2] < 2:
        raise ValueError(f"{name} must have shape {expected} with S >= 2, got {shape}")
    if size is not None and shape[2] != size:
        raise ValueError(f"{name} must have shape {expected}, got {shape}")
    if np.dtype(dtype_str) != np.float32:
        raise TypeError(f"{name} must be float32, got {np.dtype(dtype_str)}")
    return shape[2]


def check_numpy_crop_batch(name: str, array, count: int, channels: int, size: int | None = None) -> int:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    result = check_crop_batch(name, array.shape, array.dtype.str, count, channels, size)
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous, got a strided view; pass np.ascontiguousarray({name})")
    return result


def check_feathers(feather, count: int) -> np.ndarray:
    """(N,) float64 edge ramps in pixels from one number or one per face."""
    try:
        values = np.asarray(feather, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"feather must be a number of pixels or one per face, got {feather!r}") from None
    if values.ndim == 0:
        values = np.full(count, float(values))
    if values.shape != (count,):
        raise ValueError(f"feather must be a number or a sequence of {count} numbers, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"feather must be finite, got {feather!r}")
    if np.abs(values).max(initial=0.0) > MAX_MATRIX_MAGNITUDE:  # the kernels take it as float32
        raise ValueError(f"feather must be at most {MAX_MATRIX_MAGNITUDE:g} pixels, got {feather!r}")
    return np.ascontiguousarray(values)


def pack_hulls(hulls, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate N polygons ((K,2) or OpenCV's (K,1,2)) into (sum K, 2) float64 points and (N+1,) int64 offsets."""
    if isinstance(hulls, np.ndarray) and hulls.ndim == 3 and hulls.shape[-1] == 2:
        hulls = list(hulls)
    elif isinstance(hulls, np.ndarray) and hulls.ndim == 2 and count == 1:
        hulls = [hulls]
    if not isinstance(hulls, (list, tuple)) or len(hulls) != count:
        got = f"{type(hulls).__name__} of length {len(hulls)}" if hasattr(hulls, "__len__") else type(hulls).__name__
        raise ValueError(f"hulls must be a list of {count} polygons (one per matrix), got {got}")
    polygons = []
    for index, hull in enumerate(hulls):
        points = np.asarray(hull)
        if points.dtype.kind not in "fiu":
            raise TypeError(f"hulls[{index}] must be numeric, got dtype {points.dtype}")
        if points.ndim == 3 and points.shape[1] == 1:
            points = points[:, 0]
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 3:
            raise ValueError(f"hulls[{index}] must have shape (K,2) or (K,1,2) with K >= 3, got {points.shape}")
        points = points.astype(np.float64)
        if not np.all(np.isfinite(points)):
            raise ValueError(f"hulls[{index}] must be finite, got NaN or inf")
        # As for matrices: products of coordinates (the hull's area, its edge lines) must not overflow float64.
        if np.abs(points).max() > MAX_MATRIX_MAGNITUDE:
            raise ValueError(f"hulls[{index}] must hold coordinates of magnitude at most {MAX_MATRIX_MAGNITUDE:g}, "
                             f"got {np.abs(points).max():.3g}")
        polygons.append(points)
    offsets = np.zeros(count + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in polygons])
    points = np.concatenate(polygons) if polygons else np.zeros((0, 2))
    return np.ascontiguousarray(points, dtype=np.float64), offsets
