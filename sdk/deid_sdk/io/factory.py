"""Pick the implementation for a source or sink URI: jetson_utils where it is importable and the URI is a
camera, stream or display; PyAV for video files (audio and timestamps); OpenCV for the rest."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from deid_sdk.io.base import VideoSink, VideoSource
from deid_sdk.io.jetson import JetsonSink, JetsonSource, load_jetson_utils
from deid_sdk.io.uri import MediaUri, parse_uri

log = logging.getLogger("deid_sdk")

IO_CHOICES = ("auto", "jetson", "opencv")


def _jetson_module(io: str):
    if io not in IO_CHOICES:
        raise ValueError(f"io must be one of {', '.join(map(repr, IO_CHOICES))}, got {io!r}")
    if io == "opencv":
        return None
    module = load_jetson_utils()
    if io == "jetson" and module is None:
        raise ImportError("io='jetson' needs jetson_utils (build jetson-inference); use io='auto' or 'opencv'")
    return module


def open_source(uri: str, *, io: str = "auto", image_fps: float = 30.0, reconnect_attempts: int | None = None,
                jetson_argv: list[str] | None = None) -> VideoSource:
    """Open a source URI. Raises ValueError (unknown or unsupported URI, unreadable file),
    FileNotFoundError (missing file or camera) or OSError (camera or stream that cannot be opened)."""
    parsed = parse_uri(uri, "source")
    jetson = _jetson_module(io)
    if parsed.kind == "images":
        from deid_sdk.io.image_folder import ImageFolderSource
        return ImageFolderSource(parsed.location, fps=image_fps)
    if parsed.kind == "video":
        from deid_sdk.io.pyav_video import VideoFileSource
        return VideoFileSource(parsed.location)
    if jetson is not None:
        source_uri = parsed.location if parsed.kind == "v4l2" else parsed.text
        return JetsonSource(source_uri, argv=jetson_argv, reconnect_attempts=reconnect_attempts, module=jetson)
    from deid_sdk.io.opencv_capture import CaptureSource
    return CaptureSource(parsed, reconnect_attempts=reconnect_attempts)


def open_sink(uri: str, source: VideoSource, *, io: str = "auto", audio: bool = True, codec: str | None = None,
              crf: int | None = None, bitrate: int | None = None, jetson_argv: list[str] | None = None) -> VideoSink:
    """Open a sink URI for frames from `source` (its frame rate and audio are carried over)."""
    parsed = parse_uri(uri, "sink")
    _refuse_overwriting_the_source(parsed, source)
    jetson = _jetson_module(io)
    if parsed.kind == "images":
        from deid_sdk.io.image_folder import ImageFolderSink
        return ImageFolderSink(parsed.location)
    if parsed.kind == "video":
        from deid_sdk.io.pyav_video import VideoFileSink
        return VideoFileSink(parsed.location, fps=source.fps, audio_from=source.audio_path if audio else None,
                             codec=codec, crf=crf, bitrate=bitrate)
    if jetson is not None:
        return JetsonSink(parsed.text, argv=jetson_argv, module=jetson)
    if parsed.kind == "display":
        from deid_sdk.io.display import DisplaySink
        return DisplaySink(parsed.location)
    return _network_sink(parsed, source, codec=codec, bitrate=bitrate)


def _network_sink(parsed: MediaUri, source: VideoSource, *, codec: str | None, bitrate: int | None) -> VideoSink:
    from deid_sdk.io.pyav_video import StreamSink

    if parsed.location.startswith(f"{parsed.scheme}://@") or parsed.location.startswith(f"{parsed.scheme}://0.0.0.0"):
        if parsed.scheme.startswith("rtsp"):
            raise ValueError(f"{parsed.text}: serving RTSP needs jetson_utils; without it deid publishes to an "
                             "RTSP server instead: rtsp://SERVER:8554/PATH (e.g. MediaMTX)")
        raise ValueError(f"{parsed.text}: an RTP sink needs the receiver's address: rtp://HOST:PORT")
    log.info("%s: sending %s with FFmpeg (no audio)", parsed.text,
             "to an RTSP server" if parsed.scheme.startswith("rtsp") else "RTP/MPEG-TS")
    return StreamSink(parsed.location, parsed.scheme, fps=source.fps, codec=codec, bitrate=bitrate or 4_000_000,
                      pace=not source.is_live)


def _refuse_overwriting_the_source(sink: MediaUri, source: VideoSource) -> None:
    source_path = getattr(source, "path", None)
    if source_path is None or sink.kind not in ("images", "video"):
        return
    sink_path = Path(sink.location)
    if "%" in sink_path.name:
        sink_path = sink_path.parent
    if sink_path.exists() and sink_path.resolve() == Path(source_path).resolve():
        raise ValueError(f"sink {sink.text!r} is the source itself; choose another output so the original "
                         "stays untouched")


def read_frames(uri: str, max_frames: int | None = None) -> list[np.ndarray]:
    """The first `max_frames` frames of a video file or image folder (all when None) as BGR arrays in memory, read
    through the same source as `deid run` (benchmarks and evaluation); raises if none can be decoded."""
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1 or None, got {max_frames}")
    frames = []
    with open_source(uri, io="opencv") as source:
        if source.is_live:
            raise ValueError(f"read_frames reads files and folders, got the live source {uri!r}")
        while max_frames is None or len(frames) < max_frames:
            frame = source.read()
            if frame is None:
                break
            frames.append(frame.image)
    if not frames:
        raise ValueError(f"no frames could be decoded from {uri}")
    return frames
