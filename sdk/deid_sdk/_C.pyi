"""Typed stub of the private compiled module deid_sdk._C (cpp_ext/src/bindings.cpp). Use deid_sdk.ops instead."""
import numpy as np
import numpy.typing as npt

def built_with_cuda() -> bool:
    """True when the CUDA kernels were compiled in."""

def cuda_device_count() -> tuple[int, str]:
    """(number of usable CUDA devices, reason when 0)."""

def warp_to_crop_cpu(frame: npt.NDArray[np.uint8], matrices: npt.NDArray[np.float64], out: npt.NDArray[np.float32],
                     blue_first: bool, threads: int = 0) -> None:
    """Crops (N,3,S,S) float32 RGB in [-1,1] into `out` from an HxWxC uint8 frame; matrices (N,2,3) frame->crop."""

def blend_from_crop_cpu(frame: npt.NDArray[np.uint8], images: npt.NDArray[np.float32], masks: npt.NDArray[np.float32],
                        matrices: npt.NDArray[np.float64], hull_points: npt.NDArray[np.float64],
                        hull_offsets: npt.NDArray[np.int64], feathers: npt.NDArray[np.float64],
                        blue_first: bool, threads: int = 0) -> None:
    """Blend generated crops into the frame in place."""

def warp_to_crop_cuda(frame_pointer: int, height: int, width: int, channels: int, matrices: npt.NDArray[np.float64],
                      out_pointer: int, size: int, blue_first: bool, stream: int = 0) -> None:
    """CUDA warp_to_crop on device pointers, queued on `stream`."""

def blend_from_crop_cuda(frame_pointer: int, height: int, width: int, channels: int, images_pointer: int,
                         masks_pointer: int, size: int, matrices: npt.NDArray[np.float64],
                         hull_points: npt.NDArray[np.float64], hull_offsets: npt.NDArray[np.int64],
                         feathers: npt.NDArray[np.float64], blue_first: bool, stream: int = 0) -> None:
    """CUDA blend_from_crop on device pointers, queued on `stream`."""
