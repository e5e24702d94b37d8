"""Fallback anonymization: what a face gets when it cannot be de-identified (too small, no landmarks, no model,
an error inside the pipeline). It covers the whole detection box, enlarged, so nothing of the face survives."""
from __future__ import annotations

import cv2
import numpy as np

FALLBACK_MODES = ("blur", "pixelate")
_MARGIN = 0.15  # fraction of the box added on each side: detector boxes can cut the chin or the ears


def cover_region(box: np.ndarray, frame_shape: tuple[int, ...], margin: float = _MARGIN) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    height, width = frame_shape[:2]
    left, top = max(0, int(np.floor(x1 - dx))), max(0, int(np.floor(y1 - dy)))
    right, bottom = min(width, int(np.ceil(x2 + dx))), min(height, int(np.ceil(y2 + dy)))
    return left, top, right, bottom


def anonymize_box(frame: np.ndarray, box: np.ndarray, mode: str = "blur") -> None:
    """Blur or pixelate the (enlarged) box in place. Strong enough that no identity survives."""
    left, top, right, bottom = cover_region(box, frame.shape)
    if right <= left or bottom <= top:
        return
    region = frame[top:bottom, left:right]
    size = max(right - left, bottom - top)
    if mode == "blur":
        # A Gaussian about a third of the face wide wipes out features. Blurring a 1/8-size copy and scaling it
        # back up gives the same look at a fraction of the cost of a full-resolution kernel that large.
        small_width = max(2, region.shape[1] // 8)
        small_height = max(2, region.shape[0] // 8)
        small = cv2.resize(region, (small_width, small_height), interpolation=cv2.INTER_AREA)
        kernel = max(3, (max(small_width, small_height) // 3) | 1)
        small = cv2.GaussianBlur(cv2.GaussianBlur(small, (kernel, kernel), 0), (kernel, kernel), 0)
        region[...] = cv2.resize(small, (region.shape[1], region.shape[0]), interpolation=cv2.INTER_LINEAR)
    elif mode == "pixelate":
        blocks = 8
        small = cv2.resize(region, (blocks, max(1, round(blocks * region.shape[0] / region.shape[1]))),
                           interpolation=cv2.INTER_AREA)
        region[...] = cv2.resize(small, (region.shape[1], region.shape[0]), interpolation=cv2.INTER_NEAREST)
    else:
        raise ValueError(f"fallback must be one of {FALLBACK_MODES}, got {mode!r}")
