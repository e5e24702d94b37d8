"""Video: a face the detector misses stays protected at its predicted place, a face entering mid-clip is protected
from its first frame, and a scene cut starts fresh tracks. The real CenterFace, landmarks and SFace run; the
missing frames are made by a detector that drops the real detector's answer on chosen frames."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from deid_sdk import Filter
from deid_sdk.detect import CenterFaceDetector
from deid_sdk.scene_cut import SceneCutDetector
from tests.generator_models import write_constant_generator, write_passthrough_generator
from tests.privacy import assert_every_face_covered
from tests.test_filter import faces_grid  # noqa: F401  (the six-face fixture)


class MissingFramesDetector:
    """CenterFace, except that it finds nothing on the frames listed in `missed` (counted from 0)."""

    def __init__(self, missed: set[int]):
        self.detector, self.missed, self.calls = CenterFaceDetector(), missed, 0

    def detect(self, frame_bgr):
        index, self.calls = self.calls, self.calls + 1
        return [] if index in self.missed else self.detector.detect(frame_bgr)


def moving_clip(grid: np.ndarray, frames: int, step: int = 2) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.roll(grid, shift=index * step, axis=1)) for index in range(frames)]


@pytest.mark.parametrize("model_writer, privacy", [(write_constant_generator, "off"),
                                                   (write_passthrough_generator, "default")])
def test_a_detector_that_misses_frames_leaves_no_face_unprotected(faces_grid, tmp_path, model_writer, privacy):
    clip = moving_clip(faces_grid, 8)
    missed = {2, 3, 5}
    reference = CenterFaceDetector()
    with Filter(model=model_writer(tmp_path / "g.onnx"), privacy=privacy,
                detector=MissingFramesDetector(missed)) as face_filter:
        for index, frame in enumerate(clip):
            output = face_filter(frame)
            if index in missed:
                assert len(face_filter.faces) == 6 and all(face.score == 0.0 for face in face_filter.faces)
            assert_every_face_covered(frame, output, reference.detect(frame))


def test_a_face_entering_mid_clip_is_protected_from_its_first_frame(faces_grid, tmp_path):
    half = faces_grid.copy()
    half[:, faces_grid.shape[1] // 2:] = 128  # the right-hand faces are not there yet
    clip = [half, half, half, faces_grid, faces_grid]
    reference = CenterFaceDetector()
    with Filter(model=write_passthrough_generator(tmp_path / "g.onnx")) as face_filter:
        for index, frame in enumerate(clip):
            output = face_filter(frame)
            assert_every_face_covered(frame, output, reference.detect(frame))
            if index == 3:  # the newcomers' first frame: checked by the guard, not let out on trust
                new = [face for face in face_filter.faces if face.box[0] > faces_grid.shape[1] / 2]
                assert new and all(face.checks >= 1 for face in new)


def test_a_scene_cut_starts_fresh_tracks(faces_grid):
    cuts = SceneCutDetector()
    clip = moving_clip(faces_grid, 3)
    other_shot = np.ascontiguousarray(255 - faces_grid[::-1])
    assert [cuts.is_cut(frame) for frame in clip] == [False, False, False]
    assert cuts.is_cut(other_shot)
    with Filter(privacy="off", use_generator=False) as face_filter:
        face_filter(faces_grid)
        first_ids = {face.track_id for face in face_filter.faces}
        face_filter(faces_grid)
        assert {face.track_id for face in face_filter.faces} == first_ids
        face_filter(other_shot)
        assert not {face.track_id for face in face_filter.faces} & first_ids


def test_a_resolution_change_starts_fresh_tracks(faces_grid):
    """The same picture at another size (a stream switching quality): the tracks' boxes are in the old pixels, so
    it counts as a cut, unlike the same size again."""
    cuts = SceneCutDetector()
    smaller = cv2.resize(faces_grid, (faces_grid.shape[1] * 3 // 4, faces_grid.shape[0] * 3 // 4))
    assert [cuts.is_cut(frame) for frame in (faces_grid, faces_grid, smaller, smaller)] == [False, False, True, False]
    with Filter(privacy="off", use_generator=False) as face_filter:
        face_filter(faces_grid)
        first_ids = {face.track_id for face in face_filter.faces}
        assert first_ids
        face_filter(smaller)
        assert face_filter.faces and not {face.track_id for face in face_filter.faces} & first_ids
