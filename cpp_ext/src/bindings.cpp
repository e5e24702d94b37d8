// pybind11 module deid_sdk._C: the private compiled part of the SDK.
#include <pybind11/pybind11.h>

#include <string>

#include "device_info.h"

namespace py = pybind11;

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
}
