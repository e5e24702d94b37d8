// Host-side preparation shared by the C++ and CUDA kernels: invert the warp matrices, and turn each face's matrix
// and hull into a pixel box, box-relative crop coordinates and normalized edge lines.
#pragma once
#include <cstdint>
#include <vector>

#include "warp_blend_math.h"

namespace deid {

// matrices: count x (2x3) frame->crop, row-major. Throws std::invalid_argument for a singular matrix.
std::vector<WarpFace> plan_warp(const double* matrices, int count);

struct BlendPlan {
  std::vector<BlendFace> faces;  // in the caller's order; faces whose box misses the frame or whose hull is degenerate
                                 // are dropped (they change nothing)
  std::vector<HullEdge> edges;
  int row_begin = 0, row_end = 0;  // union of the boxes' rows, [begin, end)
};

// points: all hull vertices (x, y) concatenated; offsets: count + 1 prefix offsets into points; feathers: count.
BlendPlan plan_blend(const double* matrices, int count, const double* points, const std::int64_t* offsets,
                     const double* feathers, int height, int width);

}  // namespace deid
