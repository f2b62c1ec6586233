#pragma once
// The SiLU loops of activations.cpp, for kernels that run SiLU on what they have just computed
// (the short convolution followed by SiLU, layers.cpp). Internal to kernels/; defined for float
// and double.
#include <cstdint>

namespace asiarch::kernels {

// s = sigmoid(a), out = a s, over n elements.
template <typename T>
void silu_forward(const T* a, T* out, T* sigmoid, int64_t n);

// grad_a = grad (s + out (1 - s)), the derivative from the forward's output and sigmoid.
template <typename T>
void silu_backward(const T* out, const T* sigmoid, const T* grad, T* grad_a, int64_t n);

}  // namespace asiarch::kernels
