"""Scene cuts: a new shot must start fresh tracks (no identity, rung or predicted place carries over a cut).

A cut changes both the layout (small grey thumbnails differ a lot) and the content (their grey-level histograms
no longer correlate); a fast pan or a person walking close changes the first but keeps the second. A stream that
changes resolution is a cut too: the tracks' boxes are in the old frame's pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

_THUMBNAIL = (32, 18)
_MIN_MEAN_DIFFERENCE = 40.0   # of 255, thumbnail mean absolute difference
_MAX_HISTOGRAM_CORRELATION = 0.5


class SceneCutDetector:
    def __init__(self) -> None:
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._previous_size: tuple[int, ...] | None = None

    def is_cut(self, frame_bgr: np.ndarray) -> bool:
        grey = cv2.cvtColor(cv2.resize(frame_bgr, _THUMBNAIL, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        histogram = cv2.calcHist([grey], [0], None, [32], [0, 256])
        previous, self._previous = self._previous, (grey, histogram)
        previous_size, self._previous_size = self._previous_size, frame_bgr.shape[:2]
        if previous is None:
            return False
        if previous_size != frame_bgr.shape[:2]:
            return True
        difference = float(np.abs(grey.astype(np.int16) - previous[0].astype(np.int16)).mean())
        correlation = float(cv2.compareHist(histogram, previous[1], cv2.HISTCMP_CORREL))
        return difference > _MIN_MEAN_DIFFERENCE and correlation < _MAX_HISTOGRAM_CORRELATION

    def reset(self) -> None:
        self._previous = None
        self._previous_size = None
