"""Per-face geometry on the hot path: crop faces out of a frame, blend generated faces back (C++/CUDA kernels)."""
from deid_sdk.ops.warp_blend import (blend_from_crop, check_impl, check_thread_count, is_cuda_array, set_num_threads,
                                     warp_to_crop)

__all__ = ["blend_from_crop", "check_impl", "check_thread_count", "is_cuda_array", "set_num_threads", "warp_to_crop"]
