"""Decode a short clip into memory (benchmarks and evaluation): OpenCV, BGR uint8 frames."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_frames(path: str | Path, max_frames: int | None = None) -> list[np.ndarray]:
    """The first `max_frames` frames of a video (all when None); raises if none can be decoded."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such video file: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"cannot open {path} as a video")
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise ValueError(f"no frames could be decoded from {path}")
    return frames
