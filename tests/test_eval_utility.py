"""Utility measures of deid_eval: pixel change, landmark error, head pose, face region."""
import numpy as np
import pytest

from deid_eval.utility import angle_difference, face_region_mask, head_pose, landmark_error, pixel_change


def test_pixel_change_separates_inside_and_outside():
    source = np.zeros((10, 10, 3), dtype=np.uint8)
    output = source.copy()
    output[2:4, 2:4] = 30
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:4, 2:4] = True
    assert pixel_change(source, output, mask) == (30.0, 0.0, 0)
    output[9, 9, 0] = 50
    inside, outside, changed = pixel_change(source, output, mask)
    assert changed == 1 and outside == pytest.approx(50 / (96 * 3))


def test_face_region_covers_the_enlarged_box_and_the_landmark_hull():
    landmarks = np.array([[5.0, 5.0], [15.0, 5.0], [10.0, 18.0]] + [[10.0, 10.0]] * 65)
    mask = face_region_mask(40, 40, [np.array([20.0, 20.0, 30.0, 30.0])], [landmarks])
    assert mask[18:32, 18:32].all() and not mask[33, 25]  # 10-pixel box grown by 1.3 (+1 pixel)
    assert mask[6, 10] and not mask[0, 0]


def _frontal_landmarks():
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(80, 120, (68, 2))
    # A plausible frontal face for the six pose points (nose, chin, eye corners, mouth corners).
    landmarks[[30, 8, 36, 45, 48, 54]] = [[100, 100], [100, 160], [65, 75], [135, 75], [78, 128], [122, 128]]
    return landmarks


def test_landmark_error_is_normalised_by_the_outer_eye_corners():
    landmarks = _frontal_landmarks()
    assert landmark_error(landmarks, landmarks) == 0.0
    assert landmark_error(landmarks, landmarks + [7.0, 0.0]) == pytest.approx(0.1)


def test_head_pose_of_a_rotated_face_differs_by_the_roll():
    landmarks = _frontal_landmarks()
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated = (landmarks - 100) @ rotation.T + 100
    difference = angle_difference(head_pose(landmarks, 200, 200), head_pose(rotated, 200, 200))
    assert difference[2] == pytest.approx(10, abs=1.5)
    assert difference[0] < 2 and difference[1] < 2
    assert angle_difference(np.array([179.0]), np.array([-179.0]))[0] == pytest.approx(2.0)
