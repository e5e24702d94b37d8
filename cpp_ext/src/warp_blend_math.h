// Per-pixel math of warp_to_crop and blend_from_crop, shared verbatim by the C++ and the CUDA kernels so both
// follow one definition (the NumPy reference is deid_sdk/ops/_ref.py).
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define DEID_HD __host__ __device__ __forceinline__
#else
#define DEID_HD inline
#include <cmath>
#endif

namespace deid {

// One crop of warp_to_crop: the crop->frame matrix (inverse of the caller's frame->crop matrix), row-major 2x3.
// Double precision: frame coordinates reach thousands of pixels and float would cost ~1e-4 px.
struct WarpFace {
  double inverse[6];
};

// One face of blend_from_crop, prepared on the host. Coordinates are relative to the box origin (x0, y0) so the
// per-pixel float math works on small numbers.
struct BlendFace {
  int x0, y0, x1, y1;          // inclusive pixel box of the hull, clipped to the frame
  int crop_index;              // which image/mask of the batch
  int edge_begin, edge_count;  // slice of the HullEdge array
  float feather;               // hull edge ramp in pixels (<= 0: hard edge)
  float u0, v0;                // crop coordinates of pixel (x0, y0)
  float du_dx, du_dy, dv_dx, dv_dy;
};

// Signed distance to one hull edge's line, positive inside: d = a * dx + b * dy + c with dx = x - x0, dy = y - y0.
struct HullEdge {
  float a, b, c;
};

DEID_HD int clamp_int(int value, int low, int high) { return value < low ? low : (value > high ? high : value); }
// NaN gives `low`: the integer conversions after a clamp are undefined for NaN (a NaN image, mask or coordinate).
DEID_HD float clamp_float(float value, float low, float high) {
  return value >= low ? (value > high ? high : value) : low;
}

// Bilinear sampling positions with border replicate along one axis of `extent` samples.
struct Tap {
  int i0, i1;
  float f;
};

DEID_HD Tap tap_replicate_double(double coordinate, int extent) {
  // Every coordinate <= 0 samples index 0 and every one >= extent-1 the last, so clipping first changes nothing
  // and keeps the conversion to int defined for far-away points.
  coordinate = coordinate < -1.0 ? -1.0 : (coordinate > extent ? double(extent) : coordinate);
  double base = floor(coordinate);
  int index = int(base);
  return Tap{clamp_int(index, 0, extent - 1), clamp_int(index + 1, 0, extent - 1), float(coordinate - base)};
}

DEID_HD Tap tap_replicate_float(float coordinate, int extent) {
  coordinate = clamp_float(coordinate, -1.0f, float(extent));
  float base = floorf(coordinate);
  int index = int(base);
  return Tap{clamp_int(index, 0, extent - 1), clamp_int(index + 1, 0, extent - 1), coordinate - base};
}

DEID_HD float lerp2(float p00, float p01, float p10, float p11, float fx, float fy) {
  float top = p00 * (1.0f - fx) + p01 * fx;
  float bottom = p10 * (1.0f - fx) + p11 * fx;
  return top * (1.0f - fy) + bottom * fy;
}

// Crop pixel (u, v) of one face: writes R, G, B (value / 127.5 - 1) to out[0], out[plane], out[2 * plane].
DEID_HD void warp_pixel(const std::uint8_t* frame, int height, int width, int channels, bool blue_first,
                        const WarpFace& face, int u, int v, float* out, int plane) {
  const double* m = face.inverse;
  Tap tx = tap_replicate_double(m[0] * u + m[1] * v + m[2], width);
  Tap ty = tap_replicate_double(m[3] * u + m[4] * v + m[5], height);
  const std::uint8_t* row0 = frame + static_cast<std::int64_t>(ty.i0) * width * channels;
  const std::uint8_t* row1 = frame + static_cast<std::int64_t>(ty.i1) * width * channels;
  int c00 = tx.i0 * channels, c01 = tx.i1 * channels;
  for (int rgb = 0; rgb < 3; ++rgb) {
    int channel = blue_first ? 2 - rgb : rgb;
    float value = lerp2(row0[c00 + channel], row0[c01 + channel], row1[c00 + channel], row1[c01 + channel], tx.f,
                        ty.f);
    out[rgb * plane] = value * (1.0f / 127.5f) - 1.0f;
  }
}

// Hull weight of a pixel: clamp(d / feather, 0, 1), or a hard edge (d >= 0) when feather <= 0.
DEID_HD float hull_weight(const HullEdge* edges, int edge_count, float dx, float dy, float feather) {
  float distance = 3.0e38f;
  for (int e = 0; e < edge_count; ++e) {
    float d = edges[e].a * dx + edges[e].b * dy + edges[e].c;
    distance = d < distance ? d : distance;
  }
  if (feather <= 0.0f) return distance >= 0.0f ? 1.0f : 0.0f;
  return clamp_float(distance / feather, 0.0f, 1.0f);
}

// Columns [*first, *last] of box row dy (clipped to [0, last_dx]) where every edge line has d >= threshold; the
// region is convex, so it is one run per row. Lets the CPU kernel skip the hull's outside and its fully-weighted
// inside without per-pixel edge tests; callers pass thresholds with a margin (kSpanMargin) far above float error,
// so the skipped pixels get exactly what the per-pixel test would give.
constexpr double kSpanMargin = 1e-2;

DEID_HD void hull_row_span(const HullEdge* edges, int edge_count, int dy, double threshold, int last_dx, int* first,
                           int* last) {
  double low = 0.0, high = double(last_dx);
  for (int e = 0; e < edge_count && low <= high; ++e) {
    const double a = edges[e].a, rest = double(edges[e].b) * dy + double(edges[e].c);
    if (a > 1e-12) {
      const double bound = (threshold - rest) / a;
      low = bound > low ? bound : low;
    } else if (a < -1e-12) {
      const double bound = (threshold - rest) / a;
      high = bound < high ? bound : high;
    } else if (rest < threshold) {
      high = -1.0;  // a horizontal edge excludes the whole row
    }
  }
  if (low > high) {
    *first = 1, *last = 0;
    return;
  }
  *first = int(ceil(low));
  *last = int(floor(high));
}

// Mix one frame pixel (x0 + dx, y0 + dy) of a face with hull weight `weight` in place. Pixels with alpha 0 are
// left untouched, which is what the formula gives for them anyway.
DEID_HD void blend_pixel_weighted(std::uint8_t* pixel, bool blue_first, const BlendFace& face, float weight,
                                  const float* image, const float* mask, int size, int dx, int dy) {
  if (weight <= 0.0f) return;
  const float fdx = float(dx), fdy = float(dy);
  const float u = face.u0 + face.du_dx * fdx + face.du_dy * fdy;
  const float v = face.v0 + face.dv_dx * fdx + face.dv_dy * fdy;
  const float last = float(size - 1);
  if (!(u >= 0.0f && u <= last && v >= 0.0f && v <= last)) return;  // the mask counts as 0 outside the crop
  const Tap tx = tap_replicate_float(u, size);
  const Tap ty = tap_replicate_float(v, size);
  const int i00 = ty.i0 * size + tx.i0, i01 = ty.i0 * size + tx.i1;
  const int i10 = ty.i1 * size + tx.i0, i11 = ty.i1 * size + tx.i1;
  const float alpha = weight * lerp2(mask[i00], mask[i01], mask[i10], mask[i11], tx.f, ty.f);
  if (alpha <= 0.0f) return;
  const int plane = size * size;
  for (int rgb = 0; rgb < 3; ++rgb) {
    const float* p = image + rgb * plane;
    const float generated = (lerp2(p[i00], p[i01], p[i10], p[i11], tx.f, ty.f) + 1.0f) * 127.5f;
    const int channel = blue_first ? 2 - rgb : rgb;
    const float mixed = floorf(float(pixel[channel]) * (1.0f - alpha) + generated * alpha + 0.5f);
    pixel[channel] = static_cast<std::uint8_t>(clamp_float(mixed, 0.0f, 255.0f));
  }
}

// The same with the hull weight tested per pixel (the CUDA kernel's path).
DEID_HD void blend_pixel(std::uint8_t* pixel, bool blue_first, const BlendFace& face, const HullEdge* edges,
                         const float* image, const float* mask, int size, int dx, int dy) {
  const float weight = hull_weight(edges, face.edge_count, float(dx), float(dy), face.feather);
  blend_pixel_weighted(pixel, blue_first, face, weight, image, mask, size, dx, dy);
}

}  // namespace deid
