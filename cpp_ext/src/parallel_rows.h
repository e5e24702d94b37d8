// Split rows over a few std::threads (the calling thread works too). Rows go out in interleaved chunks so that
// faces of different sizes still spread evenly.
#pragma once
#include <algorithm>
#include <thread>
#include <vector>

namespace deid {

// 0 means one thread per hardware thread, at most 8 (more only adds start-up cost for a frame's worth of work).
inline int resolve_thread_count(int requested) {
  if (requested > 0) return requested;
  int hardware = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(hardware, 1, 8);
}

template <typename RowFunction>
void parallel_rows(int row_begin, int row_end, int requested_threads, RowFunction&& process_row) {
  const int rows = row_end - row_begin;
  if (rows <= 0) return;
  constexpr int kChunk = 8;
  const int chunks = (rows + kChunk - 1) / kChunk;
  const int threads = std::min(resolve_thread_count(requested_threads), chunks);
  auto worker = [&](int thread_index) {
    for (int chunk = thread_index; chunk < chunks; chunk += threads) {
      const int first = row_begin + chunk * kChunk;
      const int last = std::min(first + kChunk, row_end);
      for (int row = first; row < last; ++row) process_row(row);
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) helpers.emplace_back(worker, t);
  worker(0);
  for (auto& helper : helpers) helper.join();
}

}  // namespace deid
