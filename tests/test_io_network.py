"""Network sinks and sources over loopback: RTSP publish (to FFmpeg listening as a server), RTP out, and an
RTP stream in through the OpenCV capture path; no external server needed."""
from __future__ import annotations

import socket
import threading
import time
from fractions import Fraction

import pytest

import av

from deid_sdk.io import run_pipeline  # noqa: E402

pytestmark = pytest.mark.shared_data
FAST_FILTER = {"fallback": "pixelate", "detect_width": 320}


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_bound(port: int, kind: int) -> bool:
    """Whether some socket on this machine listens on (TCP) or is bound to (UDP) the port (Linux /proc/net)."""
    table, listening = ("/proc/net/tcp", "0A") if kind == socket.SOCK_STREAM else ("/proc/net/udp", None)
    with open(table) as handle:
        for line in list(handle)[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and (listening is None or fields[3] == listening):
                return True
    return False


def wait_until_bound(port: int, kind: int, thread: threading.Thread, timeout: float = 30.0) -> None:
    """Wait for the receiver's socket (the condition, not a fixed delay), failing if it never comes."""
    deadline = time.monotonic() + timeout
    while not port_is_bound(port, kind):
        assert thread.is_alive() and time.monotonic() < deadline, "the receiver never opened its port"
        time.sleep(0.02)


def receive(url: str, options: dict, frames: list, limit: int, port: int, kind: int) -> threading.Thread:
    def run():
        try:
            with av.open(url, options=options) as container:
                for decoded in container.decode(video=0):
                    frames.append(decoded.to_ndarray(format="bgr24").shape)
                    if len(frames) >= limit:
                        return
        except av.FFmpegError as error:  # the sender closing the connection ends the stream
            frames.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until_bound(port, kind, thread)
    return thread


def test_rtsp_sink_publishes_to_a_server(shared_data):
    port = free_port()
    url = f"rtsp://127.0.0.1:{port}/deid"
    frames: list = []
    receiver = receive(url, {"rtsp_flags": "listen", "listen_timeout": "30"}, frames, limit=12, port=port,
                       kind=socket.SOCK_STREAM)
    summary = run_pipeline(str(shared_data / "videos" / "d18.mp4"), url, max_frames=12, filter_options=FAST_FILTER)
    receiver.join(30)
    assert summary.frames_written == 12
    shapes = [shape for shape in frames if isinstance(shape, tuple)]
    assert len(shapes) == 12 and shapes[0] == (480, 480, 3), frames


def test_rtp_sink_sends_mpegts_a_player_can_read(shared_data):
    port = free_port(socket.SOCK_DGRAM)
    frames: list = []
    receiver = receive(f"rtp://127.0.0.1:{port}", {"timeout": "5000000"}, frames, limit=5, port=port,
                       kind=socket.SOCK_DGRAM)
    # The receiver probes the stream for a while and then waits for a keyframe (one a second): send 3 s.
    run_pipeline(str(shared_data / "videos" / "d18.mp4"), f"rtp://127.0.0.1:{port}", max_frames=90,
                 filter_options=FAST_FILTER)
    receiver.join(30)
    shapes = [shape for shape in frames if isinstance(shape, tuple)]
    assert len(shapes) == 5 and shapes[0] == (480, 480, 3), frames


def test_serving_rtsp_needs_jetson_utils(shared_data):
    with pytest.raises(ValueError, match="serving RTSP needs jetson_utils"):
        run_pipeline(str(shared_data / "videos" / "d18.mp4"), "rtsp://@:8554/deid", io="opencv")


def send_rtp(path, port: int, seconds: float, done: threading.Event) -> threading.Thread:
    """Play a clip to rtp://127.0.0.1:port (MPEG-TS over RTP) in real time, like a network camera."""
    def run():
        with av.open(str(path)) as source, \
                av.open(f"rtp://127.0.0.1:{port}", "w", format="rtp_mpegts") as output:
            video = output.add_stream("libx264", rate=30)
            video.width, video.height, video.pix_fmt = 480, 480, "yuv420p"
            video.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "10"}
            start = time.monotonic()
            for index, decoded in enumerate(source.decode(video=0)):
                if time.monotonic() - start > seconds or done.is_set():
                    break
                picture = av.VideoFrame.from_ndarray(decoded.to_ndarray(format="bgr24"), format="bgr24")
                picture.pts, picture.time_base = index, Fraction(1, 30)
                for packet in video.encode(picture):
                    output.mux(packet)
                time.sleep(max(0.0, start + (index + 1) / 30 - time.monotonic()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_rtp_stream_source_is_live(shared_data, tmp_path):
    port = free_port(socket.SOCK_DGRAM)
    done = threading.Event()
    sender = send_rtp(shared_data / "videos" / "d18.mp4", port, seconds=7, done=done)
    output = tmp_path / "stream.mkv"
    try:
        summary = run_pipeline(f"rtp://@:{port}", str(output), max_frames=20, io="opencv",
                               filter_options=FAST_FILTER)
    finally:
        done.set()
        sender.join(30)
    assert summary.frames_read == 20
    assert 0 < summary.frames_written == 20 - summary.frames_dropped
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == summary.frames_written
