"""deid_sdk.ops CUDA kernels against the NumPy reference, on CuPy and torch arrays (the same cases as the CPU test).

Skipped without a CUDA device. Without pytest (a bare GPU machine) run the same checks with
`python -m tests.test_ops_cuda` from the repository root; it exits nonzero on a failure or when no GPU is usable.
Tolerances are stated in tests/test_ops_cases.py (crops <= 1e-4, frames <= 1 level).
"""
from __future__ import annotations

import logging
import sys
import traceback
import warnings

import numpy as np

from deid_sdk import ops
from deid_sdk.ops import _ref, warp_blend
from tests.test_ops_cases import (
    check_blend, check_crops, crop_hull_to_frame, face_matrix, parity_cases, random_case, random_crops,
    random_frame,
)

try:
    import pytest
except ImportError:  # the plain runner at the bottom stands in
    pytest = None


def _libraries() -> list[str]:
    """Array libraries with a working CUDA device here: 'cupy' and/or 'torch'."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import cupy
            if cupy.cuda.runtime.getDeviceCount() > 0:
                found.append("cupy")
        except Exception:  # not installed, or no driver
            pass
        try:
            import torch
            if torch.cuda.is_available():
                found.append("torch")
        except Exception:
            pass
    return found


def skip_reason() -> str | None:
    if warp_blend._C is None:
        return "deid_sdk._C is not built"
    if not warp_blend._C.built_with_cuda():
        return "deid_sdk._C was built without CUDA (no nvcc at build time)"
    count, reason = warp_blend._C.cuda_device_count()
    if count == 0:
        return f"no usable CUDA device: {reason}"
    if not _libraries():
        return "neither CuPy nor torch can reach the CUDA device"
    return None


if pytest is not None:
    pytestmark = [pytest.mark.gpu, pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]


class Device:
    """Moves arrays between NumPy and one CUDA array library."""

    def __init__(self, library: str):
        self.library = library
        if library == "cupy":
            import cupy
            self.module = cupy
        else:
            import torch
            self.module = torch

    def put(self, array: np.ndarray):
        if self.library == "cupy":
            return self.module.asarray(array)
        return self.module.from_numpy(np.ascontiguousarray(array)).to("cuda")

    def get(self, array) -> np.ndarray:
        self.synchronize()
        if self.library == "cupy":
            return self.module.asnumpy(array)
        return array.cpu().numpy()

    def synchronize(self):
        if self.library == "cupy":
            self.module.cuda.runtime.deviceSynchronize()
        else:
            self.module.cuda.synchronize()

    def new_stream(self):
        if self.library == "cupy":
            return self.module.cuda.Stream(non_blocking=True)
        return self.module.cuda.Stream()

    def is_native(self, array) -> bool:
        return type(array).__module__.split(".")[0] == self.library


class BareCudaImage:
    """Exposes only __cuda_array_interface__, like jetson_utils.cudaImage."""

    def __init__(self, array):
        self._owner = array
        self.__cuda_array_interface__ = array.__cuda_array_interface__


def _devices() -> list[Device]:
    return [Device(library) for library in _libraries()]


def _compare_case(device: Device, case, stream=None) -> tuple[float, int]:
    frame, images, masks = device.put(case.frame), device.put(case.images), device.put(case.masks)
    device.synchronize()  # the uploads ran on the library's stream; `stream` may be another one
    crops = ops.warp_to_crop(frame, case.matrices, case.size, case.pixel_format, impl="cuda", stream=stream)
    assert device.is_native(crops), type(crops)
    expected_crops = _ref.warp_to_crop(case.frame, case.matrices, case.size, case.pixel_format)
    warp_difference = check_crops(expected_crops, device.get(crops), f"{device.library}:{case.name}")

    expected = _ref.blend_from_crop(case.frame.copy(), case.images, case.masks, case.matrices, case.hulls,
                                    case.feather, case.pixel_format)
    returned = ops.blend_from_crop(frame, images, masks, case.matrices, case.hulls, case.feather, case.pixel_format,
                                   impl="cuda", stream=stream)
    assert returned is frame
    blend_difference = check_blend(case, case.frame, expected, device.get(frame), f"{device.library}:{case.name}")
    return warp_difference, blend_difference


def test_cuda_kernels_match_reference():
    for device in _devices():
        worst_warp, worst_blend = 0.0, 0
        for case in parity_cases():
            warp_difference, blend_difference = _compare_case(device, case)
            worst_warp, worst_blend = max(worst_warp, warp_difference), max(worst_blend, blend_difference)
        print(f"{device.library}: max |crop - ref| = {worst_warp:.3g}, max |frame - ref| = {worst_blend} level(s)")


def test_cuda_on_a_1080p_frame_and_explicit_streams():
    rng = np.random.default_rng(11)
    case = random_case(rng, "1080p-n4", 4, "bgr", height=1080, width=1920, face_range=(200, 300), outside=0.05)
    for device in _devices():
        stream = device.new_stream()
        for stream_argument in (stream, stream.ptr if device.library == "cupy" else stream.cuda_stream):
            _compare_case(device, case, stream=stream_argument)


def test_cuda_many_faces_split_into_batches():
    # 12 faces (more than one launch holds), several overlapping: order must still be the reference's.
    rng = np.random.default_rng(12)
    case = random_case(rng, "many-n12", 12, "rgba", height=200, width=260, outside=0.1)
    for device in _devices():
        _compare_case(device, case)


def test_cuda_out_argument_and_bare_interface_objects():
    rng = np.random.default_rng(13)
    case = random_case(rng, "bare-n2", 2, "rgb")
    expected_crops = _ref.warp_to_crop(case.frame, case.matrices, case.size, case.pixel_format)
    for device in _devices():
        out = device.put(np.full((2, 3, 128, 128), np.nan, np.float32))
        bare_frame = BareCudaImage(device.put(case.frame))
        device.synchronize()  # a bare object carries no stream: the kernels run on the legacy default stream
        assert ops.warp_to_crop(bare_frame, case.matrices, 128, "rgb", out=out) is out  # auto -> cuda
        check_crops(expected_crops, device.get(out), "out=")
        allocated = ops.warp_to_crop(bare_frame, case.matrices, 128, "rgb")  # allocated with CuPy or torch
        check_crops(expected_crops, np.asarray(Device(type(allocated).__module__.split(".")[0]).get(allocated)),
                    "allocated")
        expected = _ref.blend_from_crop(case.frame.copy(), case.images, case.masks, case.matrices, case.hulls,
                                        case.feather, "rgb")
        ops.blend_from_crop(bare_frame, device.put(case.images), device.put(case.masks), case.matrices,
                            case.hulls, case.feather, "rgb")
        check_blend(case, case.frame, expected, device.get(bare_frame._owner), "bare")


def test_cuda_auto_dispatch_logs_cuda():
    device = _devices()[0]
    rng = np.random.default_rng(14)
    frame = device.put(random_frame(rng, 40, 50, "bgr"))
    warp_blend._logged_choices.discard(("warp_to_crop", "cuda"))
    logger = logging.getLogger("deid_sdk")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        ops.warp_to_crop(frame, face_matrix((25, 20), 30, 0.2, 32), 32)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    assert any("the cuda implementation" in record.getMessage() for record in records)


def test_cuda_errors():
    rng = np.random.default_rng(15)
    frame_host = random_frame(rng, 40, 50, "bgr")
    images, masks = random_crops(rng, 1, 32)
    matrix = face_matrix((25, 20), 30, 0.2, 32)
    hull = crop_hull_to_frame(matrix, rng, 32)
    for device in _devices():
        frame = device.put(frame_host)
        _expect(TypeError, "images must be a CUDA array",
                lambda: ops.blend_from_crop(frame, images, device.put(masks), matrix, [hull], impl="cuda"))
        _expect(TypeError, "numpy.ndarray frame",
                lambda: ops.warp_to_crop(frame, matrix, 32, impl="cpu"))
        strided = device.put(np.zeros((40, 100, 3), np.uint8))[:, ::2]
        _expect(ValueError, "C-contiguous", lambda: ops.warp_to_crop(strided, matrix, 32))
        _expect(ValueError, "HxWx4", lambda: ops.warp_to_crop(frame, matrix, 32, pixel_format="rgba"))
        angles = np.linspace(0, 2 * np.pi, 300, endpoint=False)
        big_hull = np.stack([25 + 15 * np.cos(angles), 20 + 15 * np.sin(angles)], axis=1)
        _expect(ValueError, "at most 256",
                lambda: ops.blend_from_crop(frame, device.put(images), device.put(masks), matrix, [big_hull]))
        device.synchronize()


def _expect(error, message, call):
    try:
        call()
    except error as raised:
        assert message in str(raised), f"expected {message!r} in {raised!r}"
    else:
        raise AssertionError(f"expected {error.__name__} ({message!r})")


def _run_without_pytest() -> int:
    reason = skip_reason()
    if reason is not None:
        print(f"FAIL: cannot run the CUDA checks: {reason}")
        return 1
    failures = 0
    for name, test in sorted(globals().items()):
        if name.startswith("test_") and callable(test):
            try:
                test()
                print(f"PASS {name}")
            except Exception:
                failures += 1
                print(f"FAIL {name}\n{traceback.format_exc()}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(_run_without_pytest())
