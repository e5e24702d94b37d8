"""run_pipeline(): source URI -> Filter -> sink URI, the whole of `deid run` without the command line.

    from deid_sdk.io import run_pipeline
    summary = run_pipeline("in.mp4", "out.mp4")            # audio kept, same fps and duration
    print(summary.frames_written, summary.fps)
"""
from __future__ import annotations

import threading
from typing import Callable, Protocol

import numpy as np

from deid_sdk.io.factory import open_sink, open_source
from deid_sdk.io.live_loop import LiveLoop, LoopSummary
from deid_sdk.io.uri import parse_uri


class ProgressReporter(Protocol):
    """What `progress=` takes (deid_sdk.cli.progress.Progress is one)."""

    def start(self, total: int | None, live: bool) -> None: ...
    def __call__(self, summary: LoopSummary) -> None: ...  # after every frame written
    def close(self) -> None: ...


def run_pipeline(source: str, sink: str, *, filter_options: dict | None = None, audio: bool = True,
                 max_frames: int | None = None, queue_size: int = 4, io: str = "auto", codec: str | None = None,
                 crf: int | None = None, bitrate: int | None = None, image_fps: float = 30.0,
                 reconnect_attempts: int | None = None, stop: threading.Event | None = None,
                 progress: ProgressReporter | None = None,
                 anonymize: Callable[..., np.ndarray] | None = None,
                 wrap_filter: Callable[[Callable], Callable[..., np.ndarray]] | None = None,
                 detect_ahead: bool = True) -> LoopSummary:
    """De-identify every frame from `source` into `sink` until the source ends, `max_frames`, or `stop` is set.

    `filter_options`: Filter options (a `target` image in BGR order). `anonymize` replaces the default
    `Filter(**filter_options)` (any callable taking (image, inplace=True)). `wrap_filter(filter)` is called
    instead of the filter when given (deid_sdk.shared_models: several streams batching one generator).
    `detect_ahead`: the default Filter detects the next frame in a worker thread while it finishes the current one
    (deid_sdk.pipelined; same output, both cores busy); False runs every stage of a frame in the filter thread.
    The sink is always closed into a playable result, also when a stage fails; the failure is then raised.
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    stop = stop or threading.Event()
    parse_uri(sink, "sink")  # a mistyped sink is reported before anything is opened
    video_source = open_source(source, io=io, image_fps=image_fps, reconnect_attempts=reconnect_attempts)
    owned_filter = None
    try:
        video_sink = open_sink(sink, video_source, io=io, audio=audio, codec=codec, crf=crf, bitrate=bitrate)
        if anonymize is None:
            from deid_sdk.filter import Filter

            options = dict(filter_options or {})
            target = options.get("target")
            if video_source.color == "rgb" and isinstance(target, np.ndarray) and target.ndim == 3:
                options["target"] = np.ascontiguousarray(target[:, :, ::-1])
            owned_filter = anonymize = Filter(color=video_source.color, **options)
            if detect_ahead:
                from deid_sdk.pipelined import DetectAhead

                owned_filter = anonymize = DetectAhead(owned_filter)
        if wrap_filter is not None:
            anonymize = wrap_filter(anonymize)
        total = video_source.frame_count
        if total is not None and max_frames is not None:
            total = min(total, max_frames)
        if progress is not None:
            progress.start(total, live=video_source.is_live)
        loop = LiveLoop(video_source, video_sink, anonymize, max_frames=max_frames, queue_size=queue_size,
                        on_frame_written=progress)
        summary = LoopSummary()
        try:
            summary = loop.run(stop)
        finally:
            if progress is not None:
                progress.close()
            try:
                video_sink.close(complete=summary.reached_end and summary.error is None)
            except Exception as error:  # report the first failure, not the close after it
                summary.error = summary.error or error
    finally:
        video_source.close()
        if owned_filter is not None:
            owned_filter.close()
    if summary.error is not None:
        raise summary.error
    if owned_filter is not None:
        summary.privacy = owned_filter.privacy_summary
    return summary
