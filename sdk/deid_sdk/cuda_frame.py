"""Frames in CUDA memory (`__cuda_array_interface__`: jetson_utils.cudaImage, torch and CuPy tensors) for `Filter`.

The pipeline's CPU stages (CenterFace on onnxruntime, dlib's landmarks, the tracker) read pixels with the CPU,
so a CUDA frame has to be host-readable for them. Where the memory lies decides how:
- host-mapped or managed memory (a Jetson's cudaImage from videoSource: CPU and GPU share one DRAM, the buffer is
  allocated mapped) and plain host memory: read and written through the pointer as a NumPy view, no copy;
- device-only memory (a discrete GPU's tensor): downloaded once into a NumPy array (cudaMemcpy), and uploaded
  back after the filter when it changed the frame in place.
CUDA's `cudaPointerGetAttributes` tells which. Without a CUDA runtime in this process no device memory can
exist (no libcudart, driver or GPU), so the pointer is host memory and is read as such (the case of an object exposing the interface over host
memory, e.g. a mapped buffer handed over by another library).

Not done here: running the GPU stages (warp, generator, blend) on the frame where it lies. The pieces exist
(deid_sdk.ops impl="cuda" takes CUDA arrays, TensorRTSession.run_device binds them) but Filter's pipeline runs
them on the host array; with host-mapped memory that array *is* the frame's memory, so nothing is copied.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from deid_sdk.validate import check_cuda_frame


def _host_view(address: int, shape: tuple, writable: bool) -> np.ndarray:
    buffer = (ctypes.c_uint8 * int(np.prod(shape))).from_address(address)
    view = np.frombuffer(buffer, np.uint8).reshape(shape)
    view.flags.writeable = writable
    return view


def _cuda_runtime():
    """The CUDA runtime, or None when this process can use no CUDA device (no libcudart, no driver or no GPU):
    then no pointer can be device memory."""
    from deid_sdk.backends.tensorrt import CudaRuntime

    try:
        cuda = CudaRuntime()
    except ImportError:
        return None
    return cuda if cuda.device_count() else None


@contextmanager
def host_frame(frame, writable: bool, cuda=None) -> Iterator[np.ndarray]:
    """The pixels of the CUDA-array `frame` as an HxWx3 uint8 NumPy array for the block; with `writable`, what
    the block writes into it is in the frame's memory when the block ends (a view of mapped memory, or an
    upload of the downloaded copy). `cuda`: a CudaRuntime (default: loaded here if there is one)."""
    interface = check_cuda_frame(frame, writable=writable)
    shape, pointer, stream = interface["shape"], interface["pointer"], interface["stream"]
    cuda = cuda if cuda is not None else _cuda_runtime()
    if cuda is None:
        yield _host_view(pointer, shape, writable)
        return
    from deid_sdk.backends.tensorrt import _MEMCPY_DEVICE_TO_HOST, _MEMCPY_HOST_TO_DEVICE

    if stream is not None:  # the producer's pending work on the frame must finish before the CPU reads it
        cuda.synchronize(int(stream))
    kind, address = cuda.memory_type(pointer)
    if kind != "device":
        yield _host_view(address, shape, writable)
        return
    pixels = np.empty(shape, np.uint8)
    cuda.copy(pixels.ctypes.data, pointer, pixels.nbytes, _MEMCPY_DEVICE_TO_HOST, 0)
    cuda.synchronize(0)
    try:
        yield pixels
    finally:  # also after an error: the filter covers the faces with the fallback before it raises
        if writable:
            cuda.copy(pointer, pixels.ctypes.data, pixels.nbytes, _MEMCPY_HOST_TO_DEVICE, 0)
            cuda.synchronize(0)
