"""Filter: the per-frame pipeline on real faces with the real detector and landmarks.

Geometry is proven with contract-following test generators: a pass-through model (image = crop, mask = 1)
must give back the frame inside the hull and leave every pixel outside it bit-identical; a constant-colour
model shows that nothing outside the hull is ever written.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from deid_sdk import Filter
from tests.generator_models import write_broken_generator, write_constant_generator, write_passthrough_generator

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
    with Filter(model=passthrough_model) as face_filter:
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
    with Filter(model=constant_model, feather=0.0) as face_filter:
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
    with Filter(model=constant_model) as face_filter:
        returned = face_filter(frame, inplace=True)
        expected = face_filter(faces_grid)
    assert returned is frame
    assert np.array_equal(frame, expected)


def test_rgb_colour_order(faces_grid, constant_model):
    with Filter(model=constant_model, color="rgb", feather=0.0) as face_filter:
        output = face_filter(np.ascontiguousarray(faces_grid[:, :, ::-1]))
    changed = np.any(output != faces_grid[:, :, ::-1], axis=2)
    assert np.median(output[changed][:, 1]) == 255 and np.median(output[changed][:, 0]) == 0


# -- fail-safe privacy ---------------------------------------------------------------------------

def assert_every_face_covered(original: np.ndarray, output: np.ndarray, faces) -> None:
    """No detected face may pass through unchanged: the central part of every box must differ clearly."""
    assert faces, "expected detected faces"
    for face in faces:
        x1, y1, x2, y2 = face.box.astype(int)
        cx1, cy1, cx2, cy2 = x1 + (x2 - x1) // 4, y1 + (y2 - y1) // 4, x2 - (x2 - x1) // 4, y2 - (y2 - y1) // 4
        before = original[cy1:cy2, cx1:cx2].astype(np.int16)
        after = output[cy1:cy2, cx1:cx2].astype(np.int16)
        unchanged = np.mean(np.all(before == after, axis=2))
        assert unchanged < 0.2, f"face {face.track_id} ({face.status}, {face.reason}) is {unchanged:.0%} unchanged"


def test_no_model_falls_back_for_every_face(faces_grid, monkeypatch, tmp_path):
    monkeypatch.setenv("DEID_MODEL_DIR", str(tmp_path))  # an empty folder first in the search path
    monkeypatch.setattr("deid_sdk.filter.default_generator_path", lambda: None)
    with Filter() as face_filter:
        assert not face_filter.generator_available
        output = face_filter(faces_grid)
        assert {face.status for face in face_filter.faces} == {"fallback"}
        assert_every_face_covered(faces_grid, output, face_filter.faces)


def test_generator_can_be_switched_off(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, use_generator=False) as face_filter:
        assert not face_filter.generator_available
        output = face_filter(faces_grid)
        assert {face.status for face in face_filter.faces} == {"fallback"}
        assert_every_face_covered(faces_grid, output, face_filter.faces)


def test_generator_error_falls_back(faces_grid, tmp_path):
    with Filter(model=write_broken_generator(tmp_path / "broken.onnx")) as face_filter:
        output = face_filter(faces_grid)
        assert {face.status for face in face_filter.faces} == {"fallback"}
        assert all("pipeline error" in face.reason for face in face_filter.faces)
        assert_every_face_covered(faces_grid, output, face_filter.faces)


def test_failed_landmarks_fall_back(faces_grid, passthrough_model, monkeypatch):
    with Filter(model=passthrough_model) as face_filter:
        monkeypatch.setattr(face_filter.landmarks, "predict", lambda frame, box: np.zeros((68, 2)))
        output = face_filter(faces_grid)
        assert {face.reason for face in face_filter.faces} == {"landmarks not found"}
        assert_every_face_covered(faces_grid, output, face_filter.faces)


def test_small_faces_fall_back(faces_grid, passthrough_model):
    with Filter(model=passthrough_model, min_face=400, fallback="pixelate") as face_filter:
        output = face_filter(faces_grid)
        assert all(face.status == "fallback" and "min_face" in face.reason for face in face_filter.faces)
        assert_every_face_covered(faces_grid, output, face_filter.faces)


# -- odd but valid input -------------------------------------------------------------------------

def test_no_faces_leaves_the_frame_untouched(passthrough_model):
    frame = np.full((240, 320, 3), 90, np.uint8)
    with Filter(model=passthrough_model) as face_filter:
        assert np.array_equal(face_filter(frame), frame)
        assert face_filter.faces == []
        assert face_filter.stats["faces"] == 0 and face_filter.stats["total"] > 0


def test_faces_cut_by_the_border_tiny_faces_and_grey_content(shared_data, passthrough_model):
    face = lfw_face(shared_data, "Colin_Powell")
    cut = np.ascontiguousarray(np.concatenate([face[:, 120:], np.zeros((250, 60, 3), np.uint8)], 1))
    tiny = cv2.resize(face, (40, 40))
    scene = np.zeros((240, 320, 3), np.uint8)
    scene[100:140, 100:140] = tiny
    grey = np.ascontiguousarray(np.repeat(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2))
    with Filter(model=passthrough_model) as face_filter:
        detected = []
        for frame in (cut, scene, grey, np.zeros((1, 1, 3), np.uint8)):
            output = face_filter(frame)
            assert output.shape == frame.shape and output.dtype == np.uint8
            detected.append(len(face_filter.faces))
    assert detected[2] == 1, "the grey face should still be detected"


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
    with Filter(model=passthrough_model) as face_filter:
        with pytest.raises(error, match="expected"):
            face_filter(bad)


def test_bad_options_and_model_files(tmp_path):
    with pytest.raises(ValueError, match="strength"):
        Filter(strength=2.0)
    with pytest.raises(ValueError, match="fallback"):
        Filter(fallback="smudge")
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
    with Filter(model=passthrough_model) as face_filter:
        face_filter(faces_grid)
        first_ids = {face.track_id for face in face_filter.faces}
        face_filter(faces_grid)
        assert {face.track_id for face in face_filter.faces} == first_ids  # same faces, same tracks
        face_filter.reset()
        assert face_filter.faces == [] and face_filter.tracker.tracks == []
        face_filter(faces_grid)
        assert not {face.track_id for face in face_filter.faces} & first_ids  # new tracks after a reset


def test_closed_filter_refuses_frames(passthrough_model):
    face_filter = Filter(model=passthrough_model)
    face_filter.close()
    with pytest.raises(RuntimeError, match="closed"):
        face_filter(np.zeros((8, 8, 3), np.uint8))
