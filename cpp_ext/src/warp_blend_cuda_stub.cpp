// Stand-ins for builds without nvcc: the module imports everywhere and CUDA calls fail with a clear message.
#include <stdexcept>

#include "warp_blend_cuda.h"

namespace deid {
#ifndef DEID_WITH_CUDA
namespace {
[[noreturn]] void no_cuda() {
  throw std::runtime_error("deid_sdk._C was built without CUDA (nvcc was not found at build time); "
                           "rebuild on a machine with the CUDA toolkit or use impl='cpu' with NumPy frames");
}
}  // namespace
void warp_to_crop_cuda(std::uintptr_t, int, int, int, bool, const std::vector<WarpFace>&, std::uintptr_t, int,
                       std::uintptr_t) {
  no_cuda();
}
void blend_from_crop_cuda(std::uintptr_t, int, int, bool, const BlendPlan&, std::uintptr_t, std::uintptr_t, int,
                          std::uintptr_t) {
  no_cuda();
}
#endif
}  // namespace deid
