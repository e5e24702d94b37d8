"""The examples run: --help and argument parsing for all, real runs where no camera, Jetson or RTSP server
is needed (files and image folders stand in for the camera) with every face covered in what they wrote, clear
failures where the hardware is missing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from deid_sdk.backends.tensorrt import INSTALL_HINT, tensorrt_available
from deid_sdk.io import read_frames
from tests.privacy import assert_faces_covered_in_video

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
import av


def example(name: str, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *arguments], capture_output=True, text=True,
                          timeout=timeout)


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture
def photo_folder(shared_data, tmp_path) -> Path:
    """Three LFW photos (same size) standing in for a camera."""
    folder = tmp_path / "camera"
    folder.mkdir()
    for person in sorted((shared_data / "faces" / "lfw").iterdir())[:3]:
        photo = sorted(person.glob("*.jpg"))[0]
        (folder / photo.name).write_bytes(photo.read_bytes())
    return folder


@pytest.mark.parametrize("name, words", [
    ("camera.py", ["source", "sink", "/dev/video0"]),
    ("video_file.py", ["input", "output", "--no-audio", "--max-frames"]),
    ("rtsp_cctv.py", ["rtsp://", "--reconnect-attempts", "--detect-width"]),
    ("kiosk_jetson.py", ["--camera", "csi://0", "--backend", "auto"]),
    ("jetson_selftest.py", ["--precision", "fp16", "--frames", "PSNR"]),
])
def test_help(name, words):
    result = example(name, "--help")
    assert result.returncode == 0, result.stderr
    for word in words:
        assert word in result.stdout


@pytest.mark.parametrize("name, arguments", [
    ("video_file.py", []),                          # input and output are required
    ("video_file.py", ["in.mp4", "out.mp4", "--max-frames", "many"]),
    ("rtsp_cctv.py", []),
    ("kiosk_jetson.py", ["--io", "gstreamer"]),
    ("jetson_selftest.py", ["--frames", "0"]),
    ("jetson_selftest.py", ["--precision", "int4"]),
])
def test_bad_arguments_are_refused(name, arguments):
    result = example(name, *arguments)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_camera_reports_a_missing_camera():
    result = example("camera.py", "/dev/video97")
    assert result.returncode != 0 and "camera /dev/video97 not found" in result.stderr


def test_kiosk_needs_jetson_utils_by_default():
    result = example("kiosk_jetson.py", "--camera", "csi://0")
    assert result.returncode != 0 and "needs jetson_utils" in result.stderr


@pytest.mark.skipif(tensorrt_available(), reason="describes a machine without TensorRT")
def test_jetson_selftest_says_what_is_missing():
    result = example("jetson_selftest.py")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == ("jetson_selftest: needs an NVIDIA GPU with TensorRT 10 and CUDA: "
                                     f"{INSTALL_HINT}")


def test_rtsp_cctv_reports_an_unreachable_stream(tmp_path):
    result = example("rtsp_cctv.py", "rtsp://127.0.0.1:9/nothing", str(tmp_path / "cctv.mkv"), timeout=60)
    assert result.returncode != 0 and "cannot open stream rtsp://127.0.0.1:9/nothing" in result.stderr


@pytest.mark.shared_data
def test_video_file_runs(shared_data, tmp_path):
    output = tmp_path / "out.mp4"
    result = example("video_file.py", str(shared_data / "videos" / "d18.mp4"), str(output), "--max-frames", "5")
    assert result.returncode == 0, result.stderr
    assert "5 frames" in result.stdout and decoded_frames(output) == 5
    first_five = tmp_path / "first_five"
    first_five.mkdir()
    for index, frame in enumerate(read_frames(str(shared_data / "videos" / "d18.mp4"), 5)):
        cv2.imwrite(str(first_five / f"{index:02d}.png"), frame)
    assert_faces_covered_in_video(first_five, output, every=2)


@pytest.mark.shared_data
def test_camera_example_runs_on_a_folder(photo_folder, tmp_path):
    output = tmp_path / "shown"
    result = example("camera.py", str(photo_folder), str(output))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in output.iterdir()) == sorted(p.name for p in photo_folder.iterdir())
    assert assert_faces_covered_in_video(photo_folder, output, every=1) >= 3


@pytest.mark.shared_data
def test_rtsp_cctv_records_to_mkv(photo_folder, tmp_path):
    output = tmp_path / "cctv.mkv"
    result = example("rtsp_cctv.py", str(photo_folder), str(output))
    assert result.returncode == 0, result.stderr
    assert decoded_frames(output) == 3
    assert assert_faces_covered_in_video(photo_folder, output, every=1) >= 3


@pytest.mark.shared_data
def test_kiosk_loop_runs_without_jetson_when_allowed(photo_folder, tmp_path):
    output = tmp_path / "kiosk.mp4"
    result = example("kiosk_jetson.py", "--io", "auto", "--camera", str(photo_folder), "--display", str(output),
                     "--backend", "auto")
    assert result.returncode == 0, result.stderr
    assert decoded_frames(output) == 3
    assert assert_faces_covered_in_video(photo_folder, output, every=1) >= 3
