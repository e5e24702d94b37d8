// C++ kernels of warp_to_crop and blend_from_crop, multi-threaded over rows. Arguments are checked by the caller.
#pragma once
#include <cstdint>

#include "warp_blend_plan.h"

namespace deid {

// frame: height x width x channels uint8; out: count x 3 x size x size float32.
void warp_to_crop_cpu(const std::uint8_t* frame, int height, int width, int channels, bool blue_first,
                      const std::vector<WarpFace>& faces, float* out, int size, int threads);

// In place on frame; images: count x 3 x size x size, masks: count x size x size (float32).
void blend_from_crop_cpu(std::uint8_t* frame, int width, int channels, bool blue_first, const BlendPlan& plan,
                         const float* images, const float* masks, int size, int threads);

}  // namespace deid
