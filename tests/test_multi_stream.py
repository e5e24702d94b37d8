"""`deid run` with several --source/--sink pairs: one process, one set of models, the faces of all streams in one
generator call per tick. Real clips, the real generator (its calls counted from outside), every face covered on
every output; a failing stream fails alone and the exit status says so; pairs are checked at parse time."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from deid_sdk.align import CROP_SIZE
from deid_sdk.cli import main
from deid_sdk.generator import Generator, default_generator_path
from deid_sdk.generator_batcher import GeneratorBatcher
from deid_sdk.identity import IDENTITY_SIZE
from tests.clips import cut_clip
from tests.privacy import assert_faces_covered_in_video
from tests.test_io_cli import decoded_frames

CLIP_FRAMES = 24
CHEAP = ("--detect-width", "320", "--threads", "1")  # 2 CI cores; the generator still runs on every face


@pytest.fixture(scope="module")
def clips(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("streams")
    cut_clip(shared_data / "videos" / "d18.mp4", folder / "talk.mp4", CLIP_FRAMES)
    cut_clip(shared_data / "videos" / "d0.mp4", folder / "walk.mp4", CLIP_FRAMES)
    return folder


@pytest.fixture
def generator_calls(monkeypatch):
    """Rows of every call of the real generator, and the number of calls the streams' Filters made."""
    calls = {"generator_rows": [], "stream_calls": 0}
    lock = threading.Lock()
    real_generator, real_batcher = Generator.__call__, GeneratorBatcher.__call__

    def generator(self, crops, identities, strengths):
        with lock:
            calls["generator_rows"].append(len(crops))
        return real_generator(self, crops, identities, strengths)

    def batcher(self, crops, identities, strengths):
        with lock:
            calls["stream_calls"] += 1
        return real_batcher(self, crops, identities, strengths)

    monkeypatch.setattr(Generator, "__call__", generator)
    monkeypatch.setattr(GeneratorBatcher, "__call__", batcher)
    return calls


@pytest.mark.shared_data
def test_two_streams_share_generator_calls_and_cover_every_face(clips, tmp_path, generator_calls, capsys):
    sources = [clips / "talk.mp4", clips / "walk.mp4"]
    sinks = [tmp_path / "talk_deid.mp4", tmp_path / "walk_deid.mp4"]
    status = main(["run", "-i", str(sources[0]), "-o", str(sinks[0]), "-i", str(sources[1]), "-o", str(sinks[1]),
                   *CHEAP])
    assert status == 0, capsys.readouterr().err
    rows = generator_calls["generator_rows"]
    # Each Filter calls the generator at most once a frame; fewer real calls than theirs means calls were shared.
    assert rows and generator_calls["stream_calls"] > len(rows), generator_calls
    assert max(rows) > 1, rows
    for source, sink in zip(sources, sinks):
        assert decoded_frames(sink) == CLIP_FRAMES
        assert assert_faces_covered_in_video(source, sink, every=6) > 0


@pytest.mark.shared_data
def test_a_failing_stream_fails_alone_and_the_exit_status_says_so(clips, tmp_path, capsys):
    good = tmp_path / "good.mp4"
    status = main(["run", "-i", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "lost.mp4"),
                   "-i", str(clips / "talk.mp4"), "-o", str(good), *CHEAP])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "missing.mp4" in err and "1 of 2 streams lost work" in err, err
    assert decoded_frames(good) == CLIP_FRAMES
    assert assert_faces_covered_in_video(clips / "talk.mp4", good, every=6) > 0


@pytest.mark.parametrize("pairs, message", [
    (["-i", "a.mp4", "-o", "a_out.mp4", "-i", "b.mp4"], "got 2 --source and 1 --sink"),
    (["-i", "a.mp4", "-o", "out.mp4", "-i", "b.mp4", "-o", "out.mp4"], "out.mp4 more than once"),
])
def test_unpaired_or_shared_sinks_are_usage_errors(pairs, message, capsys):
    assert main(["run", *pairs]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(default_generator_path() is None, reason="no generator model installed")
def test_batched_rows_come_back_to_their_stream_as_from_a_call_of_their_own():
    generator = Generator(default_generator_path(), threads=1)
    rows_per_call = []

    def counted_generator(crops, identities, strengths):
        rows_per_call.append(len(crops))
        return generator(crops, identities, strengths)

    batcher = GeneratorBatcher(counted_generator)
    rng = np.random.default_rng(0)
    inputs = [(rng.uniform(-1, 1, (count, 3, CROP_SIZE, CROP_SIZE)).astype(np.float32),
               rng.normal(size=(count, IDENTITY_SIZE)).astype(np.float32),
               np.full((count, 1), strength, np.float32)) for count, strength in ((1, 1.0), (3, 0.5))]
    results = [None, None]
    inside = threading.Barrier(2)  # both streams inside a frame before either calls: one batch of 4 rows

    def stream(index):
        with batcher.frame():
            inside.wait()
            results[index] = batcher(*inputs[index])

    threads = [threading.Thread(target=stream, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rows_per_call == [4]
    for (crops, identities, strengths), (images, masks) in zip(inputs, results):
        alone_images, alone_masks = generator(crops, identities, strengths)
        np.testing.assert_allclose(images, alone_images, atol=1e-4)
        np.testing.assert_allclose(masks, alone_masks, atol=1e-4)


@pytest.mark.skipif(default_generator_path() is None, reason="no generator model installed")
def test_a_stream_stuck_inside_a_frame_does_not_hold_the_others():
    generator = Generator(default_generator_path(), threads=1)
    batcher = GeneratorBatcher(generator)
    release = threading.Event()

    def stuck_stream():
        with batcher.frame():
            release.wait(30)

    stuck = threading.Thread(target=stuck_stream)
    stuck.start()
    try:
        crops = np.zeros((2, 3, CROP_SIZE, CROP_SIZE), np.float32)
        with batcher.frame():  # waits for the stuck stream at most MAX_WAIT, then goes alone
            images, masks = batcher(crops, np.zeros((2, IDENTITY_SIZE), np.float32), np.ones((2, 1), np.float32))
        assert images.shape == crops.shape and masks.shape == (2, 1, CROP_SIZE, CROP_SIZE)
        assert stuck.is_alive()  # it never called: the rows went without it
    finally:
        release.set()
        stuck.join()
