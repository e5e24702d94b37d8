"""`deid run` as a user runs it (a subprocess): a whole real clip file -> file, Ctrl-C and SIGTERM leave a
playable file, and bad input gives one clear error line and a nonzero exit status."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import av  # noqa: E402  (a dependency of deid_sdk: never skipped)


def deid_run(*arguments: str) -> list[str]:
    """`deid run ...` with this interpreter (the console script may not be on PATH)."""
    return [sys.executable, "-m", "deid_sdk.cli", "run", *arguments]


def run(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(deid_run(*arguments), capture_output=True, text=True, timeout=timeout)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_help_lists_sources_sinks_and_filter_options():
    result = run("--help")
    assert result.returncode == 0
    for word in ("--source", "--sink", "--no-audio", "--strength", "--detect-width", "csi://0", "display://0"):
        assert word in result.stdout


@pytest.mark.parametrize("source, sink, message", [
    ("foo://bar", "out.mp4", "unknown source URI scheme 'foo'"),
    ("{video}", "ftp://host/out.mp4", "unknown sink URI scheme 'ftp'"),
    ("/no/such/video.mp4", "out.mp4", "not found: /no/such/video.mp4"),
    ("/dev/video97", "out.mp4", "camera /dev/video97 not found"),
    ("{corrupt}", "out.mp4", "cannot read video file"),
    ("{empty}", "out.mp4", "cannot read video file"),
])
def test_bad_input_is_one_clear_line_and_exit_1(source, sink, message, tmp_path):
    corrupt, empty = tmp_path / "corrupt.mp4", tmp_path / "empty.mp4"
    corrupt.write_bytes(os.urandom(50_000))
    empty.write_bytes(b"")
    source = source.format(corrupt=corrupt, empty=empty, video=corrupt)  # a bad sink is reported first
    result = run("--source", source, "--sink", sink if "://" in sink else str(tmp_path / sink))
    assert result.returncode == 1, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("deid run: error: ") and message in lines[0], lines
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.shared_data
def test_whole_clip_file_to_file(shared_data, tmp_path):
    clip = shared_data / "videos" / "d0.mp4"  # 78 frames, 25 fps, no audio
    output = tmp_path / "d0_deid.mp4"
    # Cheaper filter settings (CI has 2 cores); the options also go through the command line's parser.
    result = run("--source", str(clip), "--sink", str(output), "--detect-width", "320", "--fallback", "pixelate")
    assert result.returncode == 0, result.stderr
    assert re.search(r"deid run: 78 frames in [\d.]+ s", result.stderr)
    with av.open(str(clip)) as source, av.open(str(output)) as written:
        source_video, written_video = source.streams.video[0], written.streams.video[0]
        assert written_video.average_rate == source_video.average_rate == 25
        assert float(written_video.duration * written_video.time_base) == \
            pytest.approx(float(source_video.duration * source_video.time_base), abs=1e-6)
        assert len(written.streams.audio) == len(source.streams.audio) == 0
    assert decoded_frames(output) == 78


@pytest.mark.shared_data
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_file_leaves_a_playable_file(stop_signal, shared_data, tmp_path):
    clip = shared_data / "videos" / "d6.mp4"  # 1008 frames: far from done when the signal comes
    output = tmp_path / "partial.mp4"
    process = subprocess.Popen(deid_run("--source", str(clip), "--sink", str(output)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if output.exists() and output.stat().st_size > 0:  # the encoder has emitted its first frames
                break
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read()
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + stop_signal, stderr
    match = re.search(r"holds (\d+) frames", stderr)
    assert match, stderr
    written = int(match.group(1))
    assert 0 < written < 1008
    assert decoded_frames(output) == written
    with av.open(str(output)) as container:
        assert container.streams.audio  # the sound up to the cut came along


@pytest.mark.shared_data
def test_display_without_a_screen_is_a_clear_error(shared_data):
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(deid_run("--source", str(shared_data / "videos" / "d0.mp4"), "--sink", "display://0"),
                            capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 1
    assert error_lines(result) == ["deid run: error: display://0: no display available (DISPLAY is not set); "
                                   "write to a file instead, e.g. --sink out.mp4"]


def test_csi_camera_without_jetson_utils_says_what_is_needed(tmp_path):
    from deid_sdk.io.jetson import load_jetson_utils
    from deid_sdk.io.opencv_capture import opencv_has_gstreamer

    if load_jetson_utils() is not None or opencv_has_gstreamer():
        pytest.skip("this machine can open CSI cameras (jetson_utils or GStreamer present)")
    result = run("--source", "csi://0", "--sink", str(tmp_path / "out.mp4"))
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and "CSI cameras need jetson_utils" in lines[0], lines
