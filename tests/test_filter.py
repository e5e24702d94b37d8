"""Filter: the per-frame pipeline on real faces with the real detector and landmarks.

Geometry is proven with contract-following test generators (privacy="off": the guard would rightly send their
recognizable output to the fallback; tests/test_privacy_guard.py covers the guard): a pass-through model (image = crop, mask = 1)
must give back the frame inside the hull and leave every pixel outside it bit-identical; a constant-colour
model shows that nothing outside the hull is ever written; an identity-colour model (image colour = the identity
it was given) shows which identity reached the generator for each face.
"""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from deid_sdk import Filter, align, ops
from deid_sdk.identity import IdentityEncoder
from tests.generator_models import (identity_colour_bgr, write_broken_generator, write_constant_generator,
                                    write_identity_colour_generator, write_nan_generator,
                                    write_passthrough_generator)
from tests.privacy import assert_every_face_covered

LFW_PEOPLE = ["Aaron_Peirsol", "Angelina_Jolie", "Colin_Powell", "Serena_Williams", "Yao_Ming", "Halle_Berry"]


def lfw_face(shared_data, name: str) -> np.ndarray:
    matches = sorted((shared_data / "faces" / "lfw" / name).glob("*.jpg"))
    if not matches:
        pytest.skip(f"LFW person {name} not in {shared_data}")
    return cv2.imread(str(matches[0]))


@pytest.fixture(scope="module")
def faces_grid(shared_data):
    """Six real faces tiled 2x3 on one frame (500x750)."""
    tiles = [lfw_face(shared_data, name) for name in LFW_PEOPLE]
    return np.ascontiguousarray(np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0))


@pytest.fixture(scope="module")
def passthrough_model(tmp_path_factory):
    return write_passthrough_generator(tmp_path_factory.mktemp("models") / "passthrough.onnx")


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    return write_constant_generator(tmp_path_factory.mktemp("models") / "constant.onnx")


def hull_mask(shape, landmarks, grow: int = 0) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(cv2.convexHull(landmarks.astype(np.float32))).astype(np.int32).reshape(-1, 2), 1)
    if grow:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return mask.astype(bool)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


# -- geometry ------------------------------------------------------------------------------------

def test_passthrough_round_trip_keeps_the_frame(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        output = face_filter(faces_grid)
        faces = face_filter.faces
    assert len(faces) == 6
    assert all(face.status == "deidentified" for face in faces)
    union = np.zeros(faces_grid.shape[:2], bool)
    for face in faces:
        inside = hull_mask(faces_grid.shape, face.landmarks)
        union |= hull_mask(faces_grid.shape, face.landmarks, grow=1)
        # Crop out and paste back through two bilinear resamplings: close to the original, not equal.
        assert psnr(output[inside], faces_grid[inside]) > 30.0
    assert np.array_equal(output[~union], faces_grid[~union]), "pixels outside the landmark hulls changed"


def test_constant_generator_writes_only_inside_the_hull(faces_grid, constant_model):
    with Filter(model=constant_model, privacy="off", feather=0.0) as face_filter:
        output = face_filter(faces_grid)
        faces = face_filter.faces
    changed = np.any(output != faces_grid, axis=2)
    union = np.zeros_like(changed)
    for face in faces:
        union |= hull_mask(faces_grid.shape, face.landmarks, grow=1)
    assert changed.any()
    assert not (changed & ~union).any(), "the blend wrote outside the convex hull of the landmarks"
    green = output[changed]
    assert np.median(green[:, 1]) == 255 and np.median(green[:, [0, 2]]) == 0


def test_inplace_writes_into_the_frame(faces_grid, constant_model):
    frame = faces_grid.copy()
    with Filter(model=constant_model, privacy="off") as face_filter:
        returned = face_filter(frame, inplace=True)
        expected = face_filter(faces_grid)
    assert returned is frame
    assert np.array_equal(frame, expected)


def test_rgb_colour_order(faces_grid, constant_model):
    with Filter(model=constant_model, privacy="off", color="rgb", feather=0.0) as face_filter:
        output = face_filter(np.ascontiguousarray(faces_grid[:, :, ::-1]))
    changed = np.any(output != faces_grid[:, :, ::-1], axis=2)
    assert np.median(output[changed][:, 1]) == 255 and np.median(output[changed][:, 0]) == 0


# -- fail-safe privacy ---------------------------------------------------------------------------

def test_no_model_falls_back_for_every_face(faces_grid, monkeypatch, tmp_path):
    monkeypatch.setenv("DEID_MODEL_DIR", str(tmp_path))  # an empty folder first in the search path
    monkeypatch.setattr("deid_sdk.filter.default_generator_path", lambda precision="fp32": None)
    with Filter() as face_filter:
        assert not face_filter.generator_available
        output = face_filter(faces_grid)
        assert {face.status for face in face_filter.faces} == {"fallback"}
        assert_every_face_covered(faces_grid, output, face_filter.faces)


def test_generator_can_be_switched_off(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, privacy="off", use_generator=False) as face_filter:
        assert not face_filter.generator_available
        output = face_filter(faces_grid)
        assert {face.status for face in face_filter.faces} == {"fallback"}
        assert_every_face_covered(faces_grid, output, face_filter.faces)


@pytest.mark.parametrize("writer, fault", [(write_broken_generator, "wrong output shape"),
                                           (write_nan_generator, "non-finite output")], ids=["shape", "nan"])
def test_model_faults_fall_back_and_are_logged_once(faces_grid, tmp_path, caplog, writer, fault):
    with Filter(model=writer(tmp_path / "faulty.onnx")) as face_filter:
        with caplog.at_level(logging.ERROR, logger="deid_sdk"):
            for _ in range(3):
                output = face_filter(faces_grid)
                assert {face.status for face in face_filter.faces} == {"fallback"}
                assert all(f"model error: faulty.onnx: {fault}" == face.reason for face in face_filter.faces)
                assert_every_face_covered(faces_grid, output, face_filter.faces)
    assert len([r for r in caplog.records if fault in r.getMessage()]) == 1, "one log line per kind, not per frame"


def test_a_bug_propagates_after_every_face_was_covered_in_place(faces_grid, passthrough_model, monkeypatch):
    frame = faces_grid.copy()
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        def buggy(*_):
            raise ZeroDivisionError("a bug in the pipeline")

        monkeypatch.setattr(face_filter, "_identity_for", buggy)
        with pytest.raises(ZeroDivisionError, match="a bug"):
            face_filter(frame, inplace=True)
        detections = face_filter.detector.detect(faces_grid)
    assert len(detections) == 6
    assert_every_face_covered(faces_grid, frame, detections)  # the frame itself never holds an uncovered face


def test_failed_landmarks_fall_back(faces_grid, passthrough_model, monkeypatch):
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        monkeypatch.setattr(face_filter.landmark_predictor, "predict", lambda frame, box: np.zeros((68, 2)))
        output = face_filter(faces_grid)
        assert {face.reason for face in face_filter.faces} == {"landmarks not found"}
        assert_every_face_covered(faces_grid, output, face_filter.faces)


def test_small_faces_fall_back(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, privacy="off", min_face=400, fallback="pixelate") as face_filter:
        output = face_filter(faces_grid)
        assert all(face.status == "fallback" and "min_face" in face.reason for face in face_filter.faces)
        assert_every_face_covered(faces_grid, output, face_filter.faces)


# -- odd but valid input -------------------------------------------------------------------------

def test_no_faces_leaves_the_frame_untouched(passthrough_model):
    frame = np.full((240, 320, 3), 90, np.uint8)
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        assert np.array_equal(face_filter(frame), frame)
        assert face_filter.faces == []
        assert face_filter.stats["faces"] == 0 and face_filter.stats["total"] > 0


def test_faces_cut_by_the_border_tiny_faces_and_grey_content(shared_data, constant_model):
    face = lfw_face(shared_data, "Colin_Powell")
    cut = np.ascontiguousarray(np.concatenate([face[:, 120:], np.zeros((250, 60, 3), np.uint8)], 1))
    tiny = cv2.resize(face, (40, 40))
    scene = np.zeros((240, 320, 3), np.uint8)
    scene[100:140, 100:140] = tiny
    grey = np.ascontiguousarray(np.repeat(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2))
    with Filter(model=constant_model, privacy="off", min_face=24) as face_filter:  # a visible change wherever it writes
        for name, frame in (("cut", cut), ("tiny", scene), ("grey", grey)):
            output = face_filter(frame)
            assert output.shape == frame.shape and output.dtype == np.uint8
            assert len(face_filter.faces) == 1, f"{name}: expected the face to be detected"
            assert_every_face_covered(frame, output, face_filter.faces)
            face_filter.reset()
        assert face_filter(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1, 3)


@pytest.mark.parametrize("bad, error", [
    (None, TypeError),
    ([[1, 2, 3]], TypeError),
    (np.zeros((10, 10), np.uint8), ValueError),
    (np.zeros((1, 10, 10, 3), np.uint8), ValueError),
    (np.zeros((10, 10, 4), np.uint8), ValueError),
    (np.zeros((10, 10, 3), np.float32), TypeError),
    (np.zeros((0, 10, 3), np.uint8), ValueError),
    (np.zeros((10, 20, 3), np.uint8)[:, ::2], ValueError),
])
def test_bad_frames_raise_clear_errors(passthrough_model, bad, error):
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        with pytest.raises(error, match="expected"):
            face_filter(bad)


@pytest.mark.parametrize("option, value, error", [
    ("strength", 2.0, ValueError), ("strength", "strong", TypeError), ("fallback", "smudge", ValueError),
    ("min_face", 0, ValueError), ("min_face", 2.5, ValueError), ("threshold", 1.5, ValueError),
    ("threshold", None, TypeError), ("backend", "tensorrt-ish", ValueError), ("color", "yuv", ValueError),
    ("feather", -1.0, ValueError), ("feather", float("nan"), ValueError), ("feather", "soft", TypeError),
    ("impl", "gpu", ValueError), ("impl", "cuda", ValueError), ("detect_width", 16, ValueError),
    ("detect_width", 320.5, ValueError), ("tracking", "yes", TypeError), ("threads", 0, ValueError),
    ("threads", True, ValueError), ("detector", object(), TypeError), ("use_generator", 1, TypeError),
    ("model", 42, TypeError), ("target", np.zeros(64), ValueError), ("target", np.full(128, np.nan), ValueError),
    ("target", np.zeros((10, 10), np.uint8), ValueError), ("precision", "int4", ValueError),
    ("target", np.zeros((10, 10), np.uint8), ValueError), ("privacy", "paranoid", ValueError),
    ("privacy_threshold", 1.5, ValueError), ("privacy_threshold", "low", TypeError),
    ("privacy", True, ValueError),
])
def test_every_option_is_checked_when_given_with_its_name(option, value, error):
    with pytest.raises(error, match=option):
        Filter(**{option: value})


def test_bad_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        Filter(model=tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match="corrupt.onnx"):
        Filter(model=corrupt)


def test_manifest_checksum_mismatch_is_reported(tmp_path):
    model = write_passthrough_generator(tmp_path / "deid_generator.onnx")
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [{"file": model.name, "sha256": "0" * 64}]}))
    with pytest.raises(ValueError, match="does not match the manifest"):
        Filter(model=model)


def test_reset_forgets_tracks(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        face_filter(faces_grid)
        first_ids = {face.track_id for face in face_filter.faces}
        face_filter(faces_grid)
        assert {face.track_id for face in face_filter.faces} == first_ids  # same faces, same tracks
        face_filter.reset()
        assert face_filter.faces == [] and face_filter.tracker.tracks == []
        face_filter(faces_grid)
        assert not {face.track_id for face in face_filter.faces} & first_ids  # new tracks after a reset


def test_inplace_on_a_strided_view_raises_and_leaves_it_untouched(faces_grid, passthrough_model):
    parent = faces_grid.copy()
    view = parent[:, 100:600]  # a region of interest: not C-contiguous
    with Filter(model=passthrough_model, privacy="off") as face_filter:
        for inplace in (True, False):
            with pytest.raises(ValueError, match="C-contiguous"):
                face_filter(view, inplace=inplace)
    assert np.array_equal(parent, faces_grid)


def test_threads_reach_the_kernels(faces_grid, passthrough_model, monkeypatch):
    """The compiled kernels run (a spy forwards to them) and receive the Filter's thread count."""
    compiled = ops.warp_blend._C
    received = []

    class Spy:
        def __getattr__(self, name):
            function = getattr(compiled, name)

            def forward(*arguments):
                received.append((name, arguments[-1]))
                return function(*arguments)
            return forward

    monkeypatch.setattr(ops.warp_blend, "_C", Spy())
    with Filter(model=passthrough_model, privacy="off", threads=3, impl="cpu") as face_filter:
        face_filter(faces_grid)
    assert {call for call in received} == {("warp_to_crop_cpu", 3), ("blend_from_crop_cpu", 3)}


# -- the identity that reaches the generator -----------------------------------------------------

@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    return write_identity_colour_generator(tmp_path_factory.mktemp("models") / "identity_colour.onnx")


def face_colour(output: np.ndarray, face) -> np.ndarray:
    """Median BGR value inside the hull of a face (eroded, away from the edge)."""
    inside = cv2.erode(hull_mask(output.shape, face.landmarks).astype(np.uint8), np.ones((9, 9), np.uint8))
    return np.median(output[inside.astype(bool)], axis=0)


def test_target_identity_reaches_the_generator_for_every_face(faces_grid, colour_model):
    target = np.zeros(128, np.float32)
    target[:3] = [0.2, -0.1, 0.05]
    with Filter(model=colour_model, privacy="off", target=target, feather=0.0) as face_filter:
        output = face_filter(faces_grid)
        assert len(face_filter.faces) == 6
        for face in face_filter.faces:
            np.testing.assert_allclose(face_colour(output, face), identity_colour_bgr(target), atol=2)


def test_target_image_gives_that_persons_identity(shared_data, faces_grid, colour_model):
    target_image = lfw_face(shared_data, "Yao_Ming")
    with Filter(model=colour_model, privacy="off", target=target_image, feather=0.0) as face_filter:
        output = face_filter(faces_grid)
        (detection,) = face_filter.detector.detect(target_image)
        landmarks = face_filter.landmark_predictor.predict(target_image, detection.box)
    expected = IdentityEncoder().encode(target_image, landmarks)
    for face in face_filter.faces:
        np.testing.assert_allclose(face_colour(output, face), identity_colour_bgr(expected), atol=2)


def test_each_track_keeps_the_identity_it_started_with(faces_grid, colour_model):
    """Frame 1: each face gets its own identity. Frame 2: the top row's people change places; the tracks stay
    where they were, so each place keeps the identity of the person first seen there (computed once per track)."""
    encoder = IdentityEncoder()
    with Filter(model=colour_model, privacy="off", feather=0.0) as face_filter:
        first = face_filter(faces_grid)
        first_faces = sorted(face_filter.faces, key=lambda f: (round(float(f.box[1]) / 250), float(f.box[0])))
        colours = []
        for face in first_faces:
            crop = cv2.warpAffine(faces_grid, align.face_to_crop(face.landmarks), (128, 128),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            expected = identity_colour_bgr(encoder.encode_crops(crop[None])[0])
            np.testing.assert_allclose(face_colour(first, face), expected, atol=3)
            colours.append(expected)
        assert min(np.abs(a - b).max() for i, a in enumerate(colours) for b in colours[i + 1:]) > 6

        swapped = faces_grid.copy()
        swapped[:250, :250], swapped[:250, 250:500] = faces_grid[:250, 250:500], faces_grid[:250, :250]
        second = face_filter(swapped)
        second_faces = sorted(face_filter.faces, key=lambda f: (round(float(f.box[1]) / 250), float(f.box[0])))
        assert [f.track_id for f in second_faces] == [f.track_id for f in first_faces]
        for face, colour in zip(second_faces, colours):
            np.testing.assert_allclose(face_colour(second, face), colour, atol=3)
    with Filter(model=colour_model, privacy="off", feather=0.0) as fresh:
        fresh_output = fresh(swapped)
        fresh_faces = sorted(fresh.faces, key=lambda f: (round(float(f.box[1]) / 250), float(f.box[0])))
        # A new filter sees the swapped people: the first two places change colour.
        for index in (0, 1):
            assert np.abs(face_colour(fresh_output, fresh_faces[index]) - colours[index]).max() > 6


def test_closed_filter_refuses_frames(passthrough_model):
    face_filter = Filter(model=passthrough_model, privacy="off")
    face_filter.close()
    with pytest.raises(RuntimeError, match="closed"):
        face_filter(np.zeros((8, 8, 3), np.uint8))
