"""Detection ahead (deid_sdk.pipelined): on a real clip with the default Filter (CenterFace, dlib landmarks, the
shipped generator and identity encoder, the SFace guard) it gives the serial Filter's output frames, bit for bit, in
order; through `deid run`'s loop too; a failure of the worker is made up for in the filter thread, and a detector
that fails there too raises, so the live loop writes the frame black."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from deid_sdk import Filter
from deid_sdk.detect import CenterFaceDetector
from deid_sdk.io import read_frames, run_pipeline
from deid_sdk.io.frame import Frame
from deid_sdk.io.live_loop import protect_frame
from deid_sdk.pipelined import DetectAhead
from tests.clips import cut_clip
from tests.privacy import assert_every_face_covered

pytestmark = pytest.mark.shared_data

FRAMES = 8


@pytest.fixture(scope="module")
def clip(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipelined") / "d10.mp4"
    cut_clip(shared_data / "videos" / "d10.mp4", path, FRAMES)
    return path


@pytest.fixture(scope="module")
def frames(clip) -> list[np.ndarray]:
    return read_frames(str(clip))


@pytest.fixture(scope="module")
def serial_outputs(frames) -> list[np.ndarray]:
    with Filter() as face_filter:
        return [face_filter(frame) for frame in frames]


def test_detect_ahead_gives_the_serial_filters_frames(frames, serial_outputs):
    reference = CenterFaceDetector()
    ahead = DetectAhead(Filter())
    try:
        inputs = [frame.copy() for frame in frames]
        for frame in inputs[:3]:  # up to three frames in flight, as the live loop keeps at most two
            ahead.prepare(frame)
        for index, frame in enumerate(inputs):
            if index + 3 < len(inputs):
                ahead.prepare(inputs[index + 3])
            output = ahead(frame, inplace=True)
            assert output is frame
            np.testing.assert_array_equal(output, serial_outputs[index], err_msg=f"frame {index}")
            assert_every_face_covered(frames[index], output, reference.detect(frames[index]))
    finally:
        ahead.close()


class FailsInTheWorker:
    """CenterFace, except that every call from the detect-ahead worker thread raises."""

    def __init__(self):
        self.detector, self.calls_here = CenterFaceDetector(), 0

    def detect(self, frame_bgr):
        if threading.current_thread().name.startswith("deid-detect"):
            raise RuntimeError("worker broke")
        self.calls_here += 1
        return self.detector.detect(frame_bgr)


def test_a_failing_worker_falls_back_to_detecting_in_the_filter_thread(frames, serial_outputs):
    detector = FailsInTheWorker()
    ahead = DetectAhead(Filter(detector=detector))
    try:
        for index, frame in enumerate(frames[:4]):
            ahead.prepare(frame)
            output = ahead(frame)
            np.testing.assert_array_equal(output, serial_outputs[index], err_msg=f"frame {index}")
        assert detector.calls_here == 4
    finally:
        ahead.close()


class AlwaysFails:
    def detect(self, frame_bgr):
        raise RuntimeError("detector broke")


def test_a_detector_failing_in_both_threads_raises_so_the_loop_blacks_the_frame(frames):
    ahead = DetectAhead(Filter(detector=AlwaysFails(), use_generator=False))
    try:
        frame = Frame(image=frames[0].copy(), index=0, pts=0, time_base=1)
        ahead.prepare(frame.image)
        assert not protect_frame(ahead, frame)
        assert frame.image.max() == 0
    finally:
        ahead.close()


def test_a_frame_never_gets_another_frames_detections(frames):
    """Frames prepared but skipped (dropped) are passed over; an unprepared frame is detected where it is filtered."""
    moved = np.ascontiguousarray(np.roll(frames[0], 200, axis=1))  # the face elsewhere
    reference = CenterFaceDetector()
    ahead = DetectAhead(Filter(tracking=False, use_generator=False))
    try:
        ahead.prepare(frames[0])
        ahead.prepare(frames[1])
        ahead(frames[1])  # frame 0 was dropped on the way: its detections are discarded
        output = ahead(moved)  # never prepared: frame 0's or 1's detections must not be used for it
        assert_every_face_covered(moved, output, reference.detect(moved))
        assert not ahead._pending
    finally:
        ahead.close()


def test_deid_runs_loop_with_detection_ahead_writes_the_serial_frames(clip, tmp_path):
    outputs = {}
    for detect_ahead in (False, True):
        sink = tmp_path / f"ahead_{detect_ahead}.mp4"
        summary = run_pipeline(str(clip), str(sink), detect_ahead=detect_ahead)
        assert summary.frames_written == FRAMES and not summary.frames_blanked
        outputs[detect_ahead] = read_frames(str(sink))
    assert len(outputs[True]) == len(outputs[False]) == FRAMES
    for index, (ahead, serial) in enumerate(zip(outputs[True], outputs[False])):
        np.testing.assert_array_equal(ahead, serial, err_msg=f"frame {index}")
