"""Which inputs `deid batch` takes and where their outputs go (no Ray needed), and its usage errors."""
from __future__ import annotations

import pytest

from deid_sdk.batch import plan_jobs
from deid_sdk.cli import main


@pytest.fixture
def archive(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.MKV", "notes.txt", ".hidden.mp4"):
        (tmp_path / "in" / name).write_bytes(b"x")
    (tmp_path / "in" / "photos").mkdir()
    (tmp_path / "in" / "photos" / "1.png").write_bytes(b"x")
    (tmp_path / "in" / "empty").mkdir()
    return tmp_path


def test_a_folder_gives_its_videos_and_image_folders(archive):
    jobs = plan_jobs(str(archive / "in"), archive / "out")
    assert [(j.source.name, j.output) for j in jobs] == [
        ("a.mp4", archive / "out" / "a.mp4"), ("b.MKV", archive / "out" / "b.MKV"),
        ("photos", archive / "out" / "photos")]
    assert jobs[0].partial == archive / "out" / ".a.partial.mp4"
    assert jobs[2].partial_uri == f"{archive / 'out' / '.photos.partial'}/"


def test_a_glob_recurses_and_skips_the_output_folder(archive):
    (archive / "in" / "deep").mkdir()
    (archive / "in" / "deep" / "c.mp4").write_bytes(b"x")
    (archive / "in" / "out").mkdir()
    (archive / "in" / "out" / "a.mp4").write_bytes(b"x")   # an earlier run's output inside the input folder
    jobs = plan_jobs(str(archive / "in" / "**" / "*.mp4"), archive / "in" / "out")
    assert sorted(j.source.name for j in jobs) == ["a.mp4", "c.mp4"]


@pytest.mark.parametrize("inputs, message", [
    ("{root}/missing", "expected a folder or a glob pattern"),
    ("{root}/in/*.avi", "no video files"),
])
def test_nothing_to_do_is_a_clear_error(archive, inputs, message):
    with pytest.raises(ValueError, match=message):
        plan_jobs(inputs.format(root=archive), archive / "out")


def test_two_inputs_with_one_output_name_are_refused(archive):
    (archive / "in" / "deep").mkdir()
    (archive / "in" / "deep" / "a.mp4").write_bytes(b"x")
    with pytest.raises(ValueError, match="would both be written to"):
        plan_jobs(str(archive / "in" / "**" / "a.mp4"), archive / "out")


@pytest.mark.parametrize("flags", [["--workers", "0"], ["--max-retries", "-1"], ["--gpus-per-worker", "-1"]])
def test_bad_ray_options_are_usage_errors(archive, flags, capsys):
    assert main(["batch", "--input", str(archive / "in"), "--output", str(archive / "out"), *flags]) == 2
    assert flags[0] in capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_1(archive, capsys):
    assert main(["batch", "--input", str(archive / "nope"), "--output", str(archive / "out")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"deid batch: error: --input: expected a folder or a glob pattern (e.g. 'footage/*.mp4'), "
                     f"got '{archive / 'nope'}', which is neither"]
