"""Crop faces out of a frame and blend generated faces back: dispatch to the reference, C++ or CUDA kernel.

    crops = warp_to_crop(frame, matrices)                               # (N,3,128,128) float32 RGB in [-1, 1]
    blend_from_crop(frame, images, masks, matrices, hulls, feather=4)   # in place

`impl="auto"` picks CUDA for objects with `__cuda_array_interface__` (torch, CuPy, jetson_utils.cudaImage; processed
where they lie, zero copy), the compiled C++ kernel for NumPy arrays, and the NumPy reference when the compiled
module is missing. The exact semantics are in deid_sdk.ops._ref.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from deid_sdk.ops import _ref, _validate

try:
    from deid_sdk import _C
except ImportError:  # a source checkout without the compiled module still works, slowly
    _C = None

_LOGGER = logging.getLogger("deid_sdk")
_IMPLS = ("auto", "cpu", "cuda", "ref")
_logged_choices: set[tuple[str, str]] = set()
_log_lock = threading.Lock()
_num_threads = 0  # 0: the C++ kernels pick hardware_concurrency (capped)


def check_thread_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"thread count must be an int >= 0, got {count!r}")
    return int(count)


def set_num_threads(count: int) -> None:
    """Default worker threads of the C++ kernels (0: one per hardware thread, at most 8)."""
    global _num_threads
    _num_threads = check_thread_count(count)


def _thread_count(threads: int | None) -> int:
    return _num_threads if threads is None else check_thread_count(threads)


def check_impl(impl: str) -> str:
    """Raise unless `impl` names an implementation that can run here (`cpu` needs the compiled module)."""
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, _IMPLS))}, got {impl!r}")
    if impl in ("cpu", "cuda") and _C is None:
        raise RuntimeError(f"impl={impl!r} needs the compiled module deid_sdk._C, which is missing; "
                           "reinstall the SDK (pip install -e .) or use impl='ref'")
    return impl


def is_cuda_array(value) -> bool:
    return hasattr(value, "__cuda_array_interface__")


def _choose_impl(operation: str, impl: str, frame) -> str:
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, _IMPLS))}, got {impl!r}")
    on_gpu = is_cuda_array(frame)
    chosen = impl
    if impl == "auto":
        chosen = "cuda" if on_gpu else ("cpu" if _C is not None else "ref")
    if chosen == "cuda":
        if not on_gpu:
            raise TypeError(f"impl='cuda' needs a frame with __cuda_array_interface__ (torch/CuPy/cudaImage), "
                            f"got {type(frame).__name__}")
        if _C is None or not _C.built_with_cuda():
            raise RuntimeError("the frame is a CUDA array but deid_sdk._C was built without CUDA kernels "
                               "(nvcc was not found at build time); copy the frame to host memory for impl='cpu'")
    else:
        if on_gpu:
            raise TypeError(f"impl={chosen!r} needs a numpy.ndarray frame, got a CUDA array "
                            f"({type(frame).__name__}); use impl='cuda' or 'auto'")
        if chosen == "cpu" and _C is None:
            raise RuntimeError("impl='cpu' needs the compiled module deid_sdk._C, which is missing; "
                               "reinstall the SDK (pip install -e .) or use impl='ref'")
    key = (operation, chosen)
    if key not in _logged_choices:
        with _log_lock:
            if key not in _logged_choices:
                _logged_choices.add(key)
                _LOGGER.info("deid_sdk.ops.%s: using the %s implementation (requested impl=%r)",
                             operation, chosen, impl)
    return chosen


# ---- CUDA array interface helpers -------------------------------------------------------------------------------

def _cuda_interface(name: str, value, writable: bool) -> dict:
    if not is_cuda_array(value):
        raise TypeError(f"{name} must be a CUDA array (with __cuda_array_interface__) on the CUDA path, "
                        f"got {type(value).__name__}")
    interface = value.__cuda_array_interface__
    shape = tuple(int(s) for s in interface["shape"])
    itemsize = np.dtype(interface["typestr"]).itemsize
    strides = interface.get("strides")
    if strides is not None:
        packed, step = [], itemsize
        for extent in reversed(shape):
            packed.append(step)
            step *= extent
        if any(extent > 1 and stride != want
               for extent, stride, want in zip(shape, strides, reversed(packed))):
            raise ValueError(f"{name} must be C-contiguous, got strides {tuple(strides)} for shape {shape}")
    pointer, readonly = interface["data"]
    if writable and readonly:
        raise ValueError(f"{name} must be writable, got a read-only CUDA array")
    if interface.get("mask") is not None:
        raise ValueError(f"{name} must not be a masked array")
    return {"shape": shape, "typestr": interface["typestr"], "pointer": int(pointer or 0)}


def _stream_handle(stream, frame) -> int:
    """cudaStream_t as an int: explicit handle/object, else the producer library's current stream, else 0."""
    if stream is None:
        library = type(frame).__module__.split(".")[0]
        if library == "torch":
            import torch
            return int(torch.cuda.current_stream(frame.device).cuda_stream)
        if library == "cupy":
            import cupy
            return int(cupy.cuda.get_current_stream().ptr)
        return 0
    if isinstance(stream, (int, np.integer)) and not isinstance(stream, bool):
        return int(stream)
    for attribute in ("cuda_stream", "ptr", "handle"):
        handle = getattr(stream, attribute, None)
        if isinstance(handle, (int, np.integer)):
            return int(handle)
    raise TypeError(f"stream must be an int handle or an object with .cuda_stream/.ptr, got {type(stream).__name__}")


def _allocate_crops_like(frame, shape: tuple[int, ...]):
    """Device float32 array for the crops, from the same library as the frame (or CuPy/torch, whichever exists)."""
    library = type(frame).__module__.split(".")[0]
    if library == "torch":
        import torch
        return torch.empty(shape, dtype=torch.float32, device=frame.device)
    if library == "cupy":
        import cupy
        with frame.device:  # the frame's GPU, not the current one
            return cupy.empty(shape, dtype=cupy.float32)
    candidates = ["cupy", "torch"]
    for name in candidates:
        try:
            module = __import__(name)
        except ImportError:
            continue
        if name == "cupy":
            return module.empty(shape, dtype=module.float32)
        return module.empty(shape, dtype=module.float32, device="cuda")
    raise TypeError(f"cannot allocate the CUDA crops for a {type(frame).__name__} frame without CuPy or torch; "
                    f"pass out= (a float32 CUDA array of shape {shape})")


# ---- public operations ------------------------------------------------------------------------------------------

def warp_to_crop(frame, matrices, size: int = 128, pixel_format: str = "bgr", impl: str = "auto", out=None,
                 stream=None, threads: int | None = None):
    """Sample one size x size crop per matrix (frame->crop, 2x3) from `frame`.

    Returns (N,3,size,size) float32, RGB whatever the frame's order, value = pixel / 127.5 - 1 (the generator's
    input). NumPy in, NumPy out; a CUDA frame gives a CUDA array (`out` or a new torch/CuPy array).
    threads: C++ worker threads for this call (None: the `set_num_threads` setting).
    """
    chosen = _choose_impl("warp_to_crop", impl, frame)
    if chosen == "ref":
        return _ref.warp_to_crop(frame, matrices, size, pixel_format, out)
    matrices = _validate.as_matrices(matrices)
    _validate.check_invertible(matrices)
    size = _validate.check_size(size)
    count = len(matrices)
    if chosen == "cpu":
        _, _, _, blue_first = _validate.check_numpy_frame(frame, pixel_format, writable=False)
        if out is None:
            out = np.empty((count, 3, size, size), dtype=np.float32)
        else:
            _validate.check_numpy_crop_batch("out", out, count, 3, size)
        _C.warp_to_crop_cpu(frame, matrices, out, blue_first, _thread_count(threads))
        return out
    frame_info = _cuda_interface("frame", frame, writable=False)
    height, width, channels, blue_first = _validate.check_frame_geometry(
        frame_info["shape"], frame_info["typestr"], pixel_format)
    if out is None:
        out = _allocate_crops_like(frame, (count, 3, size, size))
    out_info = _cuda_interface("out", out, writable=True)
    _validate.check_crop_batch("out", out_info["shape"], out_info["typestr"], count, 3, size)
    if count:
        _C.warp_to_crop_cuda(frame_info["pointer"], height, width, channels, matrices, out_info["pointer"], size,
                             blue_first, _stream_handle(stream, frame))
    return out


def blend_from_crop(frame, images, masks, matrices, hulls, feather=4.0, pixel_format: str = "bgr",
                    impl: str = "auto", stream=None, threads: int | None = None):
    """Blend generated faces back into `frame` in place, inside each face's feathered convex hull; returns `frame`.

    images: (N,3,S,S) float32 RGB in [-1, 1]; masks: (N,1,S,S) float32 in [0, 1]; hulls: N polygons (K,2) in frame
    pixels; feather: edge ramp in pixels (<= 0: hard edge), one number or one per face. On the CUDA path images
    and masks must be CUDA arrays too. threads: as for `warp_to_crop`.
    """
    chosen = _choose_impl("blend_from_crop", impl, frame)
    if chosen == "ref":
        return _ref.blend_from_crop(frame, images, masks, matrices, hulls, feather, pixel_format)
    matrices = _validate.as_matrices(matrices)
    count = len(matrices)
    feathers = _validate.check_feathers(feather, count)
    if chosen == "cpu":
        _, _, _, blue_first = _validate.check_numpy_frame(frame, pixel_format, writable=True)
        size = _validate.check_numpy_crop_batch("images", images, count, 3)
        _validate.check_numpy_crop_batch("masks", masks, count, 1, size)
        points, offsets = _validate.pack_hulls(hulls, count)
        _C.blend_from_crop_cpu(frame, images, masks, matrices, points, offsets, feathers, blue_first,
                               _thread_count(threads))
        return frame
    frame_info = _cuda_interface("frame", frame, writable=True)
    height, width, channels, blue_first = _validate.check_frame_geometry(
        frame_info["shape"], frame_info["typestr"], pixel_format)
    image_info = _cuda_interface("images", images, writable=False)
    mask_info = _cuda_interface("masks", masks, writable=False)
    size = _validate.check_crop_batch("images", image_info["shape"], image_info["typestr"], count, 3)
    _validate.check_crop_batch("masks", mask_info["shape"], mask_info["typestr"], count, 1, size)
    points, offsets = _validate.pack_hulls(hulls, count)
    if count:
        _C.blend_from_crop_cuda(frame_info["pointer"], height, width, channels, image_info["pointer"],
                                mask_info["pointer"], size, matrices, points, offsets, feathers, blue_first,
                                _stream_handle(stream, frame))
    return frame
