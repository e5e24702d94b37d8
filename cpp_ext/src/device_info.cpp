#include "device_info.h"

namespace deid {
#ifndef DEID_WITH_CUDA
bool built_with_cuda() { return false; }
int cuda_device_count(std::string* error) {
  if (error) *error = "deid_sdk._C was built without CUDA (nvcc was not found at build time)";
  return 0;
}
#endif
}  // namespace deid
