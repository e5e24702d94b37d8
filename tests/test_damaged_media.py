"""Damaged media through `deid run` (a subprocess, as a user runs it), by design:
- a file FFmpeg cannot open (zero bytes, an MP4 cut before its index): one clear error line, exit 1, no output;
- a file cut off mid-stream (a truncated Matroska): the frames before the cut are written (faces covered), the
  missing ones are counted, exit 1 because the output is incomplete;
- bit flips inside the stream: FFmpeg conceals them, every frame is written and still covered, exit 0;
- a folder with non-images and an image whose extension lies: readable images are written (a PNG named .jpg is
  read by its content), unreadable files are skipped, each named in a warning, exit 1.
"""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import av
import cv2
import pytest

from deid_sdk.cli.demo_clip import DemoClipSource
from deid_sdk.io.pyav_video import VideoFileSink
from tests.privacy import assert_faces_covered_in_video

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


def deid_run(source: Path, sink: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deid_sdk.cli", "run", "--source", str(source), "--sink", str(sink),
                           "--no-generator", "--quiet"], capture_output=True, text=True, timeout=600)


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
