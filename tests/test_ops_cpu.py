"""deid_sdk.ops on the CPU: the compiled C++ kernels against the NumPy reference, the reference against OpenCV,
the dispatch and the argument errors. Tolerances are stated in tests/test_ops_cases.py."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from deid_sdk import ops
from deid_sdk.ops import _ref, warp_blend
from tests.test_ops_cases import (
    Case, check_blend, check_crops, crop_hull_to_frame, face_matrix, parity_cases, random_crops, random_frame,
)

CASES = parity_cases()
needs_compiled = pytest.mark.skipif(warp_blend._C is None, reason="deid_sdk._C is not built")


@needs_compiled
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cpu_kernels_match_reference(case: Case, threads: int, monkeypatch):
    monkeypatch.setattr(warp_blend, "_num_threads", threads)
    expected_crops = _ref.warp_to_crop(case.frame, case.matrices, case.size, case.pixel_format)
    crops = ops.warp_to_crop(case.frame, case.matrices, case.size, case.pixel_format, impl="cpu")
    check_crops(expected_crops, crops, case.name)

    expected = _ref.blend_from_crop(case.frame.copy(), case.images, case.masks, case.matrices, case.hulls,
                                    case.feather, case.pixel_format)
    frame = case.frame.copy()
    returned = ops.blend_from_crop(frame, case.images, case.masks, case.matrices, case.hulls, case.feather,
                                   case.pixel_format, impl="cpu")
    assert returned is frame
    check_blend(case, case.frame, expected, frame, case.name)


def test_cases_really_change_pixels():
    # Guards the parity test against comparing untouched frames.
    changed = []
    for case in CASES:
        frame = _ref.blend_from_crop(case.frame.copy(), case.images, case.masks, case.matrices, case.hulls,
                                     case.feather, case.pixel_format)
        changed.append(np.any(frame != case.frame, axis=2).mean())
    assert sum(fraction > 0.02 for fraction in changed) >= len(CASES) - 3, changed


@pytest.mark.parametrize("angle", [0.0, 0.4, -2.0])
def test_reference_warp_matches_opencv(angle):
    # Convention check: cv2.warpAffine with the same frame->crop matrix, bilinear, border replicate. OpenCV rounds
    # its output to uint8 and its coordinates to 1/32 px, so a smooth frame and half a level (+ a little) of slack.
    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8), (0, 0), 4)
    matrix = face_matrix((240, 30), 150, angle, 128)  # partly outside the frame: exercises the replicated border
    crops = _ref.warp_to_crop(frame, matrix, 128, "bgr")
    warped = cv2.warpAffine(frame, matrix, (128, 128), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    expected = (warped[..., ::-1].astype(np.float64) / 127.5 - 1.0).transpose(2, 0, 1)
    assert np.abs(crops[0] - expected).max() * 127.5 <= 0.6


def test_warp_channel_order_and_range():
    frame = np.zeros((20, 30, 3), dtype=np.uint8)
    frame[..., 0] = 255  # blue in BGR
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    for impl in ("ref", "cpu") if warp_blend._C is not None else ("ref",):
        bgr = ops.warp_to_crop(frame, identity, 16, "bgr", impl=impl)
        assert bgr.shape == (1, 3, 16, 16) and bgr.dtype == np.float32
        assert np.all(bgr[0, 0] == -1.0) and np.all(bgr[0, 1] == -1.0) and np.all(bgr[0, 2] == 1.0)
        rgb = ops.warp_to_crop(frame, identity, 16, "rgb", impl=impl)
        assert np.all(rgb[0, 0] == 1.0) and np.all(rgb[0, 2] == -1.0)


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_blend_exact_on_integer_translation(impl):
    # Integer shift, full mask, hard edge: the crop is pasted exactly where hull and crop overlap, nowhere else.
    if impl == "cpu" and warp_blend._C is None:
        pytest.skip("deid_sdk._C is not built")
    frame = np.full((60, 80, 3), 7, dtype=np.uint8)
    size = 16
    values = np.arange(3 * size * size, dtype=np.float64).reshape(3, size, size) % 256
    images = (values / 127.5 - 1.0).astype(np.float32)[None]
    masks = np.ones((1, 1, size, size), dtype=np.float32)
    matrix = np.array([[1.0, 0, -30], [0, 1.0, -20]])  # frame (30, 20) -> crop (0, 0)
    hull = np.array([[25, 15], [40, 15], [40, 50], [25, 50]], dtype=np.float64)  # larger than the crop on 3 sides
    ops.blend_from_crop(frame, images, masks, matrix, [hull], feather=0.0, pixel_format="rgb", impl=impl)
    expected = np.full((60, 80, 3), 7, dtype=np.uint8)
    # hull columns 25..40 and crop columns 30..45 overlap on 30..40; rows 20..35 (crop) within 15..50 (hull)
    expected[20:36, 30:41] = values[:, :, :11].transpose(1, 2, 0).astype(np.uint8)
    np.testing.assert_array_equal(frame, expected)


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_blend_feather_ramp_and_hull_orientation(impl):
    if impl == "cpu" and warp_blend._C is None:
        pytest.skip("deid_sdk._C is not built")
    size = 64
    images = np.ones((1, 3, size, size), dtype=np.float32)  # white
    masks = np.ones((1, 1, size, size), dtype=np.float32)
    matrix = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    square = np.array([[10, 10], [50, 10], [50, 50], [10, 50]], dtype=np.float64)
    results = []
    for hull in (square, square[::-1], square.reshape(-1, 1, 2)):  # both orientations and OpenCV's (K,1,2)
        frame = np.zeros((64, 64, 3), dtype=np.uint8)
        ops.blend_from_crop(frame, images, masks, matrix, [hull], feather=4.0, impl=impl)
        results.append(frame)
    assert all(np.array_equal(results[0], other) for other in results[1:])
    row = results[0][30, :, 0].astype(int)
    # d = x - 10 near the left edge: weights 0, .25, .5, .75, 1 -> 0, 64, 128, 191, 255 (floor(x + .5))
    assert row[9:16].tolist() == [0, 0, 64, 128, 191, 255, 255]
    assert row[51] == 0 and results[0][5, 5, 0] == 0


@needs_compiled
def test_out_argument_and_empty_batch():
    rng = np.random.default_rng(2)
    frame = random_frame(rng, 50, 70, "bgr")
    matrices = np.stack([face_matrix((30, 20), 40, 0.1, 32), face_matrix((60, 40), 20, 1.0, 32)])
    out = np.full((2, 3, 32, 32), np.nan, dtype=np.float32)
    assert ops.warp_to_crop(frame, matrices, 32, out=out, impl="cpu") is out
    np.testing.assert_allclose(out, _ref.warp_to_crop(frame, matrices, 32), atol=1e-4)
    empty = ops.warp_to_crop(frame, np.zeros((0, 2, 3)), 32, impl="cpu")
    assert empty.shape == (0, 3, 32, 32)
    before = frame.copy()
    ops.blend_from_crop(frame, np.zeros((0, 3, 32, 32), np.float32), np.zeros((0, 1, 32, 32), np.float32),
                        np.zeros((0, 2, 3)), [], impl="cpu")
    np.testing.assert_array_equal(frame, before)


@needs_compiled
def test_degenerate_hull_changes_nothing():
    rng = np.random.default_rng(3)
    frame = random_frame(rng, 40, 40, "bgr")
    images, masks = random_crops(rng, 1, 32)
    line = np.array([[5, 5], [20, 20], [30, 30]], dtype=np.float64)  # no area
    for impl in ("ref", "cpu"):
        result = ops.blend_from_crop(frame.copy(), images, masks, face_matrix((20, 20), 30, 0, 32), [line],
                                     impl=impl)
        np.testing.assert_array_equal(result, frame)


def test_auto_dispatch_logs_once_and_falls_back_to_reference(monkeypatch, caplog):
    rng = np.random.default_rng(4)
    frame = random_frame(rng, 30, 40, "bgr")
    matrix = face_matrix((20, 15), 20, 0, 16)
    monkeypatch.setattr(warp_blend, "_logged_choices", set())
    with caplog.at_level(logging.INFO, logger="deid_sdk"):
        ops.warp_to_crop(frame, matrix, 16)
        ops.warp_to_crop(frame, matrix, 16)
    expected_impl = "cpu" if warp_blend._C is not None else "ref"
    messages = [r.getMessage() for r in caplog.records if "warp_to_crop" in r.getMessage()]
    assert len(messages) == 1 and f"the {expected_impl} implementation" in messages[0]

    monkeypatch.setattr(warp_blend, "_C", None)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deid_sdk"):
        crops = ops.warp_to_crop(frame, matrix, 16)
    assert any("the ref implementation" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(crops, _ref.warp_to_crop(frame, matrix, 16))
    with pytest.raises(RuntimeError, match="compiled module"):
        ops.warp_to_crop(frame, matrix, 16, impl="cpu")


# ---- argument errors -------------------------------------------------------------------------------------------

def _blend_arguments():
    rng = np.random.default_rng(5)
    frame = random_frame(rng, 40, 50, "bgr")
    images, masks = random_crops(rng, 2, 32)
    matrices = np.stack([face_matrix((20, 20), 30, 0, 32), face_matrix((30, 20), 30, 0, 32)])
    hulls = [crop_hull_to_frame(m, rng, 32) for m in matrices]
    return dict(frame=frame, images=images, masks=masks, matrices=matrices, hulls=hulls)


@pytest.mark.parametrize("impl", ["ref", "cpu"])
@pytest.mark.parametrize("change, error, message", [
    (dict(frame=np.zeros((40, 50, 3), np.float32)), TypeError, "uint8"),
    (dict(frame=np.zeros((40, 50), np.uint8)), ValueError, "HxWx3"),
    (dict(frame=np.zeros((40, 100, 3), np.uint8)[:, ::2]), ValueError, "C-contiguous"),
    (dict(frame=[[1, 2, 3]]), TypeError, "numpy.ndarray"),
    (dict(pixel_format="yuv"), ValueError, "pixel_format"),
    (dict(pixel_format="rgba"), ValueError, "HxWx4"),
    (dict(matrices=np.zeros((2, 3, 3))), ValueError, r"\(N,2,3\)"),
    (dict(matrices=np.full((2, 2, 3), np.nan)), ValueError, "finite"),
    (dict(images=np.zeros((2, 3, 32, 32), np.float64)), TypeError, "float32"),
    (dict(images=np.zeros((1, 3, 32, 32), np.float32)), ValueError, r"images must have shape \(2,3,S,S\)"),
    (dict(masks=np.zeros((2, 1, 16, 16), np.float32)), ValueError, r"masks must have shape \(2,1,32,32\)"),
    (dict(masks=np.zeros((2, 1, 32, 64), np.float32)[..., ::2]), ValueError, "C-contiguous"),
    (dict(hulls=[np.zeros((5, 2))]), ValueError, "list of 2 polygons"),
    (dict(hulls=[np.zeros((2, 2)), np.zeros((5, 2))]), ValueError, "K >= 3"),
    (dict(feather="soft"), TypeError, "feather"),
    (dict(feather=[1.0, 2.0, 3.0]), ValueError, "sequence of 2 numbers"),
    (dict(feather=np.inf), ValueError, "finite"),
    (dict(feather=1e300), ValueError, "at most"),
    (dict(hulls=[np.full((3, 2), 1e300), np.zeros((5, 2))]), ValueError, r"hulls\[0\].*magnitude"),
    (dict(impl="gpu"), ValueError, "impl must be one of"),
    (dict(impl="cuda"), TypeError, "__cuda_array_interface__"),
])
def test_blend_errors(impl, change, error, message):
    if impl == "cpu" and warp_blend._C is None:
        pytest.skip("deid_sdk._C is not built")
    arguments = {**_blend_arguments(), "impl": impl, **change}
    with pytest.raises(error, match=message):
        ops.blend_from_crop(**arguments)


def test_blend_read_only_frame():
    arguments = _blend_arguments()
    arguments["frame"].flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        ops.blend_from_crop(**arguments)


@pytest.mark.parametrize("impl", ["ref", "cpu"])
@pytest.mark.parametrize("change, error, message", [
    (dict(matrices=np.zeros((2, 3))), ValueError, "invertible"),
    (dict(matrices=np.array([["a", "b", "c"], ["d", "e", "f"]])), TypeError, "float array"),
    (dict(size=1), ValueError, "int >= 2"),
    (dict(size=12.5), ValueError, "int >= 2"),
    (dict(out=np.zeros((1, 3, 16, 16), np.float64)), TypeError, "float32"),
    (dict(out=np.zeros((1, 3, 8, 8), np.float32)), ValueError, r"out must have shape \(1,3,16,16\)"),
    (dict(frame=np.zeros((10, 10, 4), np.uint8)), ValueError, "HxWx3"),
])
def test_warp_errors(impl, change, error, message):
    if impl == "cpu" and warp_blend._C is None:
        pytest.skip("deid_sdk._C is not built")
    arguments = dict(frame=np.zeros((10, 10, 3), np.uint8), matrices=face_matrix((5, 5), 5, 0, 16), size=16,
                     impl=impl)
    with pytest.raises(error, match=message):
        ops.warp_to_crop(**{**arguments, **change})


@needs_compiled
def test_compiled_module_guards_memory_on_direct_calls():
    # The private functions check what they index, even when called without deid_sdk.ops in front.
    from deid_sdk import _C
    frame = np.zeros((10, 10, 3), np.uint8)
    matrices = face_matrix((5, 5), 5, 0, 8)[None]
    with pytest.raises(ValueError, match="out must have shape"):
        _C.warp_to_crop_cpu(frame, matrices, np.zeros((2, 3, 8, 8), np.float32), True)
    with pytest.raises(TypeError, match="dtype"):
        _C.warp_to_crop_cpu(frame.astype(np.float32), matrices, np.zeros((1, 3, 8, 8), np.float32), True)
    with pytest.raises(ValueError, match="hull_offsets"):
        _C.blend_from_crop_cpu(frame, np.zeros((1, 3, 8, 8), np.float32), np.zeros((1, 1, 8, 8), np.float32),
                               matrices, np.zeros((3, 2)), np.array([0, 9], np.int64), np.array([4.0]), True)
    with pytest.raises(ValueError, match="feathers"):
        _C.blend_from_crop_cpu(frame, np.zeros((1, 3, 8, 8), np.float32), np.zeros((1, 1, 8, 8), np.float32),
                               matrices, np.zeros((3, 2)), np.array([0, 3], np.int64), np.array([4.0, 1.0]), True)


@needs_compiled
def test_cuda_path_without_a_device_raises_runtime_error():
    # Without a GPU (this CI machine), a CUDA array must give a clear RuntimeError, never a crash.
    from deid_sdk import _C
    if _C.cuda_device_count()[0] > 0:
        pytest.skip("a CUDA device is present; tests/test_ops_cuda.py covers the CUDA path")

    class FakeCudaFrame:
        __cuda_array_interface__ = {"shape": (10, 10, 3), "typestr": "|u1", "data": (0x7F0000000000, False),
                                    "version": 3, "strides": None}

    class FakeCudaCrops:
        __cuda_array_interface__ = {"shape": (1, 3, 8, 8), "typestr": "<f4", "data": (0x7F0000100000, False),
                                    "version": 3, "strides": None}

    with pytest.raises(RuntimeError, match="CUDA"):
        ops.warp_to_crop(FakeCudaFrame(), face_matrix((5, 5), 5, 0, 8), 8, out=FakeCudaCrops())


@needs_compiled
@pytest.mark.parametrize("extreme", ["tiny feather", "hull far beyond the frame", "nan image", "nan mask",
                                     "huge image and mask"])
def test_blend_extremes_are_defined_and_the_same_in_both_implementations(extreme):
    """Values the fuzzer found to overflow the reference into RuntimeWarnings (errors in this suite) or to reach
    an undefined NaN -> uint8 conversion in the kernels: both give the same, defined frame (a NaN result is 0).
    The hull's corners sit at half pixels so no pixel lies on an edge, where float32 and float64 may disagree."""
    rng = np.random.default_rng(5)
    frame = random_frame(rng, 48, 48, "bgr")
    images, _ = random_crops(rng, 1, 32)
    masks = np.ones((1, 1, 32, 32), np.float32)
    hull = np.array([[5.5, 5.5], [25.5, 5.5], [25.5, 25.5], [5.5, 25.5]])
    matrices, feather = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 0.0
    if extreme == "tiny feather":
        feather = 1e-300
    elif extreme == "hull far beyond the frame":
        hull, feather = np.array([[-1e11, -1e11], [1e11, -1e11], [1e11, 1e11], [-1e11, 1e11]]), 3.0
    elif extreme == "nan image":
        images[0, :, 10:20] = np.nan
    elif extreme == "nan mask":
        masks[0, 0, ::3] = np.nan
    else:
        images, masks = images * 3e38, masks * 1e30
    results = {}
    for impl in ("ref", "cpu"):
        results[impl] = ops.blend_from_crop(frame.copy(), images, masks, matrices, [hull], feather=feather, impl=impl)
    assert not np.array_equal(results["ref"], frame), "the blend changed nothing: the case tests nothing"
    difference = np.abs(results["ref"].astype(np.int16) - results["cpu"].astype(np.int16))
    assert difference.max() <= 1, f"{extreme}: ref and cpu differ by up to {difference.max()}"
