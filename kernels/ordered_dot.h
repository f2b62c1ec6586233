#pragma once
// A dot product in float64 for the fused CPU kernels: kLanes interleaved partial sums, added in a
// fixed order at the end. The result depends neither on the thread count nor on the instruction
// set, and the lanes vectorise, where one running sum would be a chain of dependent additions
// (measured: RMSNorm's backward spent most of its time in that chain). Internal to kernels/.
#include <cstdint>

namespace asiarch::kernels {

// The sum of term(i) for i < n (float64 terms) in the lanes' order.
template <typename Term>
inline double ordered_sum(int64_t n, const Term& term) {
  constexpr int64_t kLanes = 8;
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += term(i + l);
  }
  for (; i < n; ++i) lanes[i % kLanes] += term(i);
  double sum = 0;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

template <typename T, typename U>
inline double ordered_dot(const T* __restrict a, const U* __restrict b, int64_t n) {
  return ordered_sum(n, [&](int64_t i) { return static_cast<double>(a[i]) * static_cast<double>(b[i]); });
}

}  // namespace asiarch::kernels
