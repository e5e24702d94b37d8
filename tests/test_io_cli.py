"""`deid` as a user runs it (a subprocess): a whole real clip file -> file with every face covered, Ctrl-C and
SIGTERM leave a playable file, and the one exit-code convention of every command (docs/cli.md): 0 done,
1 runtime error in one line, 2 usage error, 128+N after signal N."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.privacy import assert_faces_covered_in_video


def deid(*arguments: str) -> list[str]:
    """`deid ...` with this interpreter (the console script may not be on PATH)."""
    return [sys.executable, "-m", "deid_sdk.cli", *arguments]


def deid_run(*arguments: str) -> list[str]:
    return deid("run", *arguments)


def run(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(deid_run(*arguments), capture_output=True, text=True, timeout=timeout)


def command(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(deid(*arguments), capture_output=True, text=True, timeout=timeout)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_every_command_parses_and_versions():
    assert command("--version").returncode == 0
    for name in ("demo", "run", "bench"):
        result = command(name, "--help")
        assert result.returncode == 0 and "--strength" in result.stdout and "--threads" in result.stdout, name


@pytest.mark.parametrize("arguments", [
    ["demo", "--max-frames", "many"], ["bench"], ["run", "--source", "in.mp4"], ["run", "--impl", "gpu"],
    ["nothing"],
])
def test_usage_errors_exit_2(arguments):
    result = command(*arguments)
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr


@pytest.mark.parametrize("arguments, message", [
    (["demo", "--input", "/no/such.mp4"], "deid demo: error: --input: no such file: /no/such.mp4"),
    (["bench", "--input", "/no/such.mp4"], "deid bench: error: video file not found: /no/such.mp4"),
    (["demo", "--threads", "0"], "deid demo: error: threads must be a positive integer, got 0"),
    (["demo", "--strength", "3"], "deid demo: error: strength must be in [0, 1], got 3.0"),
])
def test_runtime_errors_exit_1_with_one_line(arguments, message, tmp_path):
    result = command(*arguments, "--out", str(tmp_path)) if arguments[0] == "demo" else command(*arguments)
    assert result.returncode == 1, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(message), lines


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
    assert re.search(r"deid run: privacy: \d+ faces output \(generator", result.stderr), result.stderr
    with av.open(str(clip)) as source, av.open(str(output)) as written:
        source_video, written_video = source.streams.video[0], written.streams.video[0]
        assert written_video.average_rate == source_video.average_rate == 25
        assert float(written_video.duration * written_video.time_base) == \
            pytest.approx(float(source_video.duration * source_video.time_base), abs=1e-6)
        assert len(written.streams.audio) == len(source.streams.audio) == 0
    assert decoded_frames(output) == 78
    assert_faces_covered_in_video(clip, output)


@pytest.mark.shared_data
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_file_leaves_a_playable_file(stop_signal, shared_data, tmp_path):
    clip = shared_data / "videos" / "d6.mp4"  # 1008 frames: far from done when the signal comes
    output = tmp_path / "partial.mp4"
    # The wait below is for a condition (the encoder wrote its first packets), not a fixed delay.
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


@pytest.mark.shared_data
def test_demo_stopped_by_sigterm_closes_its_video(shared_data, tmp_path):
    process = subprocess.Popen(deid("demo", "--input", str(shared_data / "videos" / "d6.mp4"), "--out", str(tmp_path)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output = tmp_path / "demo.mp4"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if output.exists() and output.stat().st_size > 0:
                break
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "deid demo: stopped by SIGTERM; output closed" in stderr
    assert 0 < decoded_frames(output) < 1008


def test_demo_covers_every_face_of_the_built_in_clip(tmp_path):
    """`deid demo` end to end: the video it writes, decoded, has every face of the clip it read covered."""
    from deid_sdk.cli.demo_clip import DemoClipSource

    result = command("demo", "--max-frames", "6", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    # Six faces, each either passed by the privacy guard on a generator rung or sent by it to the fallback.
    statuses = re.search(r"faces: (\d+) de-identified, (\d+) covered by the fallback", result.stdout)
    assert statuses and int(statuses[1]) + int(statuses[2]) == 6, result.stdout
    shares = re.search(r"privacy: 6 faces output \(generator ([\d.]+)%, generator\+blur ([\d.]+)%, "
                       r"fallback ([\d.]+)%\); (\d+) guard checks", result.stdout)
    assert shares and int(shares[4]) >= 1, result.stdout
    # Per face track, the guard's verdict: passed on a rung, or which rung it needed, with the SFace similarity.
    verdicts = re.findall(r"face track \d+: (passed the guard on|needed) (generator|generator\+blur|fallback) "
                          r"\(SFace (-?[\d.]+) (<|>=) ([\d.]+)\)", result.stdout)
    assert verdicts, result.stdout
    for verdict, rung, similarity, sign, threshold in verdicts:
        assert (verdict == "passed the guard on") == (rung == "generator"), verdicts
        assert (sign == "<") == (float(similarity) < float(threshold)), verdicts
    assert sum(float(share) for share in shares.groups()[:3]) == pytest.approx(100, abs=0.2)
    clip = tmp_path / "clip"
    clip.mkdir()
    with DemoClipSource() as source:
        for index in range(6):
            cv2.imwrite(str(clip / f"{index:02d}.png"), source.read().image)
    assert assert_faces_covered_in_video(clip, tmp_path / "demo.mp4", every=1) == 6
    assert cv2.imread(str(tmp_path / "demo_side_by_side.png")) is not None


def test_demo_sheet_writes_the_guard_verdict_on_the_output_half_only():
    from deid_sdk.cli.demo import side_by_side

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    output = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    box = np.array([100.0, 80.0, 180.0, 180.0])
    plain = side_by_side(frame, output, [box])
    labelled = side_by_side(frame, output, [box], ["needed fallback (SFace 0.45 >= 0.20)"])
    assert plain.shape == labelled.shape
    assert np.array_equal(labelled[:240, :320], frame)            # the input half is untouched
    changed_rows, changed_columns = np.nonzero(np.any(labelled[:240, 320:] != output, axis=2))
    assert changed_rows.size > 0 and changed_rows.max() < box[1]  # the caption sits above the face box
    assert np.array_equal(labelled[240:], plain[240:])            # the enlarged faces carry no caption
