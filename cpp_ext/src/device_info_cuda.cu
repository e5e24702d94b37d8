#include <cuda_runtime.h>

#include "device_info.h"

namespace deid {
bool built_with_cuda() { return true; }

int cuda_device_count(std::string* error) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (error) *error = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later calls report their own
    return 0;
  }
  return count;
}
}  // namespace deid
