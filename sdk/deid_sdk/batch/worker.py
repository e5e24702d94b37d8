"""One batch worker: a Filter loaded once, then one file after another through `run_pipeline`.

Plain Python (no Ray here): deid_sdk.batch.run makes it a Ray actor, so models load once per worker, never per
file. Each file goes to its Job's partial name, is verified (frame count and duration equal the input's) and
only then renamed to its final name; on any failure the partial output is removed, so nothing half written stays.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from deid_sdk.batch.jobs import Job
from deid_sdk.batch.media_length import media_length
from deid_sdk.cli import one_line
from deid_sdk.io.live_loop import LoopSummary

_REPORT_EVERY_S = 0.5  # how often a worker tells the driver its frame count (progress bar)


@dataclass
class FileResult:
    source: str
    output: str
    frames: int = 0
    faces: int = 0
    fallback_faces: int = 0
    frames_blanked: int = 0       # the filter raised on them: written black (deid_sdk.io.live_loop)
    seconds: float = 0.0
    worker_pid: int = 0
    error: str = ""               # empty when the output is complete and in place


def remove_partial(job: Job) -> None:
    if job.partial.is_dir():
        shutil.rmtree(job.partial)
    elif job.partial.exists():
        job.partial.unlink()


class _FrameReports:
    """run_pipeline's progress hook: passes the frames written so far to `report`, at most every half second."""

    def __init__(self, report: Callable[[int], None]):
        self._report = report
        self._last = 0.0

    def start(self, total, live) -> None:
        self._report(0)

    def __call__(self, summary: LoopSummary) -> None:
        now = time.monotonic()
        if now - self._last >= _REPORT_EVERY_S:
            self._last = now
            self._report(summary.frames_written)

    def close(self) -> None:
        pass


class FileWorker:
    """`filter_options`: Filter options for BGR frames (a `target` image in BGR order); `pipeline_options`:
    run_pipeline's output options (audio, codec, crf, bitrate, image_fps); `report(source, frames)`: progress."""

    def __init__(self, filter_options: dict, pipeline_options: dict,
                 report: Callable[[str, int], None] | None = None):
        from deid_sdk.filter import Filter

        self.filter = Filter(**filter_options)
        self.pipeline_options = dict(pipeline_options)
        self.report = report

    def pid(self) -> int:
        return os.getpid()

    def process(self, job: Job) -> FileResult:
        from deid_sdk.io.pipeline import run_pipeline

        result = FileResult(source=str(job.source), output=str(job.output), worker_pid=os.getpid())
        start = time.perf_counter()
        self.filter.reset()  # a new video: no track (nor the identity it holds) carries over
        counts = {"faces": 0, "fallback": 0}

        def anonymize(image: np.ndarray, inplace: bool = True) -> np.ndarray:
            output = self.filter(image, inplace=inplace)
            counts["faces"] += len(self.filter.faces)
            counts["fallback"] += sum(face.status == "fallback" for face in self.filter.faces)
            return output

        progress = None
        if self.report is not None:
            progress = _FrameReports(lambda frames: self.report(str(job.source), frames))
        try:
            remove_partial(job)  # left by a worker killed mid-file: this attempt starts over
            summary = run_pipeline(str(job.source), job.partial_uri, anonymize=anonymize, io="opencv",
                                   progress=progress, **self.pipeline_options)
            image_fps = self.pipeline_options.get("image_fps", 30.0)
            wanted, written = media_length(job.source, image_fps), media_length(job.partial, image_fps)
            if not written.matches(wanted):
                raise ValueError(f"output incomplete: {written.frames} frames / {written.seconds:.3f} s, "
                                 f"input {wanted.frames} frames / {wanted.seconds:.3f} s")
            os.replace(job.partial, job.output)
            result.frames, result.frames_blanked = summary.frames_written, summary.frames_blanked
        except Exception as error:  # reported per file in the summary; the batch goes on
            remove_partial(job)
            result.error = f"{type(error).__name__}: {one_line(error)}"
        result.faces, result.fallback_faces = counts["faces"], counts["fallback"]
        result.seconds = time.perf_counter() - start
        if self.report is not None:
            self.report(str(job.source), result.frames)
        return result

    def close(self) -> None:
        self.filter.close()


def output_is_complete(job: Job, image_fps: float = 30.0) -> bool:
    """True when the final output exists with the input's frame count and duration (a re-run skips it)."""
    if not job.output.exists():
        return False
    try:
        return media_length(job.output, image_fps).matches(media_length(job.source, image_fps))
    except (OSError, ValueError):
        return False
