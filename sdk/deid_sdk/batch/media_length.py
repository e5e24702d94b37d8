"""How long a video file or image folder is, read from its container without decoding: what `deid batch` compares
to call an output complete (same frame count and duration as its input)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from deid_sdk.io.uri import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class MediaLength:
    frames: int
    seconds: float   # last frame's end minus first frame's start (video); frames / fps (image folder)

    def matches(self, other: MediaLength) -> bool:
        # Both come from the same timestamps (the sink keeps the source's pts), so they agree to rounding.
        return self.frames == other.frames and abs(self.seconds - other.seconds) < 1e-6


def media_length(path: str | Path, image_fps: float = 30.0) -> MediaLength:
    """Frames and duration of a video file (demuxed packets) or an image folder (image files). Raises ValueError
    for a file that cannot be read as video, FileNotFoundError for a missing path."""
    path = Path(path)
    if path.is_dir():
        frames = sum(1 for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        return MediaLength(frames, frames / float(Fraction(image_fps).limit_denominator(1001)))
    if not path.is_file():
        raise FileNotFoundError(f"not found: {path}")
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            frames, start, end = 0, None, None
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:  # the end-of-stream marker, or no timestamp
                    continue
                frames += 1
                start = packet.pts if start is None else min(start, packet.pts)
                end = max(end or packet.pts, packet.pts + (packet.duration or 0))
    except av.FFmpegError as error:
        raise ValueError(f"{path}: cannot read as video ({error})") from None
    seconds = float((end - start) * stream.time_base) if frames else 0.0
    return MediaLength(frames, seconds)
