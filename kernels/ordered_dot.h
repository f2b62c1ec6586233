#pragma once
// A dot product in float64 for the fused CPU kernels: kLanes interleaved partial sums, added in a
// fixed order at the end. The result depends neither on the thread count nor on the instruction
// set, and the lanes vectorise, where one running sum would be a chain of dependent additions
// (measured: RMSNorm's backward spent most of its time in that chain). Internal to kernels/.
#include <cstdint>

namespace asiarch::kernels {

template <typename T, typename U>
inline double ordered_dot(const T* __restrict a, const U* __restrict b, int64_t n) {
  constexpr int64_t kLanes = 8;
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += static_cast<double>(a[i + l]) * static_cast<double>(b[i + l]);
  }
  for (; i < n; ++i) lanes[i % kLanes] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  double sum = 0;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

}  // namespace asiarch::kernels
