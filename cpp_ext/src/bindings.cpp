// pybind11 module deid_sdk._C: the private compiled part of the SDK. The public, checked API is deid_sdk.ops; the
// checks here only guard memory safety (a wrong call raises instead of reading out of bounds).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "device_info.h"
#include "warp_blend_cpu.h"
#include "warp_blend_cuda.h"
#include "warp_blend_plan.h"

namespace py = pybind11;

namespace {

std::string shape_text(const py::array& array) {
  std::string text = "(";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) text += (i ? "," : "") + std::to_string(array.shape(i));
  return text + (array.ndim() == 1 ? ",)" : ")");
}

// Checks dtype, rank, C-contiguity (and writability) without ever copying: the kernels work in place.
template <typename T>
void require(const py::array& array, const char* name, py::ssize_t ndim, bool writable) {
  if (!py::isinstance<py::array_t<T>>(array) || !array.dtype().is(py::dtype::of<T>())) {
    throw py::type_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<T>())) +
                         ", got " + std::string(py::str(array.dtype())));
  }
  if (array.ndim() != ndim) {
    throw py::value_error(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, got shape " +
                          shape_text(array));
  }
  if (!(array.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
  if (writable && !array.writeable()) throw py::value_error(std::string(name) + " must be writable");
}

struct FrameShape {
  int height, width, channels;
};

FrameShape frame_shape(const py::array& frame, bool writable) {
  require<std::uint8_t>(frame, "frame", 3, writable);
  FrameShape shape{static_cast<int>(frame.shape(0)), static_cast<int>(frame.shape(1)),
                   static_cast<int>(frame.shape(2))};
  if (shape.channels != 3 && shape.channels != 4) {
    throw py::value_error("frame must have 3 or 4 channels, got shape " + shape_text(frame));
  }
  return shape;
}

int matrix_count(const py::array& matrices) {
  require<double>(matrices, "matrices", 3, false);
  if (matrices.shape(1) != 2 || matrices.shape(2) != 3) {
    throw py::value_error("matrices must have shape (N,2,3), got " + shape_text(matrices));
  }
  return static_cast<int>(matrices.shape(0));
}

void require_batch(const py::array& array, const char* name, int count, int channels, int size, bool writable) {
  require<float>(array, name, 4, writable);
  if (array.shape(0) != count || array.shape(1) != channels || array.shape(2) != size || array.shape(3) != size) {
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(count) + "," +
                          std::to_string(channels) + "," + std::to_string(size) + "," + std::to_string(size) +
                          "), got " + shape_text(array));
  }
}

void check_frame_geometry(int height, int width, int channels) {
  if (height < 1 || width < 1 || (channels != 3 && channels != 4)) {
    throw py::value_error("frame must be HxWx3 or HxWx4 with H, W >= 1, got " + std::to_string(height) + "x" +
                          std::to_string(width) + "x" + std::to_string(channels));
  }
}

deid::BlendPlan blend_plan(const py::array& matrices, int count, const py::array& hull_points,
                           const py::array& hull_offsets, const py::array& feathers, int height, int width) {
  require<double>(hull_points, "hull_points", 2, false);
  require<std::int64_t>(hull_offsets, "hull_offsets", 1, false);
  require<double>(feathers, "feathers", 1, false);
  if (feathers.shape(0) != count) {
    throw py::value_error("feathers must have shape (" + std::to_string(count) + ",), got " + shape_text(feathers));
  }
  if (hull_points.shape(1) != 2 || hull_offsets.shape(0) != count + 1) {
    throw py::value_error("hull_points must be (P,2) and hull_offsets (N+1,), got " + shape_text(hull_points) +
                          " and " + shape_text(hull_offsets));
  }
  const auto* offsets = static_cast<const std::int64_t*>(hull_offsets.data());
  for (int n = 0; n < count; ++n) {
    if (offsets[0] != 0 || offsets[n + 1] < offsets[n] || offsets[n + 1] > hull_points.shape(0)) {
      throw py::value_error("hull_offsets must rise from 0 to the number of hull points");
    }
  }
  return deid::plan_blend(static_cast<const double*>(matrices.data()), count,
                          static_cast<const double*>(hull_points.data()), offsets,
                          static_cast<const double*>(feathers.data()), height, width);
}

void warp_cpu(const py::array& frame, const py::array& matrices, const py::array& out, bool blue_first, int threads) {
  FrameShape shape = frame_shape(frame, false);
  int count = matrix_count(matrices);
  require<float>(out, "out", 4, true);
  int size = static_cast<int>(out.shape(2));
  require_batch(out, "out", count, 3, size, true);
  auto faces = deid::plan_warp(static_cast<const double*>(matrices.data()), count);
  const auto* pixels = static_cast<const std::uint8_t*>(frame.data());
  auto* crops = static_cast<float*>(const_cast<void*>(out.data()));
  py::gil_scoped_release release;
  deid::warp_to_crop_cpu(pixels, shape.height, shape.width, shape.channels, blue_first, faces, crops, size, threads);
}

void blend_cpu(const py::array& frame, const py::array& images, const py::array& masks, const py::array& matrices,
               const py::array& hull_points, const py::array& hull_offsets, const py::array& feathers,
               bool blue_first, int threads) {
  FrameShape shape = frame_shape(frame, true);
  int count = matrix_count(matrices);
  require<float>(images, "images", 4, false);
  int size = static_cast<int>(images.shape(2));
  require_batch(images, "images", count, 3, size, false);
  require_batch(masks, "masks", count, 1, size, false);
  deid::BlendPlan plan =
      blend_plan(matrices, count, hull_points, hull_offsets, feathers, shape.height, shape.width);
  auto* pixels = static_cast<std::uint8_t*>(const_cast<void*>(frame.data()));
  const auto* image_data = static_cast<const float*>(images.data());
  const auto* mask_data = static_cast<const float*>(masks.data());
  py::gil_scoped_release release;
  deid::blend_from_crop_cpu(pixels, shape.width, shape.channels, blue_first, plan, image_data, mask_data, size,
                            threads);
}

void warp_cuda(std::uintptr_t frame, int height, int width, int channels, const py::array& matrices,
               std::uintptr_t out, int size, bool blue_first, std::uintptr_t stream) {
  check_frame_geometry(height, width, channels);
  if (size < 2) throw py::value_error("size must be >= 2, got " + std::to_string(size));
  int count = matrix_count(matrices);
  auto faces = deid::plan_warp(static_cast<const double*>(matrices.data()), count);
  py::gil_scoped_release release;
  deid::warp_to_crop_cuda(frame, height, width, channels, blue_first, faces, out, size, stream);
}

void blend_cuda(std::uintptr_t frame, int height, int width, int channels, std::uintptr_t images,
                std::uintptr_t masks, int size, const py::array& matrices, const py::array& hull_points,
                const py::array& hull_offsets, const py::array& feathers, bool blue_first, std::uintptr_t stream) {
  check_frame_geometry(height, width, channels);
  if (size < 2) throw py::value_error("size must be >= 2, got " + std::to_string(size));
  int count = matrix_count(matrices);
  deid::BlendPlan plan = blend_plan(matrices, count, hull_points, hull_offsets, feathers, height, width);
  py::gil_scoped_release release;
  deid::blend_from_crop_cuda(frame, width, channels, blue_first, plan, images, masks, size, stream);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "deid_sdk compiled kernels (private; use deid_sdk.ops)";
  m.def("built_with_cuda", &deid::built_with_cuda, "True when the CUDA kernels were compiled in.");
  m.def(
      "cuda_device_count",
      []() {
        std::string error;
        int count = deid::cuda_device_count(&error);
        return py::make_tuple(count, error);
      },
      "(number of usable CUDA devices, reason when 0).");
  m.def("warp_to_crop_cpu", &warp_cpu, py::arg("frame"), py::arg("matrices"), py::arg("out"), py::arg("blue_first"),
        py::arg("threads") = 0,
        "Crops (N,3,S,S) float32 RGB in [-1,1] into `out` from an HxWxC uint8 frame; matrices (N,2,3) float64 "
        "frame->crop.");
  m.def("blend_from_crop_cpu", &blend_cpu, py::arg("frame"), py::arg("images"), py::arg("masks"),
        py::arg("matrices"), py::arg("hull_points"), py::arg("hull_offsets"), py::arg("feathers"),
        py::arg("blue_first"), py::arg("threads") = 0, "Blend generated crops into the frame in place.");
  m.def("warp_to_crop_cuda", &warp_cuda, py::arg("frame_pointer"), py::arg("height"), py::arg("width"),
        py::arg("channels"), py::arg("matrices"), py::arg("out_pointer"), py::arg("size"), py::arg("blue_first"),
        py::arg("stream") = 0, "CUDA warp_to_crop on device pointers, queued on `stream`.");
  m.def("blend_from_crop_cuda", &blend_cuda, py::arg("frame_pointer"), py::arg("height"), py::arg("width"),
        py::arg("channels"), py::arg("images_pointer"), py::arg("masks_pointer"), py::arg("size"),
        py::arg("matrices"), py::arg("hull_points"), py::arg("hull_offsets"), py::arg("feathers"),
        py::arg("blue_first"), py::arg("stream") = 0, "CUDA blend_from_crop on device pointers, queued on `stream`.");
}
