#pragma once
// kLanes values of a row as one GCC vector, for the fused CPU loops that keep sums in registers
// (the recurrences' strips, the convolution's channel blocks). Internal to kernels/.
//
// Each clone of ASIARCH_VECTOR_CLONES compiles their operations for its own instruction set,
// elementwise and without FMA, so all give the same bits; an accumulator of this type stays in
// registers, where gcc kept an array in memory. Pass them by reference: vectors in a signature
// change the ABI between clones.
#include <cstdint>
#include <cstring>

namespace asiarch::kernels {

constexpr int64_t kLanes = 16;

template <typename T>
struct LaneVector;
template <>
struct LaneVector<float> {
  typedef float type __attribute__((vector_size(kLanes * sizeof(float))));
};
template <>
struct LaneVector<double> {
  typedef double type __attribute__((vector_size(kLanes * sizeof(double))));
};
template <typename T>
using Lanes = typename LaneVector<T>::type;

template <typename T>
inline void load_lanes(const T* x, Lanes<T>& v) {
  std::memcpy(&v, x, sizeof v);
}

template <typename T>
inline void store_lanes(const Lanes<T>& v, T* x) {
  std::memcpy(x, &v, sizeof v);
}

}  // namespace asiarch::kernels
