"""The threaded loop: never drops file frames, drops only on live sources, never lets an original frame out,
stops cleanly; the OpenCV stream reconnect and the jetson_utils zero-copy wrappers.

No test depends on timing: a slow filter is one that waits for an event the source sets (the queue is full, the
camera has moved on), and stops come from the source or the sink at a given frame, never from a timer.
"""
from __future__ import annotations

import threading
import types
from fractions import Fraction

import numpy as np
import pytest

from deid_sdk.io.base import VideoSink, VideoSource
from deid_sdk.io.frame import Frame
from deid_sdk.io.jetson import JetsonSink, JetsonSource
from deid_sdk.io.live_loop import LiveLoop, protect_frame
from deid_sdk.io.opencv_capture import CaptureSource
from deid_sdk.io.uri import parse_uri


WAIT = 30.0  # seconds before a test gives up waiting for an event that should come at once


class CountingSource(VideoSource):
    """Frames whose pixels all equal their index (mod 250) + 1, so a sink can tell which one it got.
    `reached(n)` is an event set once n frames were read."""

    def __init__(self, count: int, live: bool = False):
        self.count, self.is_live = count, live
        self.frame_count = None if live else count
        self.fps = Fraction(30)
        self.index = 0
        self.read_events: dict[int, threading.Event] = {}

    def reached(self, frames: int) -> threading.Event:
        return self.read_events.setdefault(frames, threading.Event())

    def read(self):
        if self.index >= self.count:
            return None
        image = np.full((8, 8, 3), self.index % 250 + 1, np.uint8)
        frame = Frame(image=image, index=self.index, pts=self.index, time_base=Fraction(1, 30))
        self.index += 1
        self.reached(self.index).set()
        return frame


class ListSink(VideoSink):
    """Keeps what it gets; asks to stop (`stop_after`) or sets a stop event (`stop_event`) at a given frame."""

    def __init__(self, stop_after: int | None = None, stop_event: tuple[int, threading.Event] | None = None):
        self.frames: list[Frame] = []
        self.stop_after, self.stop_event = stop_after, stop_event

    def write(self, frame):
        self.frames.append(frame)
        if self.stop_after is not None and len(self.frames) >= self.stop_after:
            self.wants_stop = True
        if self.stop_event is not None and len(self.frames) == self.stop_event[0]:
            self.stop_event[1].set()


def invert(image, inplace=False):
    """Stands in for the filter: a visible change, done in place."""
    np.subtract(255, image, out=image)
    return image


def filter_waiting_for(event: threading.Event):
    """A filter slower than its source: its first call waits until the source got `event` far."""
    def slow_invert(image, inplace=False):
        assert event.wait(WAIT), "the source never got that far"
        return invert(image)
    return slow_invert


def test_file_source_never_drops_even_with_a_slow_filter():
    source, sink = CountingSource(40), ListSink()
    # The filter holds back until the capture thread has read more frames than the queue holds (it must wait).
    summary = LiveLoop(source, sink, filter_waiting_for(source.reached(4)), queue_size=2).run(threading.Event())
    assert summary.reached_end and summary.error is None
    assert (summary.frames_read, summary.frames_written, summary.frames_dropped) == (40, 40, 0)
    assert [f.index for f in sink.frames] == list(range(40))
    assert all(int(f.image[0, 0, 0]) == 255 - (f.index % 250 + 1) for f in sink.frames)


def test_live_source_drops_oldest_to_keep_up():
    source, sink = CountingSource(60, live=True), ListSink()
    # The camera delivers all 60 frames before the filter finishes its first: the loop must drop.
    summary = LiveLoop(source, sink, filter_waiting_for(source.reached(60)), queue_size=2).run(threading.Event())
    assert summary.frames_dropped > 0
    assert summary.frames_written + summary.frames_dropped == summary.frames_read == 60
    indices = [f.index for f in sink.frames]
    assert indices == sorted(indices) and indices[-1] == 59  # order kept, newest frames survive


def test_max_frames_is_a_limit_not_the_end():
    summary = LiveLoop(CountingSource(40), ListSink(), invert, max_frames=7).run(threading.Event())
    assert summary.frames_written == 7 and summary.reached_limit and not summary.reached_end


def test_a_failing_filter_never_lets_the_original_out():
    calls = []

    def flaky(image, inplace=False):
        calls.append(1)
        if len(calls) % 3 == 0:
            image[:4] = 0  # half done, then a crash
            raise RuntimeError("model crashed")
        return invert(image)

    sink = ListSink()
    summary = LiveLoop(CountingSource(12), sink, flaky).run(threading.Event())
    assert summary.frames_written == 12 and summary.frames_blanked == 4
    for frame in sink.frames:
        original = frame.index % 250 + 1
        assert not np.any(frame.image == original)  # each frame is either filtered or black
    assert sum(not frame.image.any() for frame in sink.frames) == 4


def test_protect_frame_rejects_a_wrong_result():
    frame = Frame(image=np.full((4, 4, 3), 9, np.uint8), index=0, pts=0, time_base=Fraction(1, 30))
    assert not protect_frame(lambda image, inplace: np.zeros((2, 2, 3), np.uint8), frame)
    assert not frame.image.any()
    frame.image[...] = 9
    assert protect_frame(lambda image, inplace: np.full_like(image, 7), frame)  # a new array is copied back
    assert (frame.image == 7).all()


def test_stop_event_ends_a_run_and_keeps_what_was_filtered():
    stop = threading.Event()
    sink = ListSink(stop_event=(5, stop))  # a signal arrives after the fifth frame was written
    summary = LiveLoop(CountingSource(10_000), sink, invert).run(stop)
    assert not summary.reached_end and summary.error is None
    assert 5 <= summary.frames_written < 10_000 and len(sink.frames) == summary.frames_written
    assert [f.index for f in sink.frames] == list(range(summary.frames_written))  # nothing filtered was lost


def test_sink_can_ask_to_stop():
    sink = ListSink(stop_after=5)
    summary = LiveLoop(CountingSource(10_000), sink, invert).run(threading.Event())
    assert 5 <= summary.frames_written < 10_000 and not summary.reached_end


def test_output_error_is_reported_and_the_loop_ends():
    class BrokenSink(ListSink):
        def write(self, frame):
            if frame.index == 3:
                raise OSError("disk full")
            super().write(frame)

    summary = LiveLoop(CountingSource(1000), BrokenSink(), invert).run(threading.Event())
    assert isinstance(summary.error, OSError) and summary.frames_written == 3


class FakeCapture:
    """cv2.VideoCapture stand-in: `frames` good reads, then the stream is gone."""

    def __init__(self, frames: int, value: int):
        self.frames, self.value, self.released = frames, value, False

    def read(self):
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, np.full((6, 6, 3), self.value, np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


def test_stream_drop_is_reopened_with_backoff(monkeypatch):
    opened = iter([FakeCapture(3, 10), None, None, FakeCapture(2, 20)])
    monkeypatch.setattr(CaptureSource, "_open", lambda self: next(opened))
    waits = []
    source = CaptureSource(parse_uri("rtsp://camera/stream"), initial_backoff=0.01, max_backoff=0.03)
    original_wait = source._stop.wait
    source._stop.wait = lambda delay: waits.append(delay) or original_wait(0)
    values = [int(source.read().image[0, 0, 0]) for _ in range(5)]
    assert values == [10, 10, 10, 20, 20]
    assert waits == [0.01, 0.02, 0.03] and source.reconnects == 1


def test_camera_that_goes_away_ends_the_run(monkeypatch, tmp_path):
    device = tmp_path / "video7"
    device.touch()
    monkeypatch.setattr(CaptureSource, "_open", lambda self: FakeCapture(2, 5))
    source = CaptureSource(parse_uri(f"v4l2://{device}"))
    assert source.read() is not None and source.read() is not None
    assert source.read() is None  # cameras: no reconnect by default


def test_missing_camera_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match=r"camera /dev/video97 not found"):
        CaptureSource(parse_uri("/dev/video97"))


def fake_jetson_utils():
    """Enough of jetson_utils to run the wrappers: cudaImage is a NumPy buffer, cudaToNumpy a view of it."""
    rendered = []

    class CudaImage:
        def __init__(self, array):
            self.array, self.timestamp = array, 0

    class VideoSource:
        def __init__(self, uri, argv=()):
            self.left = 3

        def Capture(self, format="rgb8", timeout=-1):
            if self.left == 0:
                return None
            self.left -= 1
            return CudaImage(np.full((4, 6, 3), 100, np.uint8))

        def IsStreaming(self):
            return self.left > 0

        GetWidth, GetHeight, GetFrameRate = (lambda self: 6), (lambda self: 4), (lambda self: 30.0)
        Close = lambda self: None  # noqa: E731

    class VideoOutput:
        def __init__(self, uri, argv=()):
            pass

        def Render(self, image):
            rendered.append(image)

        IsStreaming = lambda self: True  # noqa: E731
        SetStatus = Close = lambda self, *a: None  # noqa: E731

    module = types.SimpleNamespace(videoSource=VideoSource, videoOutput=VideoOutput,
                                   cudaToNumpy=lambda image: image.array, cudaDeviceSynchronize=lambda: None,
                                   cudaFromNumpy=lambda array: CudaImage(array.copy()))
    return module, rendered


def test_jetson_frames_are_filtered_in_place_and_rendered_without_a_copy():
    module, rendered = fake_jetson_utils()
    source = JetsonSource("csi://0", module=module, reconnect_attempts=0)
    sink = JetsonSink("display://0", module=module)
    assert source.color == "rgb" and source.queue_limit == 1
    summary = LiveLoop(source, sink, invert).run(threading.Event())
    # A live source: the loop may drop frames it cannot keep up with, but renders only filtered ones.
    assert summary.frames_written + summary.frames_dropped == 3 and len(rendered) == summary.frames_written >= 1
    for image in rendered:
        assert (image.array == 155).all()  # the cudaImage itself holds the filtered pixels


class ThreadRecordingSink(ListSink):
    def __init__(self, main_thread_only: bool):
        super().__init__()
        self.main_thread_only = main_thread_only
        self.threads = set()

    def write(self, frame):
        self.threads.add(threading.current_thread())
        super().write(frame)


@pytest.mark.parametrize("main_thread_only", [True, False])
def test_window_sinks_are_driven_from_the_calling_thread(main_thread_only):
    sink, source = ThreadRecordingSink(main_thread_only), CountingSource(30)
    summary = LiveLoop(source, sink, filter_waiting_for(source.reached(4)), queue_size=2).run(threading.Event())
    assert summary.frames_written == 30 and summary.reached_end
    assert (sink.threads == {threading.current_thread()}) is main_thread_only
    assert all(int(f.image[0, 0, 0]) == 255 - (f.index % 250 + 1) for f in sink.frames)


def test_window_sink_run_stops_on_the_stop_event():
    stop = threading.Event()

    class StoppingWindow(ThreadRecordingSink):
        def write(self, frame):
            super().write(frame)
            if len(self.frames) == 5:
                stop.set()

    sink = StoppingWindow(main_thread_only=True)
    summary = LiveLoop(CountingSource(10_000), sink, invert).run(stop)
    assert 5 <= summary.frames_written == len(sink.frames) < 10_000 and not summary.reached_end
