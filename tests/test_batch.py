"""`deid batch` on a real local Ray: a worker killed mid-file is restarted and its file redone, nothing is lost or
left half written, every face is covered; a bad file fails alone with its reason; a re-run skips what is complete
and refuses to overwrite what is not. One Ray instance for the module (its start-up is slow on 2 cores)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import av
import cv2
import pytest

from tests.clips import cut_clip
from tests.privacy import assert_faces_covered_in_video
from tests.test_io_cli import decoded_frames

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

# Cheap filter settings for 2 CI cores; the generator still runs on every face.
FILTER = dict(detect_width=320, threads=1)
CLIP_FRAMES = 36


def seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(shared_data, tmp_path_factory) -> Path:
    """Two short real clips, an image folder and a corrupt file."""
    folder = tmp_path_factory.mktemp("archive")
    cut_clip(shared_data / "videos" / "d18.mp4", folder / "talk.mp4", CLIP_FRAMES)
    cut_clip(shared_data / "videos" / "d0.mp4", folder / "walk.mp4", CLIP_FRAMES)
    photos = folder / "photos"
    photos.mkdir()
    with av.open(str(shared_data / "videos" / "s13.mp4")) as reader:
        for index, decoded in enumerate(reader.decode(video=0)):
            if index == 4:
                break
            cv2.imwrite(str(photos / f"{index}.png"), decoded.to_ndarray(format="bgr24"))
    (folder / "corrupt.mp4").write_bytes(os.urandom(40_000))
    return folder


@pytest.fixture(scope="module")
def killed_run(local_ray, archive, tmp_path_factory):
    """The batch on one worker, whose process is SIGKILLed once it has written a few frames of a clip."""
    from deid_sdk.batch import run_batch

    output = tmp_path_factory.mktemp("deid") / "out"
    killed: dict = {}

    def kill_mid_file(snapshot: dict) -> None:
        if killed:
            return
        for source, frames in snapshot["frames"].items():
            if source.endswith(".mp4") and 3 <= frames < CLIP_FRAMES - 5:
                killed.update(source=source, pid=snapshot["pids"][source], frames=frames)
                os.kill(killed["pid"], signal.SIGKILL)
                return

    summary = run_batch(str(archive), output, filter_options=FILTER, workers=1, max_retries=2,
                        on_progress=kill_mid_file)
    return summary, output, killed


def test_killed_worker_is_retried_and_nothing_is_lost_or_half_written(killed_run, archive):
    summary, output, killed = killed_run
    assert killed, "the worker was never caught mid-file (the test did not exercise a failure)"
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)                       # the killed process is gone for good
    results = {Path(r.source).name: r for r in summary.results}
    killed_result = results[Path(killed["source"]).name]
    assert not killed_result.error and killed_result.worker_pid != killed["pid"]  # redone by a restarted worker
    for name in ("talk.mp4", "walk.mp4"):
        assert decoded_frames(output / name) == CLIP_FRAMES
        assert seconds(output / name) == pytest.approx(seconds(archive / name), abs=1e-6)
        assert_faces_covered_in_video(archive / name, output / name, every=5)
    assert (output / "photos").is_dir(), summary.failures
    assert sorted(p.name for p in (output / "photos").iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    assert_faces_covered_in_video(archive / "photos", output / "photos", every=1)
    # nothing half written: only the three verified outputs, no partial name, nothing for the corrupt file
    assert sorted(p.name for p in output.iterdir()) == ["photos", "talk.mp4", "walk.mp4"]
    assert summary.done == 3 and summary.frames == 2 * CLIP_FRAMES + 4


def test_a_bad_file_fails_alone_with_its_reason(killed_run, archive):
    summary, _output, _killed = killed_run
    assert list(summary.failures) == [str(archive / "corrupt.mp4")]
    assert "cannot read video file" in next(iter(summary.failures.values()))
    assert any("failed: " in line and "corrupt.mp4" in line for line in summary.lines())


def test_rerun_skips_complete_outputs_and_refuses_incomplete_ones(killed_run, archive, capsys):
    from deid_sdk.cli import main

    _summary, output, _killed = killed_run
    (output / "walk.mp4").unlink()                          # redone
    cut_clip(archive / "talk.mp4", output / "talk.mp4", 10)  # someone else's shorter file: kept, reported
    shorter = (output / "talk.mp4").read_bytes()
    status = main(["batch", "--input", str(archive), "--output", str(output), "--workers", "1", "--quiet",
                   "--detect-width", "320", "--threads", "1"])
    assert status == 1                                      # the corrupt file and the incomplete output
    assert decoded_frames(output / "walk.mp4") == CLIP_FRAMES
    assert (output / "talk.mp4").read_bytes() == shorter
    err = capsys.readouterr().err
    assert "4 files: 1 done, 1 already complete, 2 failed" in err
    assert "talk.mp4 exists but is not a complete output" in err
