"""Cameras and network streams through OpenCV (used when jetson_utils is not available).

A stream that drops is reopened with exponential backoff (deid_sdk.io.reconnect). A camera or stream that
cannot be opened at the start is an error (the user named the wrong thing); one that drops later is retried
`reconnect_attempts` times.
"""
from __future__ import annotations

import os
import threading
import time
from fractions import Fraction

import cv2

from deid_sdk.io.base import VideoSource
from deid_sdk.io.frame import Frame
from deid_sdk.io.reconnect import reopen_with_backoff
from deid_sdk.io.uri import MediaUri

_TIME_BASE = Fraction(1, 1000)   # live frames are stamped with the capture clock in milliseconds
_OPEN_TIMEOUT_MS = 8000
_READ_TIMEOUT_MS = 5000


def opencv_has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def csi_pipeline(sensor_id: str, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    """GStreamer pipeline for a Jetson CSI camera, for OpenCV builds with GStreamer."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! video/x-raw(memory:NVMM),width={width},height={height},"
            f"framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=2")


class CaptureSource(VideoSource):
    is_live = True

    def __init__(self, uri: MediaUri, color: str = "bgr", reconnect_attempts: int | None = None,
                 initial_backoff: float = 0.5, max_backoff: float = 10.0):
        self.uri = uri.text
        self.media_uri = uri
        self.color = color
        # Cameras rarely come back by themselves; network streams often do.
        self.reconnect_attempts = (0 if uri.kind == "v4l2" else 1_000_000) if reconnect_attempts is None \
            else reconnect_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.reconnects = 0
        self._stop = threading.Event()
        self._index = 0
        self._origin: float | None = None
        self._capture = self._open()
        if self._capture is None:
            raise self._open_error()
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = Fraction(fps).limit_denominator(1001) if 0 < fps < 1000 else None
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def _open(self) -> cv2.VideoCapture | None:
        uri = self.media_uri
        if uri.kind == "v4l2":
            if not os.path.exists(uri.location):
                raise FileNotFoundError(f"camera {uri.location} not found (no such device); "
                                        "list cameras with `v4l2-ctl --list-devices`")
            capture = cv2.VideoCapture(uri.location, cv2.CAP_V4L2)
        elif uri.kind == "csi":
            if not opencv_has_gstreamer():
                raise ValueError(f"{uri.text}: CSI cameras need jetson_utils (jetson-inference) or an OpenCV built "
                                 "with GStreamer, and neither is available; for a USB camera use v4l2:///dev/video0")
            capture = cv2.VideoCapture(csi_pipeline(uri.location), cv2.CAP_GSTREAMER)
        else:
            location = uri.location
            if uri.scheme == "rtp":  # jetson-utils writes rtp://@:5000 for "listen on port 5000"
                location = location.replace("rtp://@:", "rtp://0.0.0.0:", 1)
            capture = cv2.VideoCapture(location, cv2.CAP_FFMPEG,
                                       [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _OPEN_TIMEOUT_MS,
                                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, _READ_TIMEOUT_MS])
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def _open_error(self) -> OSError:
        uri = self.media_uri
        if uri.kind == "v4l2":
            return OSError(f"cannot open camera {uri.location} (busy, no permission, or not a capture device)")
        if uri.kind == "csi":
            return OSError(f"cannot open CSI camera {uri.location} through GStreamer")
        return OSError(f"cannot open stream {uri.text} (unreachable, wrong path, or no video in it)")

    def read(self) -> Frame | None:
        while not self._stop.is_set():
            ok, image = self._capture.read() if self._capture is not None else (False, None)
            if ok and image is not None:
                return self._frame(image)
            if not self._reconnect():
                return None
        return None

    def _frame(self, image) -> Frame:
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        if self.color == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        frame = Frame(image=image, index=self._index, pts=round((now - self._origin) * 1000),
                      time_base=_TIME_BASE, color=self.color)
        self._index += 1
        return frame

    def _reconnect(self) -> bool:
        """Reopen after a drop (deid_sdk.io.reconnect). False: give up (the end of the source)."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._capture = reopen_with_backoff(self._open, uri=self.uri, attempts=self.reconnect_attempts,
                                            stop=self._stop, initial_backoff=self.initial_backoff,
                                            max_backoff=self.max_backoff)
        if self._capture is None:
            return False
        self.reconnects += 1
        return True

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._capture is not None:
            self._capture.release()
            self._capture = None
