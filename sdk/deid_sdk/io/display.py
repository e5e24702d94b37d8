"""A window on screen through OpenCV's highgui (q or Esc, or closing the window, stops the run)."""
from __future__ import annotations

import os
import sys

import cv2

from deid_sdk.io.base import VideoSink
from deid_sdk.io.frame import Frame

_STOP_KEYS = (ord("q"), 27)


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class DisplaySink(VideoSink):
    main_thread_only = True  # windows belong to the thread that made them
    def __init__(self, display: str = "0", title: str = "deid"):
        self.uri = f"display://{display}"
        if not display_available():
            raise OSError(f"{self.uri}: no display available (DISPLAY is not set); write to a file instead, "
                          "e.g. --sink out.mp4")
        self.title = title
        self._shown = False
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        image = frame.image if frame.color == "bgr" else cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        try:
            cv2.imshow(self.title, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as error:
            raise OSError(f"{self.uri}: cannot show a window ({str(error).strip().splitlines()[-1]})") from None
        self._shown = True
        self.frames_written += 1
        if key in _STOP_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.wants_stop = True

    def close(self, complete: bool = True) -> None:
        if self._shown:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._shown = False
