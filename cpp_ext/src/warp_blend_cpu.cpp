#include "warp_blend_cpu.h"

#include <algorithm>

#include "parallel_rows.h"

namespace deid {

void warp_to_crop_cpu(const std::uint8_t* frame, int height, int width, int channels, bool blue_first,
                      const std::vector<WarpFace>& faces, float* out, int size, int threads) {
  const int plane = size * size;
  const int total_rows = static_cast<int>(faces.size()) * size;
  parallel_rows(0, total_rows, threads, [&](int row) {
    const int n = row / size, v = row % size;
    float* crop_row = out + static_cast<std::int64_t>(n) * 3 * plane + static_cast<std::int64_t>(v) * size;
    for (int u = 0; u < size; ++u) {
      warp_pixel(frame, height, width, channels, blue_first, faces[n], u, v, crop_row + u, plane);
    }
  });
}

void blend_from_crop_cpu(std::uint8_t* frame, int width, int channels, bool blue_first, const BlendPlan& plan,
                         const float* images, const float* masks, int size, int threads) {
  const std::int64_t plane = static_cast<std::int64_t>(size) * size;
  // Each row belongs to one thread, which applies the faces in order: overlapping faces blend as in the reference.
  parallel_rows(plan.row_begin, plan.row_end, threads, [&](int y) {
    std::uint8_t* frame_row = frame + static_cast<std::int64_t>(y) * width * channels;
    for (const BlendFace& face : plan.faces) {
      if (y < face.y0 || y > face.y1) continue;
      const HullEdge* edges = plan.edges.data() + face.edge_begin;
      const float* image = images + face.crop_index * 3 * plane;
      const float* mask = masks + face.crop_index * plane;
      const int dy = y - face.y0, last_dx = face.x1 - face.x0;
      // Outside the outer run the weight is 0; inside the inner run it is 1; only the rim needs the edge tests.
      int outer_first, outer_last, inner_first, inner_last;
      hull_row_span(edges, face.edge_count, dy, -kSpanMargin, last_dx, &outer_first, &outer_last);
      hull_row_span(edges, face.edge_count, dy, std::max(face.feather, 0.0f) + kSpanMargin, last_dx, &inner_first,
                    &inner_last);
      std::uint8_t* box_row = frame_row + face.x0 * channels;
      for (int dx = outer_first; dx <= outer_last; ++dx) {
        const bool inside = dx >= inner_first && dx <= inner_last;
        const float weight = inside ? 1.0f : hull_weight(edges, face.edge_count, float(dx), float(dy), face.feather);
        blend_pixel_weighted(box_row + dx * channels, blue_first, face, weight, image, mask, size, dx, dy);
      }
    }
  });
}

}  // namespace deid
