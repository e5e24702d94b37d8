"""Folders of images: read in natural order (2.png before 10.png), written under the same names."""
from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path

import cv2

from deid_sdk.io.base import VideoSink, VideoSource
from deid_sdk.io.frame import Frame
from deid_sdk.io.uri import IMAGE_EXTENSIONS

log = logging.getLogger("deid_sdk")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageFolderSource(VideoSource):
    """Every image in a folder (or one image file) as a sequence of frames at `fps`."""

    def __init__(self, path: str | Path, fps: float = 30.0, color: str = "bgr"):
        self.path = Path(path)
        self.uri = str(path)
        self.color = color
        if self.path.is_dir():
            files = [p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            self.files = sorted(files, key=_natural_key)
            if not self.files:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {self.path}")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise FileNotFoundError(f"image folder or file not found: {self.path}")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.time_base = 1 / self.fps
        self.frame_count = len(self.files)
        self._index = 0

    def read(self) -> Frame | None:
        """The next readable image. One that cannot be decoded (damaged, or not an image whatever its extension
        says) is skipped with a warning naming it and counted in `frames_missing`; OpenCV reads an image by its
        content, so a PNG named .jpg is read as what it is."""
        while True:
            if self._index >= len(self.files):
                return None
            file = self.files[self._index]
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is not None:
                break
            log.error("skipping %s: not a readable image", file)
            self.frames_missing += 1
            self._index += 1
        if self.color == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        frame = Frame(image=image, index=self._index, pts=self._index, time_base=self.time_base,
                      color=self.color, name=file.name)
        self._index += 1
        return frame


class ImageFolderSink(VideoSink):
    """Write frames as image files.

    `target` is a folder (frames keep their source file names, or get 000000.png, 000001.png, ...) or a
    printf pattern such as out/frame_%05d.jpg (numbered by frame index).
    """

    def __init__(self, target: str | Path, default_extension: str = ".png"):
        target = Path(target)
        self.uri = str(target)
        if "%" in target.name:
            self.folder, self.pattern = target.parent, target.name
            try:
                self.pattern % 0
            except (TypeError, ValueError):
                raise ValueError(f"image sink pattern {target.name!r}: expected one integer field like %06d") from None
        elif target.suffix.lower() in IMAGE_EXTENSIONS and not target.is_dir():
            raise ValueError(f"image sink {target}: a single image file cannot hold a video; give a folder "
                             f"or a pattern like {target.with_name(target.stem + '_%06d' + target.suffix)}")
        else:
            self.folder, self.pattern = target, None
        self.default_extension = default_extension
        self.folder.mkdir(parents=True, exist_ok=True)
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        if self.pattern is not None:
            name = self.pattern % frame.index
        elif frame.name is not None:
            name = frame.name
        else:
            name = f"{frame.index:06d}{self.default_extension}"
        image = frame.image if frame.color == "bgr" else cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        path = self.folder / name
        if not cv2.imwrite(str(path), image):
            raise OSError(f"cannot write image {path}")
        self.frames_written += 1
