"""`deid run` against a real RTSP server on 127.0.0.1 that is killed and restarted mid-stream.

The server (tests/rtsp_server.py: GStreamer's gst-rtsp-server, run with the system python3) serves frames of a
real clip, looping, as H.264 at 25 fps. Each served frame carries its index in a corner code, so every frame of
the output can be matched to the frame the server sent: every face CenterFace finds in that frame must be covered
in the output (tests/privacy.py). The test kills the server (SIGKILL, as a crash or a power cut would), restarts
it on the same port after DOWN_SECONDS, and checks that the loop logs its backoff, reconnects, resumes, and that
nothing un-anonymized was written meanwhile. It prints frames lost and the time to recover.

Needs the Debian packages tools/install_rtsp_server.sh installs (make test runs it); skips, saying why, without.
"""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from deid_sdk.detect import CenterFaceDetector
from tests.clips import cut_clip
from tests.privacy import assert_every_face_covered

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
FPS = 25
CLIP_FRAMES = 50            # served in a loop: two seconds
WIDTH = 480                 # the clip is scaled down: the filter keeps up better on a loaded 2-core machine
PLAY_SECONDS = 4            # streamed before the kill and again after the reconnect
DOWN_SECONDS = 2.0          # the server is away this long
CODE_BITS = 8               # the frame index as 8 blocks, then their complement (a check against a damaged read)
CODE_BLOCK = 16


def stamp_index(image: np.ndarray, index: int) -> None:
    for bit in range(CODE_BITS):
        value = 255 if index >> bit & 1 else 0
        image[:CODE_BLOCK, bit * CODE_BLOCK:(bit + 1) * CODE_BLOCK] = value
        image[:CODE_BLOCK, (CODE_BITS + bit) * CODE_BLOCK:(CODE_BITS + bit + 1) * CODE_BLOCK] = 255 - value


def read_index(image: np.ndarray) -> int | None:
    """The index stamped into a (decoded, compressed) frame; None when the code does not check out."""
    inner = slice(CODE_BLOCK // 4, CODE_BLOCK * 3 // 4)
    bits = [float(image[inner, start + CODE_BLOCK // 4:start + CODE_BLOCK * 3 // 4].mean()) > 128
            for start in range(0, 2 * CODE_BITS * CODE_BLOCK, CODE_BLOCK)]
    if any(bits[bit] == bits[CODE_BITS + bit] for bit in range(CODE_BITS)):
        return None
    return sum(1 << bit for bit in range(CODE_BITS) if bits[bit])


def server_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).is_file():
        return f"no {SYSTEM_PYTHON}"
    check = subprocess.run([SYSTEM_PYTHON, str(SERVER), "--check"], capture_output=True, text=True, timeout=60)
    return check.stderr.strip() or None if check.returncode else None


@pytest.fixture(scope="module")
def served(shared_data, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """The folder of JPEG files the server loops over (stamped), and the same frames decoded back."""
    missing = server_missing()
    if missing:
        pytest.skip(f"the RTSP server's packages are missing: {missing}; run tools/install_rtsp_server.sh")
    folder = tmp_path_factory.mktemp("rtsp")
    cut_clip(shared_data / "videos" / "d18.mp4", folder / "talk.mp4", CLIP_FRAMES)
    frames = []
    with av.open(str(folder / "talk.mp4")) as clip:
        for index, decoded in enumerate(clip.decode(video=0)):
            image = decoded.to_ndarray(format="bgr24")
            height = round(image.shape[0] * WIDTH / image.shape[1] / 2) * 2
            image = cv2.resize(image, (WIDTH, height), interpolation=cv2.INTER_AREA)
            stamp_index(image, index)
            path = folder / f"{index:05d}.jpg"
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            frames.append(cv2.imread(str(path)))
    assert len(frames) == CLIP_FRAMES and all(read_index(f) == i for i, f in enumerate(frames))
    return folder, frames


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(frames_folder: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), "--frames", str(frames_folder / "%05d.jpg"),
                               "--port", str(port), "--fps", str(FPS)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline().strip()
    if line != "ready":
        stop(server)
        raise AssertionError(f"the RTSP server did not start: {line}")
    return server


def stop(process: subprocess.Popen) -> None:
    """SIGKILL (a crash, a power cut: no goodbye to the clients), then release its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


class LineLog:
    """Reads a process's stderr in a thread, with the time each line arrived."""

    def __init__(self, stream):
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, pattern: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for arrived, line in list(self.lines):
                if re.search(pattern, line):
                    return arrived
            time.sleep(0.05)
        return None

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(line for _, line in self.lines)


def test_deid_run_survives_the_rtsp_server_being_killed_and_restarted(served, tmp_path):
    frames_folder, served_frames = served
    port, output = free_port(), tmp_path / "out.mkv"
    server = start_server(frames_folder, port)
    run = subprocess.Popen([sys.executable, "-m", "deid_sdk.cli", "run", "--source", f"rtsp://127.0.0.1:{port}/clip",
                            "--sink", str(output), "--no-generator", "--io", "opencv", "--reconnect-attempts", "10"],
                           stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    log = LineLog(run.stderr)
    try:
        started = log.wait_for(r"deid: 0 frames \[", timeout=120)   # the progress counter: the loop runs
        assert started is not None, log.text()
        time.sleep(PLAY_SECONDS)
        stop(server)
        killed = time.monotonic()
        time.sleep(DOWN_SECONDS)
        server = start_server(frames_folder, port)
        restarted = time.monotonic()
        reconnected = log.wait_for(r"reconnected$", timeout=30)
        assert reconnected is not None, log.text()
        time.sleep(PLAY_SECONDS)
        run.send_signal(signal.SIGINT)
        returncode = run.wait(timeout=60)
    finally:
        stop(server)
        if run.poll() is None:
            run.kill()
        run.wait()
    stderr = log.text()
    run.stderr.close()
    assert returncode == 128 + signal.SIGINT, stderr

    # Backoff: each wait at least the one before (0.5 s, 1 s, 2 s, ...), more than one try while it was down.
    delays = [float(d) for d in re.findall(r"dropped; reconnecting in ([\d.]+) s", stderr)]
    assert len(delays) >= 2 and delays == sorted(delays) and delays[1] > delays[0], stderr

    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        decoded = [(float(f.pts * stream.time_base), f.to_ndarray(format="bgr24")) for f in container.decode(stream)]
    times = np.array([t for t, _ in decoded])
    gaps = np.diff(times)
    outage = int(np.argmax(gaps))
    before, after = outage + 1, len(decoded) - outage - 1
    assert gaps[outage] >= DOWN_SECONDS * 0.8, f"no outage in the output's clock: largest gap {gaps[outage]:.2f} s"
    assert before >= 3 and after >= 3, f"{before} frames before the outage, {after} after: did not resume"

    # Every frame written, before and after the outage, has every face of the frame the server sent covered.
    detector, faces_checked, unread = CenterFaceDetector(), 0, 0
    faces_served = {}
    for _, image in decoded:
        index = read_index(image)
        if index is None or index >= CLIP_FRAMES:
            unread += 1
            continue
        original = served_frames[index]
        if index not in faces_served:
            faces_served[index] = detector.detect(original)
        detections = faces_served[index]
        if detections:
            assert_every_face_covered(original, image, detections, compressed=True)
            faces_checked += len(detections)
    assert unread <= len(decoded) // 10, f"{unread} of {len(decoded)} output frames have an unreadable index"
    assert faces_checked >= len(decoded) // 2, f"only {faces_checked} faces in {len(decoded)} frames"

    dropped = re.search(r"(\d+) dropped to keep up", stderr)
    print(f"\nRTSP kill/restart: server down {DOWN_SECONDS:.1f} s; {len(decoded)} frames written "
          f"({before} before, {after} after); output gap {gaps[outage]:.2f} s = {round(gaps[outage] * FPS) - 1} "
          f"frames lost at {FPS} fps; reconnected {reconnected - restarted:.2f} s after the restart "
          f"({reconnected - killed:.2f} s after the kill); backoff waits {delays}; "
          f"{dropped.group(1) if dropped else 0} dropped to keep up; {faces_checked} faces checked, "
          f"{unread} frames with an unreadable index")
