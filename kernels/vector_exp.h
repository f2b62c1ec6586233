#pragma once
// exp for the fused CPU loops, written in plain arithmetic that gcc vectorises in every clone of
// ASIARCH_VECTOR_CLONES (libm's expf is a call per element, which stops the vectoriser). Only
// additions, multiplications, min/max and integer bit operations, each rounded once (no FMA), so
// every instruction set gives the same bits. Internal to kernels/.
//
// float: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2 (ln2 in two parts, Cody and
// Waite), exp(r) by the degree-7 polynomial of the Cephes library's expf (S. L. Moshier), and 2^n
// written into the exponent bits: a few float32 roundings from the exact value (the tests hold the
// activations to 4e-7 relative).
// double (the tests' precision): std::exp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace asiarch::kernels {

// The arguments exp is clamped to. Below, 2^n would not be a normal float, so exp(x) is exp(-87) =
// 1.6e-38 there: next to the 1 of a sigmoid or a softmax's largest term it is nothing. Above
// 88.38, n = 128 writes the exponent of infinity, and exp is +inf (a sigmoid of 0), slightly
// before the true overflow at 88.72. Kernels take the range as a parameter instead of naming
// constants: with constants gcc splits the loop at the clamp (whose results are constants) and no
// longer vectorises it.
struct ExpRange {
  float low = -87.0f, high = 89.0f;
};

inline float vector_exp(float x, const ExpRange& range) {
  x = std::min(std::max(x, range.low), range.high);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_to_n;
  std::memcpy(&two_to_n, &bits, sizeof two_to_n);
  return p * two_to_n;
}

inline double vector_exp(double x, const ExpRange&) { return std::exp(x); }

// 1 / (1 + exp(-x)).
template <typename T>
inline T vector_sigmoid(T x, const ExpRange& range) {
  return T(1) / (T(1) + vector_exp(-x, range));
}

}  // namespace asiarch::kernels
