"""Capture, filter and output overlap: capture thread -> bounded queue -> filter -> bounded queue -> output thread.

- Files never lose a frame: the capture thread waits when the queue is full.
- Live sources drop the oldest queued frame instead, so latency stays bounded when the filter is slower
  than the camera. Dropped frames are counted; their timestamps leave a gap, so duration stays true.
- Privacy: a frame reaches the output queue only after the filter returned for it. If the filter raises
  (or returns something that is not a frame of the same shape), the frame is blacked out, never passed on.
- Stopping (a signal, a closed window, an output error) ends capture at once; frames already filtered are
  still written, so the sink can be closed into a playable file with every frame processed so far.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from deid_sdk.io.base import VideoSink, VideoSource
from deid_sdk.io.frame import Frame

log = logging.getLogger("deid_sdk")

_END = object()     # end-of-stream marker passed through both queues
_POLL = 0.1         # seconds between checks of the stop flag while waiting on a queue


@dataclass
class LoopSummary:
    frames_read: int = 0
    frames_written: int = 0
    frames_dropped: int = 0       # live sources only: skipped to keep up
    frames_blanked: int = 0       # the filter failed on them: written black
    frames_missing: int = 0       # a damaged file or folder could not give them (VideoSource.frames_missing)
    seconds: float = 0.0
    reached_end: bool = False     # the source ran out (every frame of a file was read)
    reached_limit: bool = False   # max_frames frames were read
    error: BaseException | None = None
    privacy: object | None = None  # the Filter's deid_sdk.privacy.PrivacySummary (run_pipeline's own Filter)

    @property
    def fps(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0


def protect_frame(anonymize: Callable[..., np.ndarray], frame: Frame, faults_logged: set[str] | None = None) -> bool:
    """De-identify `frame.image` in place; black it out if that fails. True when the filter succeeded.

    A failure is logged once per kind (exception type and the first part of its message) when `faults_logged`
    (the kinds already logged) is given, so a fault on every frame of a long run is one line, not one per frame;
    the count of frames it blacked out is the loop summary's `frames_blanked`."""
    image = frame.image
    try:
        result = anonymize(image, inplace=True)
        if result is not image:
            if not isinstance(result, np.ndarray) or result.shape != image.shape or result.dtype != image.dtype:
                raise TypeError(f"filter returned {type(result).__name__} {getattr(result, 'shape', '')}, "
                                f"expected an array of shape {image.shape}")
            image[...] = result
        return True
    except Exception as error:  # whatever went wrong, the original pixels must not get out
        image[...] = 0
        kind = f"{type(error).__name__}: {str(error).split(':')[0]}"
        if faults_logged is None or kind not in faults_logged:
            if faults_logged is not None:
                faults_logged.add(kind)
            log.error("filter failed on frame %d (%s: %s); writing it black%s", frame.index, type(error).__name__,
                      error, "" if faults_logged is None else " (logged once per kind of fault)")
        return False


class LiveLoop:
    def __init__(self, source: VideoSource, sink: VideoSink, anonymize: Callable[..., np.ndarray], *,
                 max_frames: int | None = None, queue_size: int = 4,
                 on_frame_written: Callable[[LoopSummary], None] | None = None):
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.source = source
        self.sink = sink
        self.anonymize = anonymize
        self.max_frames = max_frames
        size = min(queue_size, getattr(source, "queue_limit", queue_size))
        self._captured: queue.Queue = queue.Queue(maxsize=size)
        self._filtered: queue.Queue = queue.Queue(maxsize=size)
        self.on_frame_written = on_frame_written
        self.summary = LoopSummary()
        self._faults_logged: set[str] = set()
        self._capture_error: BaseException | None = None
        self._output_error: BaseException | None = None

    def run(self, stop: threading.Event) -> LoopSummary:
        """Run until the source ends, max_frames, or `stop` is set (from a signal handler or another thread).

        The filter runs in the calling thread, unless the sink must be driven from it (a window: GUI toolkits
        and jetson_utils' OpenGL display want the thread that created them); then the two trade places.
        """
        summary = self.summary
        start = time.perf_counter()
        output_finished = threading.Event()
        capture = threading.Thread(target=self._capture, args=(stop,), name="deid-capture", daemon=True)
        capture.start()
        try:
            if getattr(self.sink, "main_thread_only", False):
                worker = threading.Thread(target=self._filter_stage, args=(stop, output_finished),
                                          name="deid-filter", daemon=True)
                worker.start()
                try:
                    self._output(stop)
                except BaseException:
                    stop.set()
                    raise
                finally:
                    output_finished.set()
                    worker.join()
            else:
                worker = threading.Thread(target=self._output_stage, args=(stop, output_finished),
                                          name="deid-output", daemon=True)
                worker.start()
                try:
                    self._filter_stage(stop, output_finished)
                finally:
                    worker.join()
        finally:
            self.source.stop()
            capture.join(timeout=10)
            summary.seconds = time.perf_counter() - start
            summary.frames_missing = getattr(self.source, "frames_missing", 0)
            summary.error = self._capture_error or self._output_error
        return summary

    def _filter_stage(self, stop: threading.Event, output_finished: threading.Event) -> None:
        try:
            self._filter(stop, output_finished)
        finally:
            self._put_until(self._filtered, _END, output_finished.is_set)

    def _output_stage(self, stop: threading.Event, output_finished: threading.Event) -> None:
        try:
            self._output(stop)
        finally:
            output_finished.set()

    # -- the three stages --------------------------------------------------------------------------
    def _capture(self, stop: threading.Event) -> None:
        summary = self.summary
        try:
            while not stop.is_set():
                if self.max_frames is not None and summary.frames_read >= self.max_frames:
                    summary.reached_limit = True
                    break
                frame = self.source.read()
                if frame is None:
                    summary.reached_end = not stop.is_set()
                    break
                summary.frames_read += 1
                if self.source.is_live:
                    self._put_dropping_oldest(frame)
                else:
                    self._put_until(self._captured, frame, stop.is_set)
        except BaseException as error:  # reported by run(); the loop ends as at end of stream
            self._capture_error = error
            summary.reached_end = False
        finally:
            self._put_until(self._captured, _END, stop.is_set)

    def _filter(self, stop: threading.Event, output_finished: threading.Event) -> None:
        # A filter with prepare() (deid_sdk.pipelined.DetectAhead) starts on the next queued frame before this one
        # is filtered; frames are still filtered and passed on one by one, in order, each after its own result.
        summary = self.summary
        prepare = getattr(self.anonymize, "prepare", None)
        prepared: deque[Frame] = deque()
        ended = False
        while not stop.is_set():
            if not ended and (not prepared or (prepare is not None and len(prepared) < 2)):
                try:
                    frame = self._captured.get(timeout=_POLL) if not prepared else self._captured.get_nowait()
                except queue.Empty:
                    if not prepared:
                        continue
                    frame = None  # nothing queued: filter the frame in hand now (live latency)
                if frame is _END:
                    ended = True
                elif frame is not None:
                    if prepare is not None:
                        prepare(frame.image)
                    prepared.append(frame)
                    continue
            if not prepared:
                return
            frame = prepared.popleft()
            if not protect_frame(self.anonymize, frame, self._faults_logged):
                summary.frames_blanked += 1
            if not self._put_until(self._filtered, frame, output_finished.is_set):
                return

    def _output(self, stop: threading.Event) -> None:
        summary = self.summary
        while True:
            frame = self._filtered.get()
            if frame is _END:
                return
            if self._output_error is not None:
                continue  # keep draining so the filter never blocks on a dead output
            try:
                self.sink.write(frame)
            except BaseException as error:
                self._output_error = error
                summary.reached_end = False
                stop.set()
                continue
            summary.frames_written += 1
            if self.on_frame_written is not None:
                self.on_frame_written(summary)
            if self.sink.wants_stop:
                stop.set()

    # -- queue helpers ---------------------------------------------------------------------------
    def _put_dropping_oldest(self, frame: Frame) -> None:
        while True:
            try:
                self._captured.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self._captured.get_nowait()
                    self.summary.frames_dropped += 1
                except queue.Empty:
                    pass

    @staticmethod
    def _put_until(target: queue.Queue, item, give_up: Callable[[], bool]) -> bool:
        """Blocking put that returns False as soon as give_up() is true."""
        while True:
            try:
                target.put(item, timeout=_POLL)
                return True
            except queue.Full:
                if give_up():
                    return False
