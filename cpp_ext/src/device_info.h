// Which compiled kernels this build has and whether a CUDA device is usable right now.
#pragma once
#include <string>

namespace deid {
bool built_with_cuda();
// Number of usable CUDA devices; 0 (and a reason in `error`) when none or no driver.
int cuda_device_count(std::string* error);
}  // namespace deid
