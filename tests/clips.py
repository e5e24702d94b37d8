"""Short real clips for tests, cut from the shared videos."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av


def cut_clip(source: Path, target: Path, frames: int, rate: int = 25) -> None:
    """The first `frames` frames of `source`, re-encoded at a fixed rate (no audio)."""
    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        stream = None
        for index, decoded in enumerate(reader.decode(video=0)):
            if index == frames:
                break
            image = decoded.to_ndarray(format="bgr24")
            if stream is None:
                stream = writer.add_stream("libx264", rate=rate)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
            picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            picture.pts, picture.time_base = index, Fraction(1, rate)
            for packet in stream.encode(picture):
                writer.mux(packet)
        for packet in stream.encode(None):
            writer.mux(packet)
