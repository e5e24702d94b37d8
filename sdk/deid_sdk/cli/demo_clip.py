"""The demo's built-in input: a public-domain portrait (NASA's astronaut photo, shipped in scikit-image)
moved, scaled and rotated over a few seconds, so `deid demo` needs no download and no camera. It is a video
source like any other (deid_sdk.io), so the demo reads and writes through the same code as `deid run`."""
from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from deid_sdk.io.base import VideoSource
from deid_sdk.io.frame import Frame


def portrait_bgr() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as error:
        raise RuntimeError("the built-in demo clip needs scikit-image (pip install 'deid_sdk[demo]'), "
                           "or pass --input FILE") from error
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


class DemoClipSource(VideoSource):
    """Frames of the moving portrait over a soft gradient background."""

    uri = "built-in clip (scikit-image astronaut portrait, public domain)"

    def __init__(self, seconds: float = 4.0, fps: int = 25, width: int = 640, height: int = 480):
        self.portrait = portrait_bgr()
        self.fps = Fraction(fps)
        self.time_base = 1 / self.fps
        self.frame_count = int(round(seconds * fps))
        self.width, self.height = width, height
        ramp = np.linspace(60, 140, width, dtype=np.float32)
        self.background = np.repeat(np.stack([ramp, ramp * 0.9, ramp * 0.8], axis=-1)[None], height,
                                    axis=0).astype(np.uint8)
        self._index = 0

    def read(self) -> Frame | None:
        if self._index >= self.frame_count:
            return None
        phase = self._index / max(self.frame_count - 1, 1)
        angle = 12.0 * np.sin(2 * np.pi * phase)
        scale = 0.75 + 0.25 * np.sin(np.pi * phase)
        center_x = self.width / 2 + 80 * np.sin(2 * np.pi * phase)
        center_y = self.height / 2 + 20 * np.cos(2 * np.pi * phase)
        # The face is near (225, 118) in the 512x512 portrait: keep it near the moving centre.
        matrix = cv2.getRotationMatrix2D((225.0, 118.0), angle, scale)
        matrix[:, 2] += (center_x - 225.0, center_y - 118.0)
        image = cv2.warpAffine(self.portrait, matrix, (self.width, self.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_TRANSPARENT, dst=self.background.copy())
        frame = Frame(image=image, index=self._index, pts=self._index, time_base=self.time_base)
        self._index += 1
        return frame
