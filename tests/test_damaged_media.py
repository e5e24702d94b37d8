"""Damaged media through `deid run` (a subprocess, as a user runs it), by design:
- a file FFmpeg cannot open (zero bytes, an MP4 cut before its index): one clear error line, exit 1, no output;
- a file cut off mid-stream (a truncated Matroska): the frames before the cut are written (faces covered), the
  missing ones are counted, exit 1 because the output is incomplete;
- bit flips inside the stream: FFmpeg conceals them, every frame is written and still covered, exit 0;
- a folder with non-images and an image whose extension lies: readable images are written (a PNG named .jpg is
  read by its content), unreadable files are skipped, each named in a warning, exit 1;
- a stream that changes resolution mid-way: handled, nothing lost: the filter starts fresh tracks at the new size,
  the output keeps its first size (the new frames scaled to fit, aspect kept), one warning, exit 0.
"""
from __future__ import annotations

import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import pytest

from deid_sdk.cli.demo_clip import DemoClipSource
from deid_sdk.detect import CenterFaceDetector
from deid_sdk.io.pyav_video import VideoFileSink, fit_into
from tests.privacy import assert_every_face_covered, assert_faces_covered_in_video

CLIP_FRAMES = 20


def write_clip(path: Path) -> Path:
    source = DemoClipSource(seconds=CLIP_FRAMES / 25)
    with VideoFileSink(path, fps=source.fps) as sink:
        while (frame := source.read()) is not None:
            sink.write(frame)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    mp4, mkv = write_clip(folder / "clip.mp4"), write_clip(folder / "clip.mkv")
    damaged = {"zero": folder / "zero.mp4", "cut_mp4": folder / "cut.mp4", "cut_mkv": folder / "cut.mkv",
               "flipped": folder / "flipped.mkv", "mkv": mkv}
    damaged["zero"].write_bytes(b"")
    damaged["cut_mp4"].write_bytes(mp4.read_bytes()[:mp4.stat().st_size // 2])
    damaged["cut_mkv"].write_bytes(mkv.read_bytes()[:mkv.stat().st_size // 2])
    data, rng = bytearray(mkv.read_bytes()), random.Random(1)
    for _ in range(20):  # in the second half: the later frames' packets (the first keyframe stays intact)
        data[rng.randrange(len(data) // 2, len(data))] ^= 1 << rng.randrange(8)
    damaged["flipped"].write_bytes(bytes(data))
    return damaged


def deid_run(source: Path, sink: Path, quiet: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deid_sdk.cli", "run", "--source", str(source), "--sink", str(sink),
                           "--no-generator"] + ["--quiet"] * quiet, capture_output=True, text=True, timeout=600)


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize("name", ["zero", "cut_mp4"])
def test_a_file_ffmpeg_cannot_open_is_one_clear_line(clips, name, tmp_path):
    result = deid_run(clips[name], tmp_path / "out.mp4")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("deid run: error: cannot read video file") and clips[name].name in lines[0]
    assert not (tmp_path / "out.mp4").exists()


def test_a_file_cut_off_mid_stream_writes_what_it_has_and_exits_1(clips, tmp_path):
    output = tmp_path / "out.mkv"
    result = deid_run(clips["cut_mkv"], output)
    assert result.returncode == 1, result.stderr
    assert "frames of" in result.stderr and "could not be read" in result.stderr
    written = frame_count(output)
    assert 0 < written < CLIP_FRAMES
    assert_faces_covered_in_video(clips["cut_mkv"], output, every=1)


def test_bit_flips_are_concealed_and_every_frame_is_still_covered(clips, tmp_path):
    output = tmp_path / "out.mkv"
    result = deid_run(clips["flipped"], output)
    assert result.returncode == 0, result.stderr
    assert frame_count(output) == frame_count(clips["flipped"])
    assert_faces_covered_in_video(clips["flipped"], output, every=1)


def test_a_folder_with_non_images_skips_and_names_them_and_exits_1(clips, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    source = DemoClipSource(seconds=3 / 25)
    images = [source.read().image for _ in range(3)]
    cv2.imwrite(str(folder / "1.jpg"), images[0])
    cv2.imwrite(str(folder / "2.png"), images[1])
    (folder / "2.png").rename(folder / "2.jpg")             # a PNG whose extension says JPEG
    (folder / "3.jpg").write_text("not an image at all")     # lies about being an image
    cv2.imwrite(str(folder / "4.png"), images[2])
    (folder / "notes.txt").write_text("ignored: not an image extension")
    output = tmp_path / "out"
    result = deid_run(folder, output)
    assert result.returncode == 1, result.stderr
    assert "skipping" in result.stderr and "3.jpg" in result.stderr
    assert sorted(p.name for p in output.iterdir()) == ["1.jpg", "2.jpg", "4.png"]
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("1.jpg", "2.jpg", "4.png"):
        (kept / name).write_bytes((folder / name).read_bytes())
    assert_faces_covered_in_video(kept, output, every=1)


def write_resolution_change(path: Path, frames: list, sizes: list[tuple[int, int]]) -> list:
    """One H.264 stream in MPEG-TS whose resolution changes: each part encoded at its size (a new SPS), the parts'
    bytes joined as a broadcast recording is, timestamps continuing. Returns the frames as encoded (resized)."""
    encoded, part_length, pts = [], len(frames) // len(sizes), 0
    parts = []
    for number, (width, height) in enumerate(sizes):
        part = path.with_name(f"{path.stem}.part{number}.ts")
        with av.open(str(part), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.time_base = Fraction(1, 25)
            for image in frames[number * part_length:(number + 1) * part_length]:
                resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                encoded.append(resized)
                picture = av.VideoFrame.from_ndarray(resized, format="bgr24")
                picture.pts, picture.time_base, pts = pts, Fraction(1, 25), pts + 1
                for packet in stream.encode(picture):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        parts.append(part.read_bytes())
    path.write_bytes(b"".join(parts))
    return encoded


def test_a_stream_that_changes_resolution_is_handled_and_every_frame_covered(tmp_path):
    source = DemoClipSource(seconds=CLIP_FRAMES / 25)
    frames = [frame.image for frame in iter(source.read, None)]
    changed = tmp_path / "changed.ts"
    encoded = write_resolution_change(changed, frames, [(640, 480), (480, 270)])  # 4:3, then 16:9 and smaller
    output = tmp_path / "out.mkv"
    result = deid_run(changed, output, quiet=False)  # warnings shown
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "changed resolution" in line]
    assert len(warnings) == 1 and "480x270" in warnings[0] and "640x480" in warnings[0], result.stderr

    with av.open(str(changed)) as container:
        decoded = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    with av.open(str(output)) as container:
        written = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    assert len(decoded) == len(encoded) == len(written), (len(decoded), len(encoded), len(written))
    assert {image.shape for image in decoded} == {(480, 640, 3), (270, 480, 3)}  # the file does change size
    assert {image.shape for image in written} == {(480, 640, 3)}
    detector, checked = CenterFaceDetector(), 0
    for original, image in zip(decoded, written):
        expected = fit_into(original, 640, 480)  # the picture as the output holds it, before anonymization
        detections = detector.detect(expected)
        if detections:
            assert_every_face_covered(expected, image, detections, compressed=True)
            checked += 1
    assert checked >= len(written) * 3 // 4, f"faces found in only {checked} of {len(written)} frames"
