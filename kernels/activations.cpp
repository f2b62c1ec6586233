// Fused SiLU and SwiGLU (kernels/layers.h), forward and backward. libtorch runs silu(a) * b as
// a silu, a product and, backward, a silu_backward that computes the sigmoid again and two more
// products: five passes over the activations, two of them with an exp per element. Here the
// forward keeps the sigmoid it computed, and the backward is one pass without an exp.
//
// Every element is computed on its own, so neither the split into parallel chunks nor the
// thread count changes a bit.
#include <ATen/Parallel.h>

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

// s = sigmoid(a), out = a s b.
template <typename T>
ASIARCH_VECTOR_CLONES void swiglu_forward_loop(const T* __restrict a, const T* __restrict b, T* __restrict out, T* __restrict sigmoid,
                                               int64_t n, ExpRange range) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = vector_sigmoid(a[i], range);
    sigmoid[i] = s;
    out[i] = a[i] * s * b[i];
  }
}

// With y = a s: db = g y, da = g b (s + y (1 - s)).
template <typename T>
ASIARCH_VECTOR_CLONES void swiglu_backward_loop(const T* __restrict a, const T* __restrict b, const T* __restrict sigmoid,
                                                const T* __restrict grad, T* __restrict grad_a, T* __restrict grad_b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T y = a[i] * sigmoid[i];
    grad_b[i] = grad[i] * y;
    grad_a[i] = grad[i] * b[i] * (sigmoid[i] + y * (T(1) - sigmoid[i]));
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

class SwigluFunction : public torch::autograd::Function<SwigluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    const auto gate = a.contiguous(), value = b.contiguous();
    auto out = torch::empty_like(gate);
    auto sigmoid = torch::empty_like(gate);
    AT_DISPATCH_FLOATING_TYPES(gate.scalar_type(), "swiglu", [&] {
      for_each_chunk(gate.numel(), [&](int64_t first, int64_t count) {
        swiglu_forward_loop(gate.data_ptr<scalar_t>() + first, value.data_ptr<scalar_t>() + first, out.data_ptr<scalar_t>() + first,
                            sigmoid.data_ptr<scalar_t>() + first, count, ExpRange{});
      });
    });
    ctx->save_for_backward({gate, value, sigmoid});
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& gate = saved[0];
    const auto& value = saved[1];
    const auto& sigmoid = saved[2];
    const auto grad = grads[0].contiguous();
    auto grad_a = torch::empty_like(gate);
    auto grad_b = torch::empty_like(gate);
    AT_DISPATCH_FLOATING_TYPES(gate.scalar_type(), "swiglu_backward", [&] {
      for_each_chunk(gate.numel(), [&](int64_t first, int64_t count) {
        swiglu_backward_loop(gate.data_ptr<scalar_t>() + first, value.data_ptr<scalar_t>() + first, sigmoid.data_ptr<scalar_t>() + first,
                             grad.data_ptr<scalar_t>() + first, grad_a.data_ptr<scalar_t>() + first, grad_b.data_ptr<scalar_t>() + first,
                             count);
      });
    });
    return {grad_a, grad_b};
  }
};

}  // namespace

namespace reference {

torch::Tensor silu(const torch::Tensor& a) { return torch::silu(a); }

torch::Tensor swiglu(const torch::Tensor& a, const torch::Tensor& b) { return torch::silu(a) * b; }

}  // namespace reference

torch::Tensor silu(const torch::Tensor& a) {
  if (!cpu::supports(a) || a.numel() == 0) return reference::silu(a);
  return SiluFunction::apply(a);
}

torch::Tensor swiglu(const torch::Tensor& a, const torch::Tensor& b) {
  TORCH_CHECK(a.sizes() == b.sizes(), "swiglu: a and b must have one shape, got ", a.sizes(), " and ", b.sizes());
  if (!cpu::supports(a) || b.scalar_type() != a.scalar_type() || !b.device().is_cpu() || a.numel() == 0) return reference::swiglu(a, b);
  return SwigluFunction::apply(a, b);
}

}  // namespace asiarch::kernels
