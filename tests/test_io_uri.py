"""Source and sink URIs: the jetson-utils names, plain paths, and one clear error for anything else."""
from __future__ import annotations

import pytest

from deid_sdk.io import parse_uri


@pytest.mark.parametrize("text, kind, location", [
    ("csi://0", "csi", "0"),
    ("v4l2:///dev/video0", "v4l2", "/dev/video0"),
    ("v4l2://video2", "v4l2", "/dev/video2"),
    ("/dev/video1", "v4l2", "/dev/video1"),
    ("rtsp://user:pw@10.0.0.5:554/stream1", "stream", "rtsp://user:pw@10.0.0.5:554/stream1"),
    ("rtp://@:5000", "stream", "rtp://@:5000"),
    ("http://cam.local/mjpg", "stream", "http://cam.local/mjpg"),
])
def test_live_sources(text, kind, location):
    uri = parse_uri(text, "source")
    assert (uri.kind, uri.location, uri.is_live) == (kind, location, True)


def test_file_sources(tmp_path):
    video = tmp_path / "clip one.mp4"
    video.write_bytes(b"not decoded here")
    (tmp_path / "frames").mkdir()
    assert parse_uri(str(video)).kind == "video"
    assert parse_uri(f"file://{tmp_path}/clip%20one.mp4").location == str(video)
    assert parse_uri(str(tmp_path / "frames")).kind == "images"
    assert parse_uri(str(tmp_path / "frames")).is_live is False


@pytest.mark.parametrize("text, kind", [
    ("display://0", "display"),
    ("display://", "display"),
    ("out.mp4", "video"),
    ("file:///tmp/out.mkv", "video"),
    ("out_frames/", "images"),
    ("out_frames", "images"),
    ("out/%06d.png", "images"),
    ("rtsp://server:8554/deid", "stream"),
    ("rtp://192.168.1.2:5000", "stream"),
])
def test_sinks(text, kind):
    assert parse_uri(text, "sink").kind == kind


@pytest.mark.parametrize("text, role, words", [
    ("foo://bar", "source", ["unknown source URI scheme 'foo'", "csi://", "v4l2://"]),
    ("display://0", "source", ["display:// is a sink"]),
    ("csi://0", "sink", ["csi:// is a source"]),
    ("webrtc://x", "sink", ["unknown sink URI scheme 'webrtc'", "display://"]),
    ("csi://front", "source", ["csi://N"]),
    ("out.xyz", "sink", ["unknown file type '.xyz'"]),
    ("", "source", ["empty"]),
])
def test_errors_say_what_was_expected(text, role, words):
    with pytest.raises(ValueError) as error:
        parse_uri(text, role)
    for word in words:
        assert word in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_source_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="source not found"):
        parse_uri(str(tmp_path / "missing"), "source")


def test_wrong_types():
    with pytest.raises(TypeError, match="expected a string"):
        parse_uri(0)
    with pytest.raises(ValueError, match="role"):
        parse_uri("a.mp4", "input")
