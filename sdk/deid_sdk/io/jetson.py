"""jetson-utils sources and sinks (Jetson, or any machine with jetson-inference built), zero copy.

videoSource hands out cudaImage buffers in mapped (unified) memory. `cudaToNumpy` makes a NumPy view of the
same memory, no copy: the filter de-identifies that view in place and videoOutput renders the very same
cudaImage. Buffers come from the source's small ring, so the loop keeps at most one frame queued
(`queue_limit`) lest a buffer be refilled before it is rendered.
"""
from __future__ import annotations

import importlib
import threading
import time
from fractions import Fraction

import cv2
import numpy as np

from deid_sdk.io.base import VideoSink, VideoSource
from deid_sdk.io.frame import Frame
from deid_sdk.io.reconnect import reopen_with_backoff

_TIME_BASE = Fraction(1, 1_000_000)   # microseconds
_CAPTURE_TIMEOUT_MS = 1000


def load_jetson_utils():
    """The jetson_utils module, or None where it is not installed."""
    for name in ("jetson_utils", "jetson.utils"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class JetsonSource(VideoSource):
    color = "rgb"
    queue_limit = 1

    def __init__(self, uri: str, *, is_live: bool = True, argv: list[str] | None = None,
                 reconnect_attempts: int | None = None, max_backoff: float = 10.0, module=None):
        self.jetson_utils = module or load_jetson_utils()
        if self.jetson_utils is None:
            raise ImportError("jetson_utils is not installed (build jetson-inference, or use the OpenCV path)")
        self.uri = uri
        self.is_live = is_live
        self.argv = list(argv or [])
        self.reconnect_attempts = (1_000_000 if is_live else 0) if reconnect_attempts is None else reconnect_attempts
        self.max_backoff = max_backoff
        self.reconnects = 0
        self._stop = threading.Event()
        self._index = 0
        self._origin: float | None = None
        self._source = self._open()
        self.width, self.height = self._source.GetWidth(), self._source.GetHeight()
        rate = float(self._source.GetFrameRate() or 0)
        self.fps = Fraction(rate).limit_denominator(1001) if rate > 0 else None

    def _open(self):
        try:
            return self.jetson_utils.videoSource(self.uri, argv=self.argv)
        except Exception as error:  # jetson_utils raises bare Exception for every failure
            raise OSError(f"cannot open {self.uri} with jetson_utils: {error}") from None

    def read(self) -> Frame | None:
        while not self._stop.is_set():
            image = None
            try:
                image = self._source.Capture(format="rgb8", timeout=_CAPTURE_TIMEOUT_MS)
            except Exception:  # older jetson_utils raise on a timeout instead of returning None
                image = None
            if image is not None:
                return self._frame(image)
            if not self._source.IsStreaming() and not self._reconnect():
                return None
        return None

    def _frame(self, image) -> Frame:
        self.jetson_utils.cudaDeviceSynchronize()  # the capture's colour conversion runs asynchronously
        view = self.jetson_utils.cudaToNumpy(image)  # mapped memory: a view, no copy
        stamp = getattr(image, "timestamp", 0) or 0  # nanoseconds in recent jetson_utils
        now = stamp / 1000 if stamp else time.monotonic() * 1_000_000
        if self._origin is None:
            self._origin = now
        frame = Frame(image=view, index=self._index, pts=round(now - self._origin), time_base=_TIME_BASE,
                      color="rgb", native=image)
        self._index += 1
        return frame

    def _reconnect(self) -> bool:
        self._source.Close()
        source = reopen_with_backoff(self._open, uri=self.uri, attempts=self.reconnect_attempts, stop=self._stop,
                                     max_backoff=self.max_backoff)
        if source is None:
            return False
        self._source = source
        self.reconnects += 1
        return True

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._source.Close()


class JetsonSink(VideoSink):
    main_thread_only = True  # windows belong to the thread that made them
    def __init__(self, uri: str, *, argv: list[str] | None = None, module=None):
        self.jetson_utils = module or load_jetson_utils()
        if self.jetson_utils is None:
            raise ImportError("jetson_utils is not installed (build jetson-inference, or use the OpenCV path)")
        self.uri = uri
        try:
            self._output = self.jetson_utils.videoOutput(uri, argv=list(argv or []))
        except Exception as error:  # jetson_utils raises bare Exception for every failure
            raise OSError(f"cannot open output {uri} with jetson_utils: {error}") from None
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        if frame.native is not None:
            image = frame.native  # already de-identified in place through the mapped view
        else:
            rgb = frame.image if frame.color == "rgb" else cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            image = self.jetson_utils.cudaFromNumpy(np.ascontiguousarray(rgb))
        self._output.Render(image)
        self.frames_written += 1
        if not self._output.IsStreaming():
            self.wants_stop = True

    def set_status(self, text: str) -> None:
        self._output.SetStatus(text)

    def close(self, complete: bool = True) -> None:
        self._output.Close()
