"""dlib's 150x150 face-recognition chip, in NumPy, and the fast path from the SDK's 128x128 crop.

`extract_dlib_chip(image_rgb, landmarks68)` reproduces `dlib.get_face_chip(img, shape, 150, 0.25)`, which is the
chip `face_recognition_model_v1.compute_face_descriptor(img, shape)` feeds its network:

- Geometry: dlib fits a least-squares similarity T from the *chip* template (dlib's mean face at padding 0.25,
  the 33 stable landmarks of `deid_sdk.align`) to the image landmarks -- the opposite direction of
  `align.face_to_crop`'s fit, and least squares is not symmetric: dlib's chip is zoomed in by a factor r^2
  (the squared correlation of the fit, 0.97-0.999 on LFW and UTKFace). From T it keeps a rectangle centred
  on T(75, 75), of width 150*s (s = T's scale), rotated by T's angle, and maps the chip pixel centres 0..149 onto that
  rectangle's first and last pixel centres: chip -> image = c + R(angle) * k * (u - 74.5, v - 74.5),
  k = (150*s - 1) / 149.
- Sampling: bilinear in double precision, truncated to uint8; a pixel whose 2x2 neighbourhood leaves the image
  is 0.
- Large faces (source rectangle over ~2x the chip, i.e. 300 px for 150): dlib first shrinks the image with its
  pyramid, as many halvings as keep the rectangle above the chip's area: it crops the chip's bounding box
  (corners rounded, grown by 2, 6, 14, ... px for 1, 2, 3 levels, clipped to the image), filters it with the
  separable [1 4 6 4 1]/16 kernel keeping every second sample (output size (n - 3) // 2, integer sums truncated),
  maps the chip through its `point_down` (x -> (x - 2.5) / 2, y -> (y - 1.5) / 2 per level) and samples the
  smallest level. Reproduced here pixel for pixel (tests/test_identity.py).

`crop_to_dlib_chip_image(crop)` is the fast path: the SDK's 128x128 canonical crop resampled to the chip with
the fixed `align.crop_to_dlib_chip()` geometry (bilinear, border replicate, float output, no rounding), the
same operation as `deid_train.identity_net.crops_to_chips`.
"""
from __future__ import annotations

import functools

import numpy as np

from deid_sdk import align

CHIP_SIZE = align.DLIB_CHIP_SIZE


def _check_image(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected {name} as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected {name} HxWx3 uint8, got {image.shape} {image.dtype}")


def dlib_chip_to_image(landmarks68: np.ndarray, size: int = CHIP_SIZE,
                       padding: float = align.DLIB_CHIP_PADDING) -> np.ndarray:
    """2x3 matrix mapping chip pixel coordinates to image pixel coordinates, as dlib's get_face_chip does."""
    landmarks68 = np.asarray(landmarks68, dtype=np.float64)
    if landmarks68.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got shape {landmarks68.shape}")
    template = align.template_points(size, padding, 0.0)
    similarity = align.fit_similarity(template, landmarks68[align.STABLE_LANDMARKS])
    scale = float(np.hypot(similarity[0, 0], similarity[1, 0]))
    rotation = similarity[:, :2] / scale
    centre = align.apply_affine(similarity, [[size / 2.0, size / 2.0]])[0]
    step = (size * scale - 1.0) / (size - 1)
    matrix = np.empty((2, 3))
    matrix[:, :2] = rotation * step
    matrix[:, 2] = centre - matrix[:, :2] @ np.full(2, (size - 1) / 2.0)
    return matrix


def _sample_bilinear_truncated(image: np.ndarray, chip_to_image: np.ndarray, size: int) -> np.ndarray:
    """dlib's interpolate_bilinear + transform_image: double-precision weights, truncation, 0 outside."""
    height, width = image.shape[:2]
    if height < 2 or width < 2:
        return np.zeros((size, size) + image.shape[2:], np.uint8)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x = chip_to_image[0, 0] * cols + chip_to_image[0, 1] * rows + chip_to_image[0, 2]
    y = chip_to_image[1, 0] * cols + chip_to_image[1, 1] * rows + chip_to_image[1, 2]
    left = np.floor(x)
    top = np.floor(y)
    inside = (left >= 0) & (top >= 0) & (left + 1 < width) & (top + 1 < height)
    left_i = np.where(inside, left, 0).astype(np.intp)
    top_i = np.where(inside, top, 0).astype(np.intp)
    lr = (x - left)[..., None]
    tb = (y - top)[..., None]
    pixels = image.astype(np.float64)
    tl = pixels[top_i, left_i]
    tr = pixels[top_i, left_i + 1]
    bl = pixels[top_i + 1, left_i]
    br = pixels[top_i + 1, left_i + 1]
    value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
    chip = value.astype(np.uint8)  # truncation, as dlib's conversion to rgb_pixel
    chip[~inside] = 0
    return chip


def _pyramid_down_uint8(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> on a uint8 image: [1 4 6 4 1] x [1 4 6 4 1] / 256, every second sample, truncated."""
    pixels = image.astype(np.int64)
    out_h, out_w = max((image.shape[0] - 3) // 2, 0), max((image.shape[1] - 3) // 2, 0)
    taps = (1, 4, 6, 4, 1)
    rows = sum(weight * pixels[j:j + 2 * out_h:2] for j, weight in enumerate(taps))
    both = sum(weight * rows[:, j:j + 2 * out_w:2] for j, weight in enumerate(taps))
    return (both >> 8).astype(np.uint8)


def _pyramid_levels(chip_to_image: np.ndarray, size: int) -> int:
    """How many times dlib halves the image before sampling this chip."""
    step = float(np.hypot(chip_to_image[0, 0], chip_to_image[1, 0]))
    width = step * (size - 1) + 1  # the source rectangle's width (dlib counts both end pixels)
    width = (width - 1) / 2 + 1
    levels = 0
    while width * width > size * size:
        width = (width - 1) / 2 + 1
        levels += 1
    return levels


def _shrink_for_chip(image: np.ndarray, chip_to_image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The pyramid level dlib samples a large face from, and the chip's mapping into it."""
    levels = _pyramid_levels(chip_to_image, size)
    if levels == 0:
        return image, chip_to_image
    grow = 2
    for _ in range(levels):
        grow = grow * 2 + 2
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    corners = corners @ chip_to_image[:, :2].T + chip_to_image[:, 2]
    low = np.floor(corners.min(axis=0) + 0.5).astype(int) - grow
    high = np.floor(corners.max(axis=0) + 0.5).astype(int) + grow
    left, top = max(low[0], 0), max(low[1], 0)
    right, bottom = min(high[0], image.shape[1] - 1), min(high[1], image.shape[0] - 1)
    level = image[top:bottom + 1, left:right + 1] if right >= left and bottom >= top else image[:0, :0]
    matrix = chip_to_image.copy()
    matrix[:, 2] -= (left, top)
    for _ in range(levels):
        level = _pyramid_down_uint8(level)
        matrix = matrix / 2
        matrix[:, 2] -= (1.25, 0.75)  # dlib's point_down: x -> (x - 2.5) / 2, y -> (y - 1.5) / 2
    return level, matrix


def extract_dlib_chip(image_rgb: np.ndarray, landmarks68: np.ndarray, size: int = CHIP_SIZE,
                      padding: float = align.DLIB_CHIP_PADDING) -> np.ndarray:
    """dlib.get_face_chip(image, shape, size, padding): HxWx3 uint8 (RGB) + 68x2 landmarks -> size x size x 3 uint8."""
    _check_image(image_rgb, "image_rgb")
    level, chip_to_level = _shrink_for_chip(image_rgb, dlib_chip_to_image(landmarks68, size, padding), size)
    return _sample_bilinear_truncated(level, chip_to_level, size)


@functools.lru_cache(maxsize=1)
def _crop_to_chip_taps() -> tuple[np.ndarray, ...]:
    """Fixed bilinear taps of the fast path: flat crop indices of the 4 neighbours and their weights."""
    chip_to_crop = align.invert_affine(align.crop_to_dlib_chip())
    rows, cols = np.mgrid[0:CHIP_SIZE, 0:CHIP_SIZE].astype(np.float64)
    last = align.CROP_SIZE - 1
    x = np.clip(chip_to_crop[0, 0] * cols + chip_to_crop[0, 1] * rows + chip_to_crop[0, 2], 0, last)
    y = np.clip(chip_to_crop[1, 0] * cols + chip_to_crop[1, 1] * rows + chip_to_crop[1, 2], 0, last)
    left = np.minimum(np.floor(x).astype(np.intp), last - 1)
    top = np.minimum(np.floor(y).astype(np.intp), last - 1)
    lr, tb = x - left, y - top
    index = (top * align.CROP_SIZE + left).ravel()
    taps = np.stack([index, index + 1, index + align.CROP_SIZE, index + align.CROP_SIZE + 1])
    weights = np.stack([(1 - tb) * (1 - lr), (1 - tb) * lr, tb * (1 - lr), tb * lr]).reshape(4, -1, 1)
    return taps, weights.astype(np.float32)


def crop_to_dlib_chip_image(crop: np.ndarray) -> np.ndarray:
    """Fast path: 128x128x3 uint8 canonical crop(s) -> 150x150x3 float32 chip(s) (same channel order, 0..255).

    Accepts one crop (128, 128, 3) or a batch (N, 128, 128, 3). Bilinear with border replication, pixel centres
    at integer coordinates, not rounded: what `deid_train.identity_net.crops_to_chips` computes, so the SDK
    and training encode crops the same way.
    """
    crops = np.asarray(crop)
    single = crops.ndim == 3
    if single:
        crops = crops[None]
    size = align.CROP_SIZE
    if not isinstance(crop, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 4 \
            or crops.shape[1:] != (size, size, 3):
        raise ValueError(f"expected a {size}x{size}x3 uint8 crop (or N of them), got "
                         f"{getattr(crop, 'shape', type(crop).__name__)} {getattr(crop, 'dtype', '')}")
    taps, weights = _crop_to_chip_taps()
    flat = crops.reshape(len(crops), size * size, 3).astype(np.float32)
    chips = sum(weights[k] * flat[:, taps[k]] for k in range(4)).reshape(len(crops), CHIP_SIZE, CHIP_SIZE, 3)
    return chips[0] if single else chips
