"""One video frame travelling from a source through the filter to a sink."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    image: np.ndarray            # HxWx3 uint8 in `color` order; on Jetson a zero-copy view of `native`
    index: int                   # 0-based position in the source (dropped frames leave gaps)
    pts: int                     # presentation timestamp in units of time_base
    time_base: Fraction
    color: str = "bgr"           # "bgr" or "rgb"
    name: str | None = None      # file name when the source is a folder of images
    native: object | None = None  # the source's own buffer (jetson_utils.cudaImage) when there is one

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)
