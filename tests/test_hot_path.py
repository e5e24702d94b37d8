"""Work the default Filter does not repeat, on a real clip (d10.mp4): the identity encoder runs once per track, all
faces of a frame go to the generator in one call, and a track on the fallback rung gets no generator work (it would
be covered); every face stays covered throughout. A guard threshold no output can pass sends every track to the
fallback rung at its first check, whatever the generator's quality."""
from __future__ import annotations

import pytest

from deid_sdk import Filter
from deid_sdk.detect import CenterFaceDetector
from deid_sdk.io import read_frames
from tests.privacy import assert_every_face_covered

pytestmark = pytest.mark.shared_data


class CountingCalls:
    """The real model, with the batch size of every call recorded."""

    def __init__(self, model, method: str):
        self.model, self.method, self.batches = model, method, []

    def __getattr__(self, name):
        if name == self.method:
            def counted(batch, *rest):
                self.batches.append(len(batch))
                return getattr(self.model, name)(batch, *rest)
            return counted
        return getattr(self.model, name)

    def __call__(self, batch, *rest):
        self.batches.append(len(batch))
        return self.model(batch, *rest)


def test_identity_once_per_track_one_generator_call_per_frame_none_on_the_fallback_rung(shared_data):
    frames = read_frames(str(shared_data / "videos" / "d10.mp4"), 8)
    reference = CenterFaceDetector()
    with Filter(privacy_threshold=1e-6) as face_filter:
        generator = face_filter.generator = CountingCalls(face_filter.generator, "__call__")
        encoder = face_filter.identity_encoder = CountingCalls(face_filter.identity_encoder, "encode_crops")
        tracks, generated_frames, fallback_rung_frames = set(), 0, 0
        for frame in frames:
            calls_before = len(generator.batches)
            output = face_filter(frame)
            assert_every_face_covered(frame, output, reference.detect(frame))
            tracks.update(face.track_id for face in face_filter.faces)
            calls = generator.batches[calls_before:]
            assert len(calls) <= 1, f"one generator call per frame, got {calls}"
            if calls:
                generated_frames += 1
                assert calls[0] == sum(face.landmarks is not None for face in face_filter.faces)
            if all(face.reason == "privacy guard: track on the fallback rung" for face in face_filter.faces):
                fallback_rung_frames += 1
                assert not calls, "a frame whose every track is on the fallback rung ran the generator"
    assert sum(encoder.batches) == len(tracks) >= 1
    assert generated_frames >= 1 and fallback_rung_frames >= 1, (generated_frames, fallback_rung_frames)
    assert generated_frames < len(frames)
