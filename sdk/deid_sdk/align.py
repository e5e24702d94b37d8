"""Similarity alignment of a face to the canonical mean face, and its exact inverse.

The canonical frame is dlib's own mean face (the template `dlib.get_face_chip_details` uses), so the
SDK's 128x128 crop and dlib's 150x150 recognition chip differ only by a fixed scale and shift. That makes
the identity of a crop cheap to compute (see deid_sdk.identity) and keeps training and run time on one geometry.
"""
from __future__ import annotations

import cv2
import numpy as np

CROP_SIZE = 128
# Margin around the mean face, in units of its width (dlib's convention). Large enough that the convex
# hull of all 68 landmarks (jaw and chin included) stays inside the crop for frontal and turned faces.
CROP_PADDING = 0.45
# The mean face sits high in its box (brows at the top, no chin); moving it up by this much (same units)
# centres the 68-point hull, so the chin keeps a margin for the feathered edge.
CROP_SHIFT_UP = 0.12
# dlib's recognition chip: 150x150, padding 0.25, no shift.
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25

# dlib's mean face: normalized positions of landmarks 17..67 (dlib/image_transforms/interpolation.h).
_MEAN_FACE_X = np.array([
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689])
_MEAN_FACE_Y = np.array([
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182])
MEAN_FACE = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], axis=1)  # (51, 2), landmarks 17..67

# The landmarks dlib fits the similarity on: nose, eyes and upper mouth (not brows, lower lip or jaw,
# which move with expression). Using the same set keeps our crop consistent with dlib's chip.
STABLE_LANDMARKS = np.array([i for i in range(27, 68) if not (55 <= i <= 59 or 65 <= i <= 67)])


def normalized_to_crop(size: int = CROP_SIZE, padding: float = CROP_PADDING,
                       shift_up: float = CROP_SHIFT_UP) -> np.ndarray:
    """2x3 matrix from the mean face's normalized coordinates to pixels of a canonical crop."""
    scale = size / (2 * padding + 1)
    return np.array([[scale, 0.0, scale * padding], [0.0, scale, scale * (padding - shift_up)]])


def template_points(size: int = CROP_SIZE, padding: float = CROP_PADDING,
                    shift_up: float = CROP_SHIFT_UP) -> np.ndarray:
    """Positions of STABLE_LANDMARKS in a `size` x `size` canonical crop (dlib's placement for shift 0)."""
    return apply_affine(normalized_to_crop(size, padding, shift_up), MEAN_FACE[STABLE_LANDMARKS - 17])


def fit_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (scale, rotation, translation) mapping source -> target.

    Umeyama's closed form without reflection. Returns a 2x3 float64 matrix M with target ~ M @ [x, y, 1].
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centered, target_centered = source - source_mean, target - target_mean
    variance = (source_centered ** 2).sum() / len(source)
    if variance <= 1e-12:
        raise ValueError("cannot align: the landmarks are degenerate (all at one point)")
    covariance = target_centered.T @ source_centered / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rotation = u @ np.diag(sign) @ vt
    scale = (singular * sign).sum() / variance
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = target_mean - scale * rotation @ source_mean
    return matrix


def face_to_crop(landmarks: np.ndarray, size: int = CROP_SIZE, padding: float = CROP_PADDING,
                 shift_up: float = CROP_SHIFT_UP) -> np.ndarray:
    """2x3 matrix mapping frame pixel coordinates to canonical crop coordinates for 68 landmarks."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got shape {landmarks.shape}")
    return fit_similarity(landmarks[STABLE_LANDMARKS], template_points(size, padding, shift_up))


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Exact inverse of a 2x3 affine matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    linear_inverse = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear_inverse, -linear_inverse @ matrix[:, 2:3]], axis=1)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map Nx2 points through a 2x3 matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 matrix of `outer` applied after `inner`."""
    result = outer[:, :2] @ inner
    result[:, 2] += outer[:, 2]
    return result


def crop_to_dlib_chip() -> np.ndarray:
    """Fixed 2x3 matrix from the SDK's 128x128 crop to dlib's 150x150 recognition chip."""
    to_chip = normalized_to_crop(DLIB_CHIP_SIZE, DLIB_CHIP_PADDING, 0.0)
    return compose_affine(to_chip, invert_affine(normalized_to_crop()))


# The standard 112x112 five-point template of ArcFace-style recognizers (SFace, MobileFaceNet): image-left eye,
# image-right eye, nose tip, image-left mouth corner, image-right mouth corner, in the order detectors give them.
ARCFACE_TEMPLATE = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]])
ALIGNED_SIZE = 112


def align_five_points(image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """112x112 crop with the five points moved onto ARCFACE_TEMPLATE by a least-squares similarity."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected 5x2 facial points, got shape {points.shape}")
    matrix = fit_similarity(points, ARCFACE_TEMPLATE)
    return cv2.warpAffine(image_bgr, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
