"""Cases and comparisons shared by the CPU and CUDA parity tests of deid_sdk.ops (no tests in this module).

Tolerances (the bounds the kernels are held to against the float64 reference):
- crops (float32, [-1, 1]): max abs difference <= WARP_TOLERANCE (1e-4; the kernels reach ~1e-6);
- blended frames (uint8): max abs difference <= 1, on fewer than 1% of the pixels the reference changed.
Where the reference itself is discontinuous (a hard hull edge, feather <= 0, or the crop border where the mask
drops to 0) float32 and float64 may fall on different sides; pixels within AMBIGUITY_PX of those lines are left out
of the comparison (asserted to be a small share).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from deid_sdk.ops import _ref

WARP_TOLERANCE = 1e-4
AMBIGUITY_PX = 1e-3
PIXEL_FORMATS = ("bgr", "rgb", "rgba", "bgra")


@dataclass
class Case:
    name: str
    frame: np.ndarray                      # HxWxC uint8
    matrices: np.ndarray                   # (N,2,3) frame -> crop
    hulls: list = field(default_factory=list)
    images: np.ndarray | None = None       # (N,3,S,S) float32
    masks: np.ndarray | None = None        # (N,1,S,S) float32
    feather: float | np.ndarray = 4.0  # one number or one per face
    pixel_format: str = "bgr"
    size: int = 128


def face_matrix(center, face_px, angle, size, shear=0.0, stretch=1.0) -> np.ndarray:
    """Frame->crop matrix putting a face of `face_px` pixels centred at `center` in the middle of the crop."""
    scale = 0.6 * size / face_px
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = scale * rotation @ np.array([[stretch, shear], [0.0, 1.0 / stretch]])
    offset = np.array([size / 2, size / 2]) - linear @ np.asarray(center, dtype=np.float64)
    return np.concatenate([linear, offset[:, None]], axis=1)


def crop_hull_to_frame(matrix, rng, size, spread=0.4) -> np.ndarray:
    """A random convex polygon around the crop centre (crop coordinates), mapped into the frame."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(6, 24)))
    radii = size * spread * rng.uniform(0.8, 1.1, len(angles))
    points = np.stack([size / 2 + radii * np.cos(angles), size / 2 + radii * np.sin(angles)], axis=1)
    hull = cv2.convexHull(points.astype(np.float32))[:, 0].astype(np.float64)
    return to_frame(matrix, hull)


def to_frame(matrix, points) -> np.ndarray:
    """Map crop points (K,2) back into the frame through the inverse of a frame->crop matrix."""
    linear_inverse = np.linalg.inv(matrix[:, :2])
    return (points - matrix[:, 2]) @ linear_inverse.T


def random_frame(rng, height, width, pixel_format) -> np.ndarray:
    channels = 4 if len(pixel_format) == 4 else 3
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


def random_crops(rng, count, size) -> tuple[np.ndarray, np.ndarray]:
    # Slightly beyond [-1, 1] so the kernels' clamping to [0, 255] is exercised too.
    images = rng.uniform(-1.05, 1.05, (count, 3, size, size)).astype(np.float32)
    masks = rng.uniform(0.0, 1.0, (count, 1, size, size)).astype(np.float32)
    return images, masks


def random_case(rng, name, count, pixel_format, feather=4.0, height=180, width=240, size=128,
                face_range=(30, 160), outside=0.25, affine=False) -> Case:
    frame = random_frame(rng, height, width, pixel_format)
    matrices, hulls = [], []
    for _ in range(count):
        center = (rng.uniform(-outside, 1 + outside) * width, rng.uniform(-outside, 1 + outside) * height)
        shear, stretch = (rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.25)) if affine else (0.0, 1.0)
        matrix = face_matrix(center, rng.uniform(*face_range), rng.uniform(-np.pi, np.pi), size, shear, stretch)
        matrices.append(matrix)
        # Some hulls reach past the crop, where the mask counts as 0.
        hulls.append(crop_hull_to_frame(matrix, rng, size, spread=rng.choice([0.35, 0.6])))
    images, masks = random_crops(rng, count, size)
    return Case(name, frame, np.stack(matrices), hulls, images, masks, feather, pixel_format, size)


def parity_cases(seed=0) -> list[Case]:
    """The cases every implementation is compared on: random transforms, faces partly (or fully) outside the frame,
    tiny and huge faces, every pixel format, N=1 and N=4, soft and hard hull edges, overlapping faces."""
    rng = np.random.default_rng(seed)
    cases = []
    for pixel_format in PIXEL_FORMATS:
        for count in (1, 4):
            cases.append(random_case(rng, f"random-{pixel_format}-n{count}", count, pixel_format))
    cases.append(random_case(rng, "affine-shear-n4", 4, "bgr", affine=True))
    cases.append(random_case(rng, "hard-edge-n4", 4, "rgb", feather=0.0))
    cases.append(random_case(rng, "wide-feather-n4", 4, "rgba", feather=15.0))
    cases.append(random_case(rng, "feather-per-face-n4", 4, "bgra", feather=np.array([0.0, 2.0, 4.0, 10.0])))
    cases.append(random_case(rng, "tiny-faces-n4", 4, "bgr", face_range=(4, 10), outside=0.0))
    cases.append(random_case(rng, "huge-faces-n1", 1, "bgr", face_range=(400, 900), outside=0.0))
    cases.append(random_case(rng, "far-outside-n4", 4, "bgr", outside=3.0))
    cases.append(random_case(rng, "crop-64-n4", 4, "rgb", size=64))
    overlap = random_case(rng, "overlapping-n4", 4, "bgr", outside=0.0)
    for n in range(4):  # four faces around nearly the same spot: the result depends on the order
        overlap.matrices[n] = face_matrix((120 + 6 * n, 90 - 4 * n), 90 + 10 * n, 0.2 * n + 0.1, 128)
        overlap.hulls[n] = crop_hull_to_frame(overlap.matrices[n], rng, 128)
    cases.append(overlap)
    return cases


def check_crops(expected: np.ndarray, actual: np.ndarray, label: str) -> float:
    assert actual.shape == expected.shape and actual.dtype == np.float32, (label, actual.shape, actual.dtype)
    difference = float(np.abs(actual.astype(np.float64) - expected).max()) if expected.size else 0.0
    assert difference <= WARP_TOLERANCE, f"{label}: crops differ from the reference by {difference}"
    return difference


def ambiguous_pixels(case: Case) -> np.ndarray:
    """Pixels within AMBIGUITY_PX of a discontinuity of the reference (hard hull edge, crop border)."""
    height, width = case.frame.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    ambiguous = np.zeros((height, width), dtype=bool)
    last = case.size - 1
    feathers = np.broadcast_to(np.asarray(case.feather, dtype=np.float64), (len(case.matrices),))
    for matrix, hull, feather in zip(case.matrices, case.hulls, feathers):
        u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
        v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
        for coordinate in (u, v):
            ambiguous |= (np.abs(coordinate) < AMBIGUITY_PX) | (np.abs(coordinate - last) < AMBIGUITY_PX)
        if feather <= 0:
            distance = _ref.hull_signed_distance(np.asarray(hull).reshape(-1, 2), x, y)
            if distance is not None:
                ambiguous |= np.abs(distance) < AMBIGUITY_PX
    return ambiguous


def outside_all_boxes(case: Case) -> np.ndarray:
    """Pixels outside every hull's bounding box: they must stay bit-identical."""
    height, width = case.frame.shape[:2]
    outside = np.ones((height, width), dtype=bool)
    for hull in case.hulls:
        box = _ref.hull_box(hull, height, width)
        if box is not None:
            x0, y0, x1, y1 = box
            outside[y0:y1 + 1, x0:x1 + 1] = False
    return outside


def check_blend(case: Case, original: np.ndarray, expected: np.ndarray, actual: np.ndarray, label: str) -> int:
    """Max abs difference <= 1 on uint8 (rarely), alpha and untouched pixels bit-identical; returns the max diff."""
    assert actual.shape == expected.shape and actual.dtype == np.uint8, (label, actual.shape, actual.dtype)
    ambiguous = ambiguous_pixels(case)
    changed = np.any(expected != original, axis=2)
    assert (ambiguous & changed).sum() <= max(10, 0.01 * changed.sum()), f"{label}: too many ambiguous pixels to compare"
    difference = np.abs(actual.astype(np.int16) - expected.astype(np.int16)).max(axis=2)
    difference[ambiguous] = 0
    worst = int(difference.max())
    assert worst <= 1, f"{label}: blended frame differs from the reference by {worst} levels"
    assert (difference > 0).sum() <= max(5, 0.01 * changed.sum()), f"{label}: too many off-by-one pixels"
    outside = outside_all_boxes(case)
    assert np.array_equal(actual[outside], original[outside]), f"{label}: pixels outside every hull box changed"
    if case.frame.shape[2] == 4:
        assert np.array_equal(actual[..., 3], original[..., 3]), f"{label}: the alpha channel changed"
    return worst
