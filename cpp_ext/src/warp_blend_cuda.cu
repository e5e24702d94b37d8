// CUDA kernels: one thread per output pixel. Face parameters travel in the kernel's argument block (no device
// allocation or copy per call), so a call is one launch for the crops and one per batch of non-overlapping faces for
// the blend (overlapping faces go to a later batch, which keeps the reference's face order).
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "warp_blend_cuda.h"

namespace deid {
namespace {

constexpr int kMaxWarpFaces = 64;
constexpr int kMaxBlendFaces = 8;
constexpr int kMaxBlendEdges = 256;

struct WarpLaunch {
  WarpFace faces[kMaxWarpFaces];
};
struct BlendLaunch {
  BlendFace faces[kMaxBlendFaces];  // edge_begin relative to `edges` below
  HullEdge edges[kMaxBlendEdges];
};
// Kernel arguments are limited to 4 KiB before CUDA 12.1 (JetPack 5 ships 11.4).
static_assert(sizeof(WarpLaunch) + 64 < 4096, "warp arguments exceed the 4 KiB kernel argument limit");
static_assert(sizeof(BlendLaunch) + 64 < 4096, "blend arguments exceed the 4 KiB kernel argument limit");

constexpr int kBlockX = 32, kBlockY = 8;

__global__ void warp_kernel(const std::uint8_t* frame, int height, int width, int channels, bool blue_first,
                            float* out, int size, const WarpLaunch launch) {
  const int u = blockIdx.x * kBlockX + threadIdx.x;
  const int v = blockIdx.y * kBlockY + threadIdx.y;
  if (u >= size || v >= size) return;
  const WarpFace face = launch.faces[blockIdx.z];
  const std::int64_t plane = static_cast<std::int64_t>(size) * size;
  warp_pixel(frame, height, width, channels, blue_first, face, u, v,
             out + blockIdx.z * 3 * plane + static_cast<std::int64_t>(v) * size + u, static_cast<int>(plane));
}

__global__ void blend_kernel(std::uint8_t* frame, int width, int channels, bool blue_first, const float* images,
                             const float* masks, int size, const BlendLaunch launch) {
  __shared__ HullEdge edges[kMaxBlendEdges];
  const BlendFace face = launch.faces[blockIdx.z];
  const int thread = threadIdx.y * kBlockX + threadIdx.x;
  for (int e = thread; e < face.edge_count; e += kBlockX * kBlockY) edges[e] = launch.edges[face.edge_begin + e];
  __syncthreads();
  const int dx = blockIdx.x * kBlockX + threadIdx.x;
  const int dy = blockIdx.y * kBlockY + threadIdx.y;
  const int x = face.x0 + dx, y = face.y0 + dy;
  if (x > face.x1 || y > face.y1) return;
  const std::int64_t plane = static_cast<std::int64_t>(size) * size;
  blend_pixel(frame + (static_cast<std::int64_t>(y) * width + x) * channels, blue_first, face, edges,
              images + face.crop_index * 3 * plane, masks + face.crop_index * plane, size, dx, dy);
}

void check(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the next call reports its own
    throw std::runtime_error("deid_sdk CUDA: " + what + ": " + cudaGetErrorString(status));
  }
}

// Makes the device that holds `frame` current for the call (restored after), and checks other buffers live there.
class DeviceScope {
 public:
  DeviceScope(std::uintptr_t frame, const char* name) {
    device_ = device_of(frame, name);
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device_ != previous_) check(cudaSetDevice(device_), "cudaSetDevice");
  }
  ~DeviceScope() {
    if (device_ != previous_) cudaSetDevice(previous_);
  }
  void expect_same_device(std::uintptr_t pointer, const char* name) const {
    int device = device_of(pointer, name);
    if (device != device_) {
      throw std::invalid_argument(std::string(name) + " is on CUDA device " + std::to_string(device) +
                                  " but the frame is on device " + std::to_string(device_));
    }
  }

 private:
  static int device_of(std::uintptr_t pointer, const char* name) {
    if (pointer == 0) throw std::invalid_argument(std::string(name) + " has a null device pointer");
    cudaPointerAttributes attributes{};
    check(cudaPointerGetAttributes(&attributes, reinterpret_cast<const void*>(pointer)),
          std::string("cannot query ") + name + " (is a CUDA driver and device available?)");
    const bool reachable = attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged ||
                           (attributes.type == cudaMemoryTypeHost && attributes.devicePointer != nullptr);
    if (!reachable) {
      throw std::invalid_argument(std::string(name) + " is not in CUDA device (or mapped) memory");
    }
    return attributes.device;
  }
  int device_ = 0, previous_ = 0;
};

cudaStream_t as_stream(std::uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

bool boxes_overlap(const BlendFace& a, const BlendFace& b) {
  return a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;
}

}  // namespace

void warp_to_crop_cuda(std::uintptr_t frame, int height, int width, int channels, bool blue_first,
                       const std::vector<WarpFace>& faces, std::uintptr_t out, int size, std::uintptr_t stream) {
  if (faces.empty()) return;
  DeviceScope scope(frame, "frame");
  scope.expect_same_device(out, "out");
  const std::int64_t crop_floats = 3LL * size * size;
  for (std::size_t first = 0; first < faces.size(); first += kMaxWarpFaces) {
    const int count = static_cast<int>(std::min<std::size_t>(kMaxWarpFaces, faces.size() - first));
    WarpLaunch launch;
    std::copy(faces.begin() + first, faces.begin() + first + count, launch.faces);
    dim3 grid((size + kBlockX - 1) / kBlockX, (size + kBlockY - 1) / kBlockY, count);
    warp_kernel<<<grid, dim3(kBlockX, kBlockY), 0, as_stream(stream)>>>(
        reinterpret_cast<const std::uint8_t*>(frame), height, width, channels, blue_first,
        reinterpret_cast<float*>(out) + first * crop_floats, size, launch);
    check(cudaGetLastError(), "warp_to_crop launch");
  }
}

void blend_from_crop_cuda(std::uintptr_t frame, int width, int channels, bool blue_first, const BlendPlan& plan,
                          std::uintptr_t images, std::uintptr_t masks, int size, std::uintptr_t stream) {
  if (plan.faces.empty()) return;
  DeviceScope scope(frame, "frame");
  scope.expect_same_device(images, "images");
  scope.expect_same_device(masks, "masks");
  std::size_t next = 0;
  while (next < plan.faces.size()) {
    // Gather consecutive faces whose boxes do not overlap and whose parameters fit one argument block.
    BlendLaunch launch;
    int count = 0, edge_total = 0, max_width = 0, max_height = 0;
    for (; next < plan.faces.size() && count < kMaxBlendFaces; ++next) {
      const BlendFace& face = plan.faces[next];
      if (face.edge_count > kMaxBlendEdges) {
        throw std::invalid_argument("a hull has " + std::to_string(face.edge_count) +
                                    " edges; the CUDA kernel takes at most " + std::to_string(kMaxBlendEdges));
      }
      if (edge_total + face.edge_count > kMaxBlendEdges) break;
      bool overlaps = false;
      for (int k = 0; k < count && !overlaps; ++k) overlaps = boxes_overlap(launch.faces[k], face);
      if (overlaps) break;
      BlendFace local = face;
      local.edge_begin = edge_total;
      std::copy(plan.edges.begin() + face.edge_begin, plan.edges.begin() + face.edge_begin + face.edge_count,
                launch.edges + edge_total);
      edge_total += face.edge_count;
      launch.faces[count++] = local;
      max_width = std::max(max_width, face.x1 - face.x0 + 1);
      max_height = std::max(max_height, face.y1 - face.y0 + 1);
    }
    dim3 grid((max_width + kBlockX - 1) / kBlockX, (max_height + kBlockY - 1) / kBlockY, count);
    blend_kernel<<<grid, dim3(kBlockX, kBlockY), 0, as_stream(stream)>>>(
        reinterpret_cast<std::uint8_t*>(frame), width, channels, blue_first, reinterpret_cast<const float*>(images),
        reinterpret_cast<const float*>(masks), size, launch);
    check(cudaGetLastError(), "blend_from_crop launch");
  }
}

}  // namespace deid
