"""File -> file and folder -> folder through run_pipeline with the real Filter: frame count, frame rate,
duration and audio are kept; faces are changed; a failing filter never lets an original frame through."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import av

from deid_sdk.io import run_pipeline  # noqa: E402
from tests.privacy import assert_faces_covered_in_video  # noqa: E402

pytestmark = pytest.mark.shared_data


def probe(path: Path) -> dict:
    """What a player sees: decoded frame count, frame rate, durations, audio."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {"fps": video.average_rate, "video_seconds": seconds(video),
                "audio": [s.codec_context.name for s in container.streams.audio],
                "audio_seconds": [seconds(s) for s in container.streams.audio]}
        info["frames"] = sum(1 for _ in container.decode(video=0))
    return info


def seconds(stream) -> float | None:
    return float(stream.duration * stream.time_base) if stream.duration is not None else None  # None in .mkv


@pytest.fixture(scope="module")
def clip_with_audio(shared_data, tmp_path_factory) -> Path:
    """40 real frames (d18.mp4, a talking head) with a 440 Hz AAC track of the same length."""
    path = tmp_path_factory.mktemp("clips") / "talk_with_audio.mp4"
    frames, rate, sample_rate = 40, 30, 44100
    with av.open(str(shared_data / "videos" / "d18.mp4")) as source, av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = 480, 480, "yuv420p"
        audio = output.add_stream("aac", rate=sample_rate, layout="mono")
        for index, decoded in enumerate(source.decode(video=0)):
            if index == frames:
                break
            picture = av.VideoFrame.from_ndarray(decoded.to_ndarray(format="bgr24"), format="bgr24")
            picture.pts, picture.time_base = index, Fraction(1, rate)
            for packet in video.encode(picture):
                output.mux(packet)
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(sample_rate * frames // rate) / sample_rate))
        samples = samples.astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = sample_rate, start, Fraction(1, sample_rate)
            for packet in audio.encode(chunk):
                output.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                output.mux(packet)
    return path


def test_file_to_file_keeps_frames_rate_duration_and_audio(clip_with_audio, tmp_path):
    output = tmp_path / "out.mp4"
    summary = run_pipeline(str(clip_with_audio), str(output))
    source, result = probe(clip_with_audio), probe(output)
    assert summary.frames_written == source["frames"] == result["frames"] == 40
    assert result["fps"] == source["fps"] == 30
    assert result["video_seconds"] == pytest.approx(source["video_seconds"], abs=1e-6)
    assert result["audio"] == ["aac"]
    assert result["audio_seconds"][0] == pytest.approx(source["audio_seconds"][0], abs=0.03)

    assert_faces_covered_in_video(clip_with_audio, output)


def test_no_audio_drops_the_sound(clip_with_audio, tmp_path):
    output = tmp_path / "silent.mp4"
    run_pipeline(str(clip_with_audio), str(output), audio=False, max_frames=3)
    assert probe(output)["audio"] == []


def test_max_frames_cuts_the_audio_with_the_pictures(clip_with_audio, tmp_path):
    output = tmp_path / "part.mp4"
    summary = run_pipeline(str(clip_with_audio), str(output), max_frames=9)
    result = probe(output)
    assert summary.frames_written == result["frames"] == 9
    assert result["audio_seconds"][0] == pytest.approx(9 / 30, abs=0.05)


def test_mkv_output_keeps_timing_and_audio(clip_with_audio, tmp_path):
    output = tmp_path / "out.mkv"
    run_pipeline(str(clip_with_audio), str(output), max_frames=6)
    result = probe(output)
    assert result["frames"] == 6 and result["audio"] == ["aac"] and result["fps"] == 30


def test_a_failing_filter_writes_black_frames_not_the_originals(clip_with_audio, tmp_path):
    def broken(image, inplace=False):
        raise RuntimeError("generator crashed")

    output = tmp_path / "failed.mp4"
    summary = run_pipeline(str(clip_with_audio), str(output), anonymize=broken, max_frames=5)
    assert summary.frames_blanked == summary.frames_written == 5
    with av.open(str(output)) as container:
        for decoded in container.decode(video=0):
            assert decoded.to_ndarray(format="bgr24").max() < 20  # black, up to compression noise


def test_image_folder_round_trip(shared_data, tmp_path):
    people = sorted((shared_data / "faces" / "lfw").iterdir())[:3]
    source = tmp_path / "photos"
    source.mkdir()
    for person in people:
        image = next(iter(sorted(person.glob("*.jpg"))))
        (source / image.name).write_bytes(image.read_bytes())
    output = tmp_path / "photos_deid"
    summary = run_pipeline(str(source), str(output))
    written = sorted(p.name for p in output.iterdir())
    assert written == sorted(p.name for p in source.iterdir()) and summary.frames_written == 3
    assert assert_faces_covered_in_video(source, output, every=1) >= 3


def test_a_video_whose_rows_ffmpeg_pads_is_filtered(shared_data, tmp_path):
    """250 pixels wide: FFmpeg pads each decoded row, so the frame arrives as a strided view; it must still be
    de-identified (the source hands the filter packed frames), not blacked out as a filter failure."""
    photos = sorted((shared_data / "faces" / "lfw").glob("*/*.jpg"))[:6]
    clip = tmp_path / "narrow.mp4"
    with av.open(str(clip), "w") as container:
        video = container.add_stream("libx264", rate=5)
        video.width, video.height, video.pix_fmt = 250, 250, "yuv420p"
        for index, photo in enumerate(photos):
            picture = av.VideoFrame.from_ndarray(cv2.imread(str(photo)), format="bgr24")
            picture.pts, picture.time_base = index, Fraction(1, 5)
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    output = tmp_path / "narrow_deid.mp4"
    summary = run_pipeline(str(clip), str(output))
    assert summary.frames_written == 6 and summary.frames_blanked == 0
    assert assert_faces_covered_in_video(clip, output, every=1) >= 6


def test_writing_over_the_source_is_refused(shared_data, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    image = next((shared_data / "faces" / "lfw").glob("*/*.jpg"))
    (folder / image.name).write_bytes(image.read_bytes())
    with pytest.raises(ValueError, match="is the source itself"):
        run_pipeline(str(folder), str(folder))
