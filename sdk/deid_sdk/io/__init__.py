"""Sources and sinks named by URIs (csi://0, /dev/video0, rtsp://..., a file, a folder, display://0) and the
threaded loop that runs a Filter between them. jetson_utils is used (zero copy) where it is importable.

    from deid_sdk.io import run_pipeline
    run_pipeline("in.mp4", "out.mp4")

    from deid_sdk import Filter
    from deid_sdk.io import open_source, open_sink
    camera = open_source("/dev/video0")
    window = open_sink("display://0", camera)
    with Filter(color=camera.color) as deid:
        while not window.wants_stop and (frame := camera.read()) is not None:
            deid(frame.image, inplace=True)
            window.write(frame)
"""
from __future__ import annotations

from deid_sdk.io.factory import open_sink, open_source, read_frames
from deid_sdk.io.frame import Frame
from deid_sdk.io.live_loop import LoopSummary
from deid_sdk.io.pipeline import run_pipeline
from deid_sdk.io.uri import MediaUri, parse_uri

__all__ = ["Frame", "LoopSummary", "MediaUri", "open_sink", "open_source", "parse_uri", "read_frames", "run_pipeline"]
