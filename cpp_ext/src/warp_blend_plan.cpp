#include "warp_blend_plan.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace deid {

std::vector<WarpFace> plan_warp(const double* matrices, int count) {
  std::vector<WarpFace> faces(count);
  for (int n = 0; n < count; ++n) {
    const double* m = matrices + 6 * n;
    double determinant = m[0] * m[4] - m[1] * m[3];
    if (!(std::fabs(determinant) >= 1e-12)) {
      throw std::invalid_argument("matrices must be invertible, matrix " + std::to_string(n) + " has determinant " +
                                  std::to_string(determinant));
    }
    double a = m[4] / determinant, b = -m[1] / determinant, c = -m[3] / determinant, d = m[0] / determinant;
    double* inverse = faces[n].inverse;
    inverse[0] = a, inverse[1] = b, inverse[2] = -(a * m[2] + b * m[5]);
    inverse[3] = c, inverse[4] = d, inverse[5] = -(c * m[2] + d * m[5]);
  }
  return faces;
}

namespace {
int floor_clipped(double value, int low, int high) {
  return static_cast<int>(std::floor(std::min(std::max(value, low - 1.0), high + 1.0)));
}
}  // namespace

BlendPlan plan_blend(const double* matrices, int count, const double* points, const std::int64_t* offsets,
                     const double* feathers, int height, int width) {
  BlendPlan plan;
  plan.row_begin = height;
  plan.row_end = 0;
  for (int n = 0; n < count; ++n) {
    const double* hull = points + 2 * offsets[n];
    const int vertex_count = static_cast<int>(offsets[n + 1] - offsets[n]);
    if (vertex_count < 3) continue;
    double min_x = hull[0], max_x = hull[0], min_y = hull[1], max_y = hull[1], doubled_area = 0.0;
    for (int k = 0; k < vertex_count; ++k) {
      const double* p = hull + 2 * k;
      const double* q = hull + 2 * ((k + 1) % vertex_count);
      min_x = std::min(min_x, p[0]), max_x = std::max(max_x, p[0]);
      min_y = std::min(min_y, p[1]), max_y = std::max(max_y, p[1]);
      doubled_area += p[0] * q[1] - q[0] * p[1];
    }
    BlendFace face;
    face.x0 = std::max(floor_clipped(min_x, 0, width), 0);
    face.y0 = std::max(floor_clipped(min_y, 0, height), 0);
    face.x1 = std::min(-floor_clipped(-max_x, -width, 0), width - 1);  // ceil
    face.y1 = std::min(-floor_clipped(-max_y, -height, 0), height - 1);
    if (face.x0 > face.x1 || face.y0 > face.y1 || std::fabs(doubled_area) < 1e-9) continue;
    const double orientation = doubled_area > 0 ? 1.0 : -1.0;
    face.crop_index = n;
    face.feather = static_cast<float>(feathers[n]);
    face.edge_begin = static_cast<int>(plan.edges.size());
    for (int k = 0; k < vertex_count; ++k) {
      const double* p = hull + 2 * k;
      const double* q = hull + 2 * ((k + 1) % vertex_count);
      double ex = q[0] - p[0], ey = q[1] - p[1], length = std::hypot(ex, ey);
      if (length <= 1e-9) continue;  // repeated vertex
      HullEdge edge;
      edge.a = static_cast<float>(-orientation * ey / length);
      edge.b = static_cast<float>(orientation * ex / length);
      edge.c = static_cast<float>(orientation * (ex * (face.y0 - p[1]) - ey * (face.x0 - p[0])) / length);
      plan.edges.push_back(edge);
    }
    face.edge_count = static_cast<int>(plan.edges.size()) - face.edge_begin;
    if (face.edge_count < 3) {
      plan.edges.resize(face.edge_begin);
      continue;
    }
    const double* m = matrices + 6 * n;
    face.u0 = static_cast<float>(m[0] * face.x0 + m[1] * face.y0 + m[2]);
    face.v0 = static_cast<float>(m[3] * face.x0 + m[4] * face.y0 + m[5]);
    face.du_dx = static_cast<float>(m[0]), face.du_dy = static_cast<float>(m[1]);
    face.dv_dx = static_cast<float>(m[3]), face.dv_dy = static_cast<float>(m[4]);
    plan.faces.push_back(face);
    plan.row_begin = std::min(plan.row_begin, face.y0);
    plan.row_end = std::max(plan.row_end, face.y1 + 1);
  }
  if (plan.faces.empty()) plan.row_begin = plan.row_end = 0;
  return plan;
}

}  // namespace deid
