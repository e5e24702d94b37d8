"""Plain NumPy reference of the warp/blend operations (float64 math); the compiled kernels are tested against it.

Conventions (shared by every implementation):
- A matrix M maps FRAME pixel coordinates to CROP pixel coordinates; pixel centres sit at integer coordinates
  (the cv2.warpAffine convention).
- Bilinear sampling with border replicate: x0 = floor(x), fx = x - x0, the four neighbours' indices clamped into the
  image, value = lerp(lerp(p00, p01, fx), lerp(p10, p11, fx), fy).
- Crops are float32 (N,3,S,S), RGB whatever the frame's order, value = pixel / 127.5 - 1.
- Blending: for each face in order, for each frame pixel (x, y) of the hull's bounding box clipped to the frame,
  (u, v) = M (x, y, 1); image and mask sampled at (u, v), the mask counting as 0 outside [0,S-1]x[0,S-1];
  hull weight w = clamp(d / feather, 0, 1) with d the signed distance to the convex hull (positive inside; the min
  over edges of the distance to each edge's line), or w = [d >= 0] when feather <= 0; alpha = mask * w;
  out = floor(frame * (1 - alpha) + generated * alpha + 0.5) clamped to [0, 255], generated = (image + 1) * 127.5.
  A pixel with w <= 0 or alpha <= 0 keeps its value; a NaN result (NaN in the image or mask) is stored as 0.
"""
from __future__ import annotations

import math

import numpy as np

from deid_sdk.ops import _validate


def _bilinear_replicate(plane: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample `plane` (H,W) or (H,W,C) at float coordinates with border replicate."""
    height, width = plane.shape[:2]
    # Every x <= 0 samples column 0 and every x >= W-1 column W-1, so clipping first changes nothing and keeps the
    # integer conversion defined for far-away points.
    x = np.clip(x, -1.0, float(width))
    y = np.clip(y, -1.0, float(height))
    x_floor, y_floor = np.floor(x), np.floor(y)
    fx, fy = x - x_floor, y - y_floor
    x0 = np.clip(x_floor.astype(np.int64), 0, width - 1)
    x1 = np.clip(x_floor.astype(np.int64) + 1, 0, width - 1)
    y0 = np.clip(y_floor.astype(np.int64), 0, height - 1)
    y1 = np.clip(y_floor.astype(np.int64) + 1, 0, height - 1)
    if plane.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]

    def gather(rows, columns):
        return plane[rows, columns].astype(np.float64)

    top = gather(y0, x0) * (1 - fx) + gather(y0, x1) * fx
    bottom = gather(y1, x0) * (1 - fx) + gather(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def hull_signed_distance(hull: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Signed distance (positive inside) of points to a convex polygon of either orientation.

    It is the min over edges of the distance to each edge's line, which equals the true distance inside the polygon
    and is negative outside. Returns None for a degenerate polygon (fewer than 3 distinct vertices or no area).
    """
    points = np.asarray(hull, dtype=np.float64).reshape(-1, 2)
    following = np.roll(points, -1, axis=0)
    edges = following - points
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    keep = lengths > 1e-9  # repeated vertices give no edge
    doubled_area = np.sum(points[:, 0] * following[:, 1] - following[:, 0] * points[:, 1])
    if keep.sum() < 3 or abs(doubled_area) < 1e-9:
        return None
    orientation = 1.0 if doubled_area > 0 else -1.0
    distance = np.full(np.broadcast(x, y).shape, np.inf)
    for start, edge, length in zip(points[keep], edges[keep], lengths[keep]):
        cross = edge[0] * (y - start[1]) - edge[1] * (x - start[0])
        distance = np.minimum(distance, orientation * cross / length)
    return distance


def hull_weight(distance: np.ndarray, feather: float) -> np.ndarray:
    if feather <= 0:
        return (distance >= 0).astype(np.float64)
    with np.errstate(over="ignore"):  # a tiny feather: d / feather overflows to inf, which the clamp makes 1
        return np.clip(distance / feather, 0.0, 1.0)


def hull_box(hull: np.ndarray, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Inclusive pixel box (x0, y0, x1, y1) of a polygon, clipped to the frame; None when it misses the frame."""
    points = np.asarray(hull, dtype=np.float64).reshape(-1, 2)
    x0 = max(math.floor(points[:, 0].min()), 0)
    y0 = max(math.floor(points[:, 1].min()), 0)
    x1 = min(math.ceil(points[:, 0].max()), width - 1)
    y1 = min(math.ceil(points[:, 1].max()), height - 1)
    if x0 > x1 or y0 > y1:
        return None
    return x0, y0, x1, y1


def warp_to_crop(frame: np.ndarray, matrices, size: int = 128, pixel_format: str = "bgr",
                 out: np.ndarray | None = None) -> np.ndarray:
    """(N,3,size,size) float32 RGB crops in [-1, 1] sampled from `frame` through the inverse of each matrix."""
    _, _, _, blue_first = _validate.check_numpy_frame(frame, pixel_format, writable=False)
    matrices = _validate.as_matrices(matrices)
    _validate.check_invertible(matrices)
    size = _validate.check_size(size)
    count = len(matrices)
    if out is None:
        out = np.empty((count, 3, size, size), dtype=np.float32)
    else:
        _validate.check_numpy_crop_batch("out", out, count, 3, size)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    color = frame[..., 2::-1] if blue_first else frame[..., :3]  # RGB view
    for index, matrix in enumerate(matrices):
        linear_inverse = np.linalg.inv(matrix[:, :2])
        offset = -linear_inverse @ matrix[:, 2]
        x = linear_inverse[0, 0] * u + linear_inverse[0, 1] * v + offset[0]
        y = linear_inverse[1, 0] * u + linear_inverse[1, 1] * v + offset[1]
        sampled = _bilinear_replicate(color, x, y)  # (size, size, 3)
        out[index] = (sampled / 127.5 - 1.0).transpose(2, 0, 1)
    return out


def blend_from_crop(frame: np.ndarray, images: np.ndarray, masks: np.ndarray, matrices, hulls,
                    feather=4.0, pixel_format: str = "bgr") -> np.ndarray:
    """Blend generated crops back into `frame` in place (faces in order); returns `frame`.

    `feather` is one number of pixels or one per face."""
    height, width, _, blue_first = _validate.check_numpy_frame(frame, pixel_format, writable=True)
    matrices = _validate.as_matrices(matrices)
    count = len(matrices)
    size = _validate.check_numpy_crop_batch("images", images, count, 3)
    _validate.check_numpy_crop_batch("masks", masks, count, 1, size)
    points, offsets = _validate.pack_hulls(hulls, count)
    feathers = _validate.check_feathers(feather, count)
    for index, matrix in enumerate(matrices):
        hull = points[offsets[index]:offsets[index + 1]]
        box = hull_box(hull, height, width)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        y, x = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
        distance = hull_signed_distance(hull, x, y)
        if distance is None:
            continue
        weight = hull_weight(distance, feathers[index])
        u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
        v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
        generated = (_bilinear_replicate(images[index].transpose(1, 2, 0), u, v) + 1.0) * 127.5  # RGB
        if blue_first:
            generated = generated[..., ::-1]
        inside = (u >= 0) & (u <= size - 1) & (v >= 0) & (v <= size - 1)
        mask = np.where(inside, _bilinear_replicate(masks[index, 0], u, v), 0.0)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and huge values: defined below, as in the kernels
            alpha = np.where(weight > 0, mask * weight, 0.0)[..., None]
            region = frame[y0:y1 + 1, x0:x1 + 1, :3].astype(np.float64)
            mixed = np.floor(region * (1.0 - alpha) + generated * alpha + 0.5)
            mixed = np.where(alpha <= 0, region, np.nan_to_num(np.clip(mixed, 0, 255), nan=0.0))
        frame[y0:y1 + 1, x0:x1 + 1, :3] = mixed.astype(np.uint8)
    return frame
