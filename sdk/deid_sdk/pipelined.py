"""Detection ahead: a stream's next frame is detected in a worker thread while the Filter finishes the current one.

Detection is the one stateless stage (tracks, the scene-cut check and the privacy guard's per-track state need
frames in order), and onnxruntime releases the GIL while it runs, so CenterFace on frame t+1 overlaps landmarks,
identity, generator, guard and blend of frame t on the second core. For streams (the live loop, `deid run`):

    ahead = DetectAhead(Filter())
    ahead.prepare(frame_1)            # detection of frame_1 starts in the worker
    ahead.prepare(frame_2)
    ahead(frame_1, inplace=True)      # waits for frame_1's detections, then the rest of the Filter
    ahead(frame_2, inplace=True)

Frames are filtered in the order they were prepared; a frame is never returned before its own filter result.
The output is the serial Filter's (same detections on the same pixels, same stages in the same order). A frame
that was not prepared, or whose detection failed in the worker, is detected in the calling thread as by the plain
Filter (a worker failure is logged once, never a face left undetected).
"""
from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from deid_sdk.detect import Detection

log = logging.getLogger("deid_sdk")


class _HandedDetector:
    """The Filter's detector: hands over the detections computed ahead for the frame being filtered, else detects."""

    def __init__(self, detector):
        self.detector = detector
        self.handed: list[Detection] | None = None

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        handed, self.handed = self.handed, None
        return handed if handed is not None else self.detector.detect(frame_bgr)


class DetectAhead:
    """A Filter whose detection runs ahead in a worker thread; call it like the Filter, in prepare() order."""

    def __init__(self, face_filter, max_ahead: int = 4):
        if max_ahead < 1:
            raise ValueError(f"max_ahead must be at least 1, got {max_ahead}")
        self.filter = face_filter
        self.max_ahead = max_ahead
        self._detector = _HandedDetector(face_filter.detector)
        face_filter.detector = self._detector
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deid-detect")
        self._pending: deque[tuple[np.ndarray, Future]] = deque()
        self._worker_failed = False

    def __getattr__(self, name):  # stats, faces, privacy_summary, ... are the Filter's
        if name == "filter":
            raise AttributeError(name)
        return getattr(self.filter, name)

    def prepare(self, image: np.ndarray) -> None:
        """Start detecting `image` (the same array object later passed to __call__) in the worker."""
        if len(self._pending) >= self.max_ahead:  # a caller that never filters what it prepares
            self._pending.popleft()
        try:
            self._pending.append((image, self._worker.submit(self._detect, image)))
        except RuntimeError:  # closed: the frame is detected in the filter thread when it comes
            pass

    def _detect(self, image: np.ndarray) -> list[Detection]:
        bgr = image if self.filter.color == "bgr" else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        return list(self._detector.detector.detect(bgr))

    def __call__(self, frame: np.ndarray, inplace: bool = False) -> np.ndarray:
        self._detector.handed = self._detections_for(frame)
        try:
            return self.filter(frame, inplace=inplace)
        finally:
            self._detector.handed = None  # never hand one frame's detections to another

    def _detections_for(self, frame: np.ndarray) -> list[Detection] | None:
        """The worker's detections of `frame` (None: not prepared or failed; detect it in this thread)."""
        if not any(image is frame for image, _ in self._pending):
            return None
        while True:
            image, future = self._pending.popleft()
            if image is frame:
                break
            future.cancel()  # prepared but never filtered (dropped on the way)
        try:
            return future.result()
        except Exception as error:  # the Filter detects this frame itself: no face goes unseen
            if not self._worker_failed:
                self._worker_failed = True
                log.error("detection ahead failed (%s: %s); detecting in the filter thread instead (logged "
                          "once)", type(error).__name__, error)
            return None

    def close(self) -> None:
        """Stop the worker and close the Filter."""
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._worker.shutdown(wait=True)
        self.filter.detector = self._detector.detector
        self.filter.close()
