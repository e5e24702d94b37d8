// CUDA kernels of warp_to_crop and blend_from_crop. Pointers are device addresses (from __cuda_array_interface__),
// `stream` a cudaStream_t as an integer. Work is queued on the stream; nothing waits for it. Without a CUDA build
// (or without a usable device) these throw std::runtime_error, which Python sees as RuntimeError.
#pragma once
#include <cstdint>
#include <vector>

#include "warp_blend_plan.h"

namespace deid {

void warp_to_crop_cuda(std::uintptr_t frame, int height, int width, int channels, bool blue_first,
                       const std::vector<WarpFace>& faces, std::uintptr_t out, int size, std::uintptr_t stream);

void blend_from_crop_cuda(std::uintptr_t frame, int width, int channels, bool blue_first, const BlendPlan& plan,
                          std::uintptr_t images, std::uintptr_t masks, int size, std::uintptr_t stream);

}  // namespace deid
