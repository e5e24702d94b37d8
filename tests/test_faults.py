"""Faults inside the pipeline, on real models and real files: a generator that fails inside onnxruntime, a
detector that raises, a sink whose disk fills (RLIMIT_FSIZE on the `deid run` process). Every time: no detected
face gets through, one log line per kind of fault (not per frame), and exit status 1 where work was lost.
(NaN and wrong-shape generator outputs: tests/test_filter.py; SIGTERM while writing: tests/test_io_cli.py.)
"""
from __future__ import annotations

import logging
import resource
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from deid_sdk import Filter
from deid_sdk.cli import main
from deid_sdk.cli.demo_clip import DemoClipSource
from deid_sdk.detect import CenterFaceDetector
from deid_sdk.io.pyav_video import VideoFileSink
from tests.generator_models import write_failing_generator
from tests.privacy import assert_every_face_covered

CLIP_FRAMES = 20


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory) -> Path:
    """20 frames of the built-in moving portrait (640x480) as an H.264 file."""
    path = tmp_path_factory.mktemp("clip") / "portrait.mp4"
    source = DemoClipSource(seconds=CLIP_FRAMES / 25)
    with VideoFileSink(path, fps=source.fps) as sink:
        while (frame := source.read()) is not None:
            sink.write(frame)
    return path


def clip_frames() -> list[np.ndarray]:
    source = DemoClipSource(seconds=CLIP_FRAMES / 25)
    return [source.read().image for _ in range(CLIP_FRAMES)]


def decodable_frames(path: Path) -> list[np.ndarray]:
    """Every frame FFmpeg can still decode from a possibly cut file."""
    frames = []
    try:
        with av.open(str(path)) as container:
            for decoded in container.decode(video=0):
                frames.append(decoded.to_ndarray(format="bgr24"))
    except (av.FFmpegError, EOFError):
        pass
    return frames


def test_generator_failing_inside_onnxruntime_falls_back_logged_once(tmp_path, caplog):
    source = DemoClipSource(seconds=0.2)
    detector = CenterFaceDetector()
    with Filter(model=write_failing_generator(tmp_path / "failing.onnx")) as face_filter:
        with caplog.at_level(logging.ERROR, logger="deid_sdk"):
            for _ in range(3):
                frame = source.read().image
                output = face_filter(frame)
                assert {face.reason for face in face_filter.faces} == {"model error: failing.onnx: inference failed"}
                assert_every_face_covered(frame, output, detector.detect(frame))
    assert len([r for r in caplog.records if "inference failed" in r.getMessage()]) == 1


def test_detector_raising_blacks_out_those_frames_logs_once_and_exits_1(face_clip, tmp_path, monkeypatch, caplog):
    real_detect = CenterFaceDetector.detect
    calls = []

    def every_third_call_fails(self, frame_bgr):
        calls.append(1)
        if len(calls) % 3 == 0:
            raise RuntimeError("detector crashed: simulated fault")
        return real_detect(self, frame_bgr)

    monkeypatch.setattr(CenterFaceDetector, "detect", every_third_call_fails)
    output = tmp_path / "out.mp4"
    with caplog.at_level(logging.ERROR, logger="deid_sdk"):
        # Serial: after a worker failure detection ahead detects again in the filter thread (tests/test_pipelined.py)
        status = main(["run", "--source", str(face_clip), "--sink", str(output), "--no-generator", "-q",
                       "--no-detect-ahead"])
    monkeypatch.setattr(CenterFaceDetector, "detect", real_detect)
    assert status == 1, "frames were lost: the exit status must say so"
    assert len([r for r in caplog.records if "detector crashed" in r.getMessage()]) == 1, "one line per kind"
    frames = decodable_frames(output)
    assert len(frames) == CLIP_FRAMES
    detector, checked = CenterFaceDetector(), 0
    for index, (original, written) in enumerate(zip(clip_frames(), frames)):
        if index % 3 == 2:  # its detection failed: written black
            assert written.max() < 24, f"frame {index} is not black"
        elif detections := detector.detect(original):
            assert_every_face_covered(original, written, detections, compressed=True)
            checked += 1
    assert checked >= CLIP_FRAMES // 2


def _disk_nearly_full(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_disk_full_while_writing_exits_1_with_one_line_and_leaks_no_face(face_clip, tmp_path):
    output = tmp_path / "out.mkv"
    result = subprocess.run([sys.executable, "-m", "deid_sdk.cli", "run", "--source", str(face_clip),
                             "--sink", str(output), "--no-generator", "-q"],
                            capture_output=True, text=True, timeout=600, preexec_fn=_disk_nearly_full(40_000))
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("deid run: error: ") and str(output) in last, result.stderr
    assert output.stat().st_size <= 40_000
    detector = CenterFaceDetector()
    written = decodable_frames(output)
    assert 0 < len(written) < CLIP_FRAMES, f"{len(written)} frames decodable"
    for frame, original in zip(written, clip_frames()):  # what made it to disk is anonymized
        if detections := detector.detect(original):
            assert_every_face_covered(original, frame, detections, compressed=True)
