"""The demo's built-in input: a public-domain portrait (NASA's astronaut photo, shipped in scikit-image)
moved, scaled and rotated over a few seconds, so `deid demo` needs no download and no camera."""
from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np


def portrait_bgr() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as error:
        raise RuntimeError("the built-in demo clip needs scikit-image (pip install scikit-image), "
                           "or pass --input FILE") from error
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def demo_frames(seconds: float = 4.0, fps: float = 25.0, width: int = 640, height: int = 480) -> Iterator[np.ndarray]:
    """Frames of the moving portrait over a soft gradient background."""
    portrait = portrait_bgr()
    ramp = np.linspace(60, 140, width, dtype=np.float32)
    background = np.repeat(np.stack([ramp, ramp * 0.9, ramp * 0.8], axis=-1)[None], height, axis=0).astype(np.uint8)
    count = int(round(seconds * fps))
    for index in range(count):
        phase = index / max(count - 1, 1)
        angle = 12.0 * np.sin(2 * np.pi * phase)
        scale = 0.75 + 0.25 * np.sin(np.pi * phase)
        center_x = width / 2 + 80 * np.sin(2 * np.pi * phase)
        center_y = height / 2 + 20 * np.cos(2 * np.pi * phase)
        # The face is near (225, 118) in the 512x512 portrait: keep it near the moving centre.
        matrix = cv2.getRotationMatrix2D((225.0, 118.0), angle, scale)
        matrix[:, 2] += (center_x - 225.0, center_y - 118.0)
        frame = cv2.warpAffine(portrait, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_TRANSPARENT, dst=background.copy())
        yield frame
