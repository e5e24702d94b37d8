"""What a de-identification should keep: a detectable face, its landmarks and pose, and the rest of the frame."""
from __future__ import annotations

import cv2
import numpy as np

from deid_sdk.track import box_iou
from deid_eval.methods import BOX_SCALE, scaled_box

# A generic 3-D head at six of the 68 landmarks: nose tip, chin, outer eye corners, mouth corners. Written in
# the camera's axes (x right, y down, z away from the camera; the eyes lie behind the nose tip), so a frontal
# face has a rotation near identity and yaw/pitch/roll near 0, far from the +-180 degree wrap of the angles.
HEAD_MODEL = np.array([
    [0.0, 0.0, 0.0], [0.0, 330.0, 65.0], [-225.0, -170.0, 135.0],
    [225.0, -170.0, 135.0], [-150.0, 150.0, 125.0], [150.0, 150.0, 125.0]])
HEAD_LANDMARKS = [30, 8, 36, 45, 48, 54]
OUTER_EYE_CORNERS = (36, 45)
DETECTION_IOU = 0.3


def face_region_mask(height: int, width: int, boxes: list[np.ndarray],
                     landmark_sets: list[np.ndarray] = ()) -> np.ndarray:
    """bool mask of the face regions: each box grown like the baselines' (x1.3, 1 pixel more for rounding),
    plus each landmark hull."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for box in boxes:
        x1, y1, x2, y2 = scaled_box(box, width, height, BOX_SCALE)
        mask[max(0, y1 - 1):y2 + 1, max(0, x1 - 1):x2 + 1] = 1
    for landmarks in landmark_sets:
        hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def pixel_change(source: np.ndarray, output: np.ndarray, face_mask: np.ndarray) -> tuple[float, float, int]:
    """Mean absolute change (0-255, over channels) inside and outside the face mask, and changed pixels outside."""
    difference = np.abs(source.astype(np.int16) - output.astype(np.int16))
    inside = float(difference[face_mask].mean()) if face_mask.any() else float("nan")
    outside_values = difference[~face_mask]
    outside = float(outside_values.mean()) if outside_values.size else 0.0
    changed_outside = int(np.count_nonzero(outside_values.max(axis=-1))) if outside_values.size else 0
    return inside, outside, changed_outside


def landmark_error(source_landmarks: np.ndarray, output_landmarks: np.ndarray) -> float:
    """Mean point distance between two 68-landmark sets over the input's outer-eye-corner distance."""
    interocular = float(np.linalg.norm(source_landmarks[OUTER_EYE_CORNERS[0]] - source_landmarks[OUTER_EYE_CORNERS[1]]))
    if interocular <= 1e-6:
        return float("nan")
    return float(np.linalg.norm(source_landmarks - output_landmarks, axis=1).mean() / interocular)


def head_pose(landmarks: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """(yaw, pitch, roll) in degrees from solvePnP of six landmarks on a generic head, or None."""
    focal = float(width)
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    image_points = np.asarray(landmarks, dtype=np.float64)[HEAD_LANDMARKS]
    # SQPnP finds the global optimum; the iterative solver sometimes lands on a flipped pose (roll ~180).
    ok, rotation_vector, _ = cv2.solvePnP(HEAD_MODEL, image_points, camera, np.zeros(4),
                                          flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rotation_vector)
    angles = cv2.RQDecomp3x3(rotation)[0]  # degrees about x (pitch), y (yaw), z (roll)
    return np.array([angles[1], angles[0], angles[2]], dtype=np.float64)


def angle_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Absolute difference of angles in degrees, wrapped to [0, 180]."""
    return np.abs((first - second + 180.0) % 360.0 - 180.0)


def face_detected_at(detections: list, reference_box: np.ndarray) -> bool:
    """True when one detection overlaps the input's face box (IoU >= 0.3)."""
    return any(box_iou(detection.box, reference_box) >= DETECTION_IOU for detection in detections)


class UtilityTally:
    """Per-method accumulation of the utility measures over photos."""

    def __init__(self) -> None:
        self.detected = {"centerface": [], "yunet": []}
        self.landmark_errors: list[float] = []
        self.pose_errors: list[np.ndarray] = []
        self.inside: list[float] = []
        self.outside: list[float] = []
        self.changed_outside = 0

    def summary(self) -> dict:
        def mean(values):
            values = [v for v in values if np.isfinite(v)]
            return float(np.mean(values)) if values else float("nan")

        poses = np.array(self.pose_errors) if self.pose_errors else np.full((1, 3), np.nan)
        return {
            "detection_rate": {name: mean([float(v) for v in values]) for name, values in self.detected.items()},
            "detection_pairs": {name: len(values) for name, values in self.detected.items()},
            "landmark_error": mean(self.landmark_errors),
            "landmark_pairs": len(self.landmark_errors),
            "pose_error_deg": {"yaw": float(np.nanmean(poses[:, 0])), "pitch": float(np.nanmean(poses[:, 1])),
                               "roll": float(np.nanmean(poses[:, 2]))},
            "pixel_change_inside": mean(self.inside),
            "pixel_change_outside": mean(self.outside),
            "changed_pixels_outside": int(self.changed_outside),
        }
