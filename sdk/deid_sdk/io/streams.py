"""run_streams(): several source -> sink pairs served from one process with one set of models.

    results = run_streams([("cam1.mp4", "out1.mp4"), ("rtsp://cam2/s", "out2.mkv")], filter_options={...})
    for result in results: print(result.sink, result.summary.frames_written, result.error)

One thread per stream runs the usual `run_pipeline` (its own source, live loop, sink and Filter, so its own tracks);
the Filters share the models of one `SharedModels`, the faces of all streams going through one generator call per
tick. A stream that fails ends alone: the others go on, and its result holds the error. Each stream has its own
stop flag (an output error or a closed window stops that stream only); `stop` stops them all.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

from deid_sdk.io.live_loop import LoopSummary
from deid_sdk.io.pipeline import run_pipeline
from deid_sdk.io.uri import parse_uri

log = logging.getLogger("deid_sdk")

_POLL = 0.1  # seconds between checks of `stop` while the streams run


@dataclass
class StreamResult:
    source: str
    sink: str
    summary: LoopSummary | None = None    # None when the stream failed before or while running
    error: BaseException | None = None

    @property
    def lost_work(self) -> bool:
        """The stream failed, wrote frames black or could not read some: its output is incomplete."""
        return (self.error is not None or self.summary is None or self.summary.frames_blanked > 0
                or self.summary.frames_missing > 0)


@dataclass
class StreamsReport:
    streams: list[StreamResult]
    generator_batches: Counter         # rows per generator call -> calls (empty without a generator)


def check_pairs(pairs: list[tuple[str, str]]) -> None:
    """At least one pair, and each sink in one pair only (two streams writing one file would garble it)."""
    if not pairs:
        raise ValueError("expected at least one (source, sink) pair, got none")
    sinks = [sink for _, sink in pairs]
    repeated = sorted({sink for sink in sinks if sinks.count(sink) > 1})
    if repeated:
        raise ValueError(f"each stream needs its own sink, got {', '.join(repeated)} more than once")


def run_streams(pairs: list[tuple[str, str]], *, filter_options: dict | None = None,
                stop: threading.Event | None = None, **pipeline_options) -> StreamsReport:
    """De-identify every pair until each source ends (or max_frames, or `stop`); `pipeline_options` as for
    `run_pipeline` (audio, max_frames, queue_size, io, codec, crf, bitrate, image_fps, reconnect_attempts)."""
    from deid_sdk.shared_models import SharedModels

    check_pairs(pairs)
    for source, sink in pairs:  # a mistyped URI is reported before any model loads
        parse_uri(source, "source")
        parse_uri(sink, "sink")
    stop = stop or threading.Event()
    filter_options = dict(filter_options or {})
    models = SharedModels.load(**filter_options)
    results = [StreamResult(source, sink) for source, sink in pairs]
    stream_stops = [threading.Event() for _ in pairs]

    def serve(result: StreamResult, stream_stop: threading.Event) -> None:
        try:
            result.summary = run_pipeline(result.source, result.sink,
                                          filter_options=dict(filter_options, models=models),
                                          wrap_filter=models.per_frame, stop=stream_stop, **pipeline_options)
        except BaseException as error:  # this stream only: reported in its result, the others go on
            log.error("stream %s -> %s failed: %s: %s", result.source, result.sink, type(error).__name__, error)
            result.error = error

    threads = [threading.Thread(target=serve, args=(result, stream_stop), name=f"deid-stream-{index}", daemon=True)
               for index, (result, stream_stop) in enumerate(zip(results, stream_stops))]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(_POLL)
            if stop.is_set():
                for stream_stop in stream_stops:
                    stream_stop.set()
    batches = Counter(models.generator.batch_rows) if models.generator is not None else Counter()
    return StreamsReport(streams=results, generator_batches=batches)
