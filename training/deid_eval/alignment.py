"""Five-point alignment to the standard 112x112 ArcFace template (what SFace and MobileFaceNet expect)."""
from __future__ import annotations

import cv2
import numpy as np
from deid_sdk.align import fit_similarity

# Image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
ARCFACE_TEMPLATE = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]])
ALIGNED_SIZE = 112


def align_five_points(image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """112x112 BGR crop with the five points moved onto the template by a least-squares similarity."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected 5x2 facial points, got shape {points.shape}")
    matrix = fit_similarity(points, ARCFACE_TEMPLATE)
    return cv2.warpAffine(image_bgr, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
