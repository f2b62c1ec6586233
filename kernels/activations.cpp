// Fused SiLU and SwiGLU (kernels/layers.h), forward and backward. libtorch runs silu(a) * b as
// a silu, a product and, backward, a silu_backward that computes the sigmoid again and two more
// products: five passes over the activations, two of them with an exp per element. Here the
// forward keeps the sigmoid it computed, and the backward is one pass without an exp.
//
// Every element is computed on its own, so neither the split into parallel chunks nor the
// thread count changes a bit.
#include <ATen/Parallel.h>

#include <algorithm>

#include "kernels/activation_loops.h"
#include "kernels/layers.h"
#include "kernels/recurrence_cpu.h"
#include "kernels/vector_clones.h"
#include "kernels/vector_exp.h"

namespace asiarch::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Elements per parallel chunk.
constexpr int64_t kChunk = 1 << 14;

// body(first, count) over [0, n) in chunks.
template <typename Body>
void for_each_chunk(int64_t n, const Body& body) {
  at::parallel_for(0, n, kChunk, [&](int64_t first, int64_t last) { body(first, last - first); });
}

// s = sigmoid(a), out = a s.
template <typename T>
ASIARCH_VECTOR_CLONES void silu_forward_loop(const T* __restrict a, T* __restrict out, T* __restrict sigmoid, int64_t n, ExpRange range) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = vector_sigmoid(a[i], range);
    sigmoid[i] = s;
    out[i] = a[i] * s;
  }
}

// d silu(a) / da = s + a s (1 - s) = s + y (1 - s), with y = a s the forward's output.
template <typename T>
ASIARCH_VECTOR_CLONES void silu_backward_loop(const T* __restrict out, const T* __restrict sigmoid, const T* __restrict grad,
                                              T* __restrict grad_a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) grad_a[i] = grad[i] * (sigmoid[i] + out[i] * (T(1) - sigmoid[i]));
}

// Rows of [gate | value], each 2 * width: s = sigmoid(gate), out = gate s value, row by row.
template <typename T>
ASIARCH_VECTOR_CLONES void swiglu_forward_rows(const T* __restrict gate_value, T* __restrict out, T* __restrict sigmoid, int64_t rows,
                                               int64_t width, ExpRange range) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict a = gate_value + r * 2 * width;
    const T* __restrict b = a + width;
    T* __restrict s_row = sigmoid + r * width;
    T* __restrict out_row = out + r * width;
    for (int64_t i = 0; i < width; ++i) {
      const T s = vector_sigmoid(a[i], range);
      s_row[i] = s;
      out_row[i] = a[i] * s * b[i];
    }
  }
}

// With y = gate s: dvalue = g y, dgate = g value (s + y (1 - s)), into rows of [dgate | dvalue].
template <typename T>
ASIARCH_VECTOR_CLONES void swiglu_backward_rows(const T* __restrict gate_value, const T* __restrict sigmoid, const T* __restrict grad,
                                                T* __restrict grad_gate_value, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict a = gate_value + r * 2 * width;
    const T* __restrict b = a + width;
    const T* __restrict s_row = sigmoid + r * width;
    const T* __restrict g = grad + r * width;
    T* __restrict grad_a = grad_gate_value + r * 2 * width;
    T* __restrict grad_b = grad_a + width;
    for (int64_t i = 0; i < width; ++i) grad_b[i] = g[i] * (a[i] * s_row[i]);
    for (int64_t i = 0; i < width; ++i) grad_a[i] = g[i] * b[i] * (s_row[i] + a[i] * s_row[i] * (T(1) - s_row[i]));
  }
}

class SiluFunction : public torch::autograd::Function<SiluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a) {
    const auto input = a.contiguous();
    auto out = torch::empty_like(input);
    auto sigmoid = torch::empty_like(input);
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "silu", [&] {
      for_each_chunk(input.numel(), [&](int64_t first, int64_t count) {
        silu_forward_loop(input.data_ptr<scalar_t>() + first, out.data_ptr<scalar_t>() + first, sigmoid.data_ptr<scalar_t>() + first, count,
                          ExpRange{});
      });
    });
    ctx->save_for_backward({out, sigmoid});
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& out = saved[0];
    const auto& sigmoid = saved[1];
    const auto grad = grads[0].contiguous();
    auto grad_a = torch::empty_like(out);
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "silu_backward", [&] {
      for_each_chunk(out.numel(), [&](int64_t first, int64_t count) {
        silu_backward_loop(out.data_ptr<scalar_t>() + first, sigmoid.data_ptr<scalar_t>() + first, grad.data_ptr<scalar_t>() + first,
                           grad_a.data_ptr<scalar_t>() + first, count);
      });
    });
    return {grad_a};
  }
};

// body(first, count) over the rows of a [rows, width] activation, in chunks of about kChunk elements.
template <typename Body>
void for_each_row_chunk(int64_t rows, int64_t width, const Body& body) {
  at::parallel_for(0, rows, std::max<int64_t>(1, kChunk / std::max<int64_t>(width, 1)),
                   [&](int64_t first, int64_t last) { body(first, last - first); });
}

class SwigluFunction : public torch::autograd::Function<SwigluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate_value) {
    const auto input = gate_value.contiguous();
    const int64_t width = input.size(-1) / 2, rows = input.numel() / std::max<int64_t>(2 * width, 1);
    auto out_shape = input.sizes().vec();
    out_shape.back() = width;
    auto out = torch::empty(out_shape, input.options());
    auto sigmoid = torch::empty(out_shape, input.options());
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "swiglu", [&] {
      for_each_row_chunk(rows, width, [&](int64_t first, int64_t count) {
        swiglu_forward_rows(input.data_ptr<scalar_t>() + first * 2 * width, out.data_ptr<scalar_t>() + first * width,
                            sigmoid.data_ptr<scalar_t>() + first * width, count, width, ExpRange{});
      });
    });
    ctx->save_for_backward({input, sigmoid});
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& input = saved[0];
    const auto& sigmoid = saved[1];
    const auto grad = grads[0].contiguous();
    const int64_t width = sigmoid.size(-1), rows = sigmoid.numel() / std::max<int64_t>(width, 1);
    auto grad_input = torch::empty_like(input);
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "swiglu_backward", [&] {
      for_each_row_chunk(rows, width, [&](int64_t first, int64_t count) {
        swiglu_backward_rows(input.data_ptr<scalar_t>() + first * 2 * width, sigmoid.data_ptr<scalar_t>() + first * width,
                             grad.data_ptr<scalar_t>() + first * width, grad_input.data_ptr<scalar_t>() + first * 2 * width, count, width);
      });
    });
    return {grad_input};
  }
};

}  // namespace

template <typename T>
void silu_forward(const T* a, T* out, T* sigmoid, int64_t n) {
  silu_forward_loop(a, out, sigmoid, n, ExpRange{});
}

template <typename T>
void silu_backward(const T* out, const T* sigmoid, const T* grad, T* grad_a, int64_t n) {
  silu_backward_loop(out, sigmoid, grad, grad_a, n);
}

template void silu_forward<float>(const float*, float*, float*, int64_t);
template void silu_forward<double>(const double*, double*, double*, int64_t);
template void silu_backward<float>(const float*, const float*, const float*, float*, int64_t);
template void silu_backward<double>(const double*, const double*, const double*, double*, int64_t);

namespace reference {

torch::Tensor silu(const torch::Tensor& a) { return torch::silu(a); }

torch::Tensor swiglu(const torch::Tensor& gate_value) {
  const auto halves = gate_value.chunk(2, -1);
  return torch::silu(halves[0]) * halves[1];
}

}  // namespace reference

torch::Tensor silu(const torch::Tensor& a) {
  if (!cpu::supports(a) || a.numel() == 0) return reference::silu(a);
  return SiluFunction::apply(a);
}

torch::Tensor swiglu(const torch::Tensor& gate_value) {
  TORCH_CHECK(gate_value.dim() >= 1 && gate_value.size(-1) % 2 == 0, "swiglu: the last dimension must hold a gate and a value of one width, got ",
              gate_value.sizes());
  if (!cpu::supports(gate_value) || gate_value.numel() == 0) return reference::swiglu(gate_value);
  return SwigluFunction::apply(gate_value);
}

}  // namespace asiarch::kernels
