"""Filter on frames exposing `__cuda_array_interface__` (deid_sdk.cuda_frame), without a GPU.

`MappedCudaImage` exposes the interface over host memory: what a Jetson's mapped cudaImage (jetson_utils
videoSource) exposes, where the CPU reads the same buffer through the pointer. The filter must read and write
the frame's own memory through it, give the same pixels as for the NumPy frame, and refuse what it cannot read.
The device-only path (download, filter, upload) needs CUDA; it is exercised here with a runtime stand-in that
copies host memory, for its order of calls and its write-back after an error.
"""
from __future__ import annotations

import ctypes

import cv2
import numpy as np
import pytest

from deid_sdk import Filter
from deid_sdk.cuda_frame import host_frame
from deid_sdk.validate import check_cuda_frame
from tests.generator_models import write_constant_generator


class MappedCudaImage:
    """Exposes only __cuda_array_interface__ (v3) over a NumPy buffer, like a mapped jetson_utils.cudaImage."""

    def __init__(self, array: np.ndarray, readonly: bool = False, **override):
        self.array = array  # keeps the memory alive, as the cudaImage owns its buffer
        self.__cuda_array_interface__ = {"shape": array.shape, "typestr": array.dtype.str,
                                         "data": (array.ctypes.data, readonly), "strides": None, "version": 3,
                                         **override}


@pytest.fixture(scope="module")
def two_faces(shared_data):
    photos = [sorted((shared_data / "faces" / "lfw" / name).glob("*.jpg")) for name in ("Colin_Powell", "Yao_Ming")]
    if not all(photos):
        pytest.skip("the LFW photos of Colin_Powell and Yao_Ming are not in the shared data")
    return np.ascontiguousarray(np.concatenate([cv2.imread(str(p[0])) for p in photos], axis=1))


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    return write_constant_generator(tmp_path_factory.mktemp("models") / "constant.onnx")


def test_mapped_cudaimage_is_filtered_in_place_through_its_pointer(two_faces, constant_model):
    memory = two_faces.copy()
    image = MappedCudaImage(memory)
    with Filter(model=constant_model, privacy="off") as face_filter:
        returned = face_filter(image, inplace=True)
        assert len(face_filter.faces) == 2
        expected = face_filter(two_faces)
    assert returned is image
    assert not np.array_equal(memory, two_faces), "nothing was written into the mapped buffer"
    assert np.array_equal(memory, expected)


def test_mapped_cudaimage_not_in_place_returns_numpy_and_leaves_the_buffer(two_faces, constant_model):
    memory = two_faces.copy()
    with Filter(model=constant_model, privacy="off") as face_filter:
        output = face_filter(MappedCudaImage(memory, readonly=True))
        expected = face_filter(two_faces)
    assert isinstance(output, np.ndarray) and output.ctypes.data != memory.ctypes.data
    assert np.array_equal(output, expected)
    assert np.array_equal(memory, two_faces)


def _frame(shape=(4, 6, 3), dtype=np.uint8):
    return np.zeros(shape, dtype)


@pytest.mark.parametrize("make, error, words", [
    (lambda: MappedCudaImage(_frame((4, 6, 4))), ValueError, "expected shape HxWx3"),
    (lambda: MappedCudaImage(_frame((4, 6))), ValueError, "expected shape HxWx3"),
    (lambda: MappedCudaImage(_frame(dtype=np.float32)), TypeError, "expected dtype uint8, got float32"),
    (lambda: MappedCudaImage(_frame((0, 6, 3))), ValueError, "non-empty"),
    (lambda: MappedCudaImage(_frame((4, 6, 3)), strides=(3, 12, 1)), ValueError, "C-contiguous"),
    (lambda: MappedCudaImage(_frame(), data=(0, False)), ValueError, "null data pointer"),
    (lambda: MappedCudaImage(_frame(), mask=object()), ValueError, "masked"),
])
def test_bad_cuda_frames_raise_clear_errors(make, error, words):
    with pytest.raises(error, match=words):
        check_cuda_frame(make())


def test_packed_strides_and_a_broken_interface():
    check_cuda_frame(MappedCudaImage(_frame(), strides=(18, 3, 1)))  # explicit but packed strides are fine

    class Broken:
        __cuda_array_interface__ = (4, 6, 3)

    with pytest.raises(TypeError, match="must be a dict with shape, typestr and data"):
        check_cuda_frame(Broken())


def test_read_only_cuda_frame_in_place_is_refused_and_untouched(two_faces, constant_model):
    memory = two_faces.copy()
    with Filter(model=constant_model, privacy="off") as face_filter:
        with pytest.raises(ValueError, match="must be writable"):
            face_filter(MappedCudaImage(memory, readonly=True), inplace=True)
    assert np.array_equal(memory, two_faces)


class HostCopyingRuntime:
    """Stands in for deid_sdk.backends.tensorrt.CudaRuntime on a machine without CUDA: reports the pointer as
    device memory and performs the copies as host memcpy, recording the calls."""

    def __init__(self):
        self.calls = []

    def memory_type(self, pointer):
        self.calls.append("memory_type")
        return "device", 0

    def copy(self, destination, source, size, kind, stream):
        self.calls.append(f"copy{kind}")
        ctypes.memmove(destination, source, size)

    def synchronize(self, stream):
        self.calls.append(f"sync{stream}")


def test_device_memory_is_downloaded_then_uploaded_even_after_an_error():
    memory = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    cuda = HostCopyingRuntime()
    with pytest.raises(RuntimeError, match="bug"):
        with host_frame(MappedCudaImage(memory, stream=7), writable=True, cuda=cuda) as pixels:
            assert pixels.ctypes.data != memory.ctypes.data and np.array_equal(pixels, memory)
            pixels[:] = 9
            raise RuntimeError("a bug inside the filter")
    assert (memory == 9).all(), "the host copy was not uploaded back"
    assert cuda.calls == ["sync7", "memory_type", "copy2", "sync0", "copy1", "sync0"]

    cuda.calls.clear()
    with host_frame(MappedCudaImage(memory, readonly=True), writable=False, cuda=cuda) as pixels:
        pixels[:] = 1  # a copy: never reaches the frame
    assert (memory == 9).all() and cuda.calls == ["memory_type", "copy2", "sync0"]
