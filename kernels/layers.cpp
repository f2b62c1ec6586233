// Fused depthwise convolution over time and RMSNorm, which L2 normalisation reuses
// (kernels/layers.h), forward and backward.
//
// Parallel work is split by batch (convolution) or by fixed blocks of rows (RMSNorm), never by
// thread; the gradients of the parameters are summed per split and the splits then added in
// their order, so the thread count changes no bit of any result.
#include "kernels/layers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/activation_loops.h"
#include "kernels/lanes.h"
#include "kernels/ordered_dot.h"
#include "kernels/recurrence_cpu.h"
#include "kernels/vector_clones.h"

namespace asiarch::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Rows of an RMSNorm per block of its parameter gradient's partial sums.
constexpr int64_t kRowsPerBlock = 64;

// The fused loops take CPU float32 or float64 inputs (cpu::supports), a parameter of the input's
// dtype.
bool fused_kernels_take(const torch::Tensor& a, const torch::Tensor& parameter) {
  return cpu::supports(a) && cpu::supports(parameter) && a.scalar_type() == parameter.scalar_type();
}

// Reduced precision (bfloat16, float16) is normalised in float32, and returned in its own dtype:
// a mean of squares kept in 8 bits of mantissa loses the small terms.
bool reduced_precision(const torch::Tensor& a) { return a.scalar_type() == torch::kBFloat16 || a.scalar_type() == torch::kHalf; }

int64_t row_blocks(int64_t rows) { return (rows + kRowsPerBlock - 1) / kRowsPerBlock; }

// partial [S, ...] contiguous summed over its first dimension, S = 0, 1, ... in that order.
torch::Tensor sum_in_order(const torch::Tensor& partial) {
  auto total = partial.select(0, 0).clone();
  const int64_t width = total.numel();
  AT_DISPATCH_FLOATING_TYPES(partial.scalar_type(), "sum_in_order", [&] {
    const scalar_t* source = partial.data_ptr<scalar_t>();
    scalar_t* sum = total.data_ptr<scalar_t>();
    for (int64_t s = 1; s < partial.size(0); ++s)
      for (int64_t i = 0; i < width; ++i) sum[i] += source[s * width + i];
  });
  return total;
}

// ---- depthwise convolution ----

struct ConvShape {
  int64_t batch, length, channels, taps, before;
};

ConvShape conv_shape(const torch::Tensor& a, const torch::Tensor& taps, int64_t before) {
  return {a.size(0), a.size(1), a.size(2), taps.size(1), before};
}

// Channel blocks of kLanes whose sums the convolution keeps in registers at once: 64 channels,
// and with the taps' gradient's 4 taps 16 of AVX-512's 32 registers.
constexpr int kRegisterBlocks = 4;

// Channels [c0, c0 + kBlocks kLanes) of sum_of_products, their sums in kBlocks registers: chains
// of additions that do not wait on each other.
template <int kBlocks, typename T, typename Term>
__attribute__((always_inline)) inline void sum_of_products_in_registers(T* __restrict out, int64_t c0, int64_t count, const Term& term) {
  Lanes<T> sums[kBlocks] = {}, u, v;
  for (int64_t i = 0; i < count; ++i) {
    const auto [u_i, v_i] = term(i);
    for (int b = 0; b < kBlocks; ++b) {
      load_lanes(u_i + c0 + b * kLanes, u);
      load_lanes(v_i + c0 + b * kLanes, v);
      sums[b] = sums[b] + u * v;
    }
  }
  for (int b = 0; b < kBlocks; ++b) store_lanes(sums[b], out + c0 + b * kLanes);
}

// out[c] = the sum over i < count of u_i[c] v_i[c], added from zero in the order of i, where
// term(i) gives {u_i, v_i}: in registers, four blocks of kLanes channels at a time and then one,
// then the channels left over one by one. The convolution's loops first added each term onto the
// output row in memory, and waited on the last store before every addition; one register per sum
// then waited on the last addition (the taps' gradient sums 128 tokens). The same additions in
// independent registers give the same bits.
template <typename T, typename Term>
__attribute__((always_inline)) inline void sum_of_products(T* __restrict out, int64_t channels, int64_t count, const Term& term) {
  int64_t c0 = 0;
  for (; c0 + kRegisterBlocks * kLanes <= channels; c0 += kRegisterBlocks * kLanes) {
    sum_of_products_in_registers<kRegisterBlocks>(out, c0, count, term);
  }
  for (; c0 + kLanes <= channels; c0 += kLanes) sum_of_products_in_registers<1>(out, c0, count, term);
  for (int64_t c = c0; c < channels; ++c) {
    T sum = 0;
    for (int64_t i = 0; i < count; ++i) {
      const auto [u_i, v_i] = term(i);
      sum = sum + u_i[c] * v_i[c];
    }
    out[c] = sum;
  }
}

// One sequence: out[t, c] = sum_j w[c, j] a[t - before + j, c], summed in the order of j;
// w_by_tap is w transposed to [K, n] so the channel loop reads it contiguously.
template <typename T>
ASIARCH_VECTOR_CLONES void conv_forward_sequence(const T* __restrict a, const T* __restrict w_by_tap, T* __restrict out, int64_t length,
                                                 int64_t channels, int64_t taps, int64_t before) {
  for (int64_t t = 0; t < length; ++t) {
    const int64_t first_tap = std::max<int64_t>(0, before - t), end_tap = std::min(taps, length + before - t);
    sum_of_products(out + t * channels, channels, std::max<int64_t>(0, end_tap - first_tap), [&](int64_t i) {
      const int64_t j = first_tap + i;
      return std::pair{w_by_tap + j * channels, a + (t - before + j) * channels};
    });
  }
}

// One sequence: grad_a[s, c] = sum_j w[c, j] g[s + before - j, c], and sums[j, c] = sum over t
// of g[t, c] a[t - before + j, c] (this sequence's share of the taps' gradient), each summed in
// the order of t.
template <typename T>
ASIARCH_VECTOR_CLONES void conv_backward_sequence(const T* __restrict a, const T* __restrict w_by_tap, const T* __restrict grad,
                                                  T* __restrict grad_a, T* __restrict sums, int64_t length, int64_t channels,
                                                  int64_t taps, int64_t before) {
  for (int64_t s = 0; s < length; ++s) {
    // The taps that read s, in the order of their t = s + before - j.
    const int64_t last_tap = std::min(taps - 1, s + before), first_tap = std::max<int64_t>(0, s + before - (length - 1));
    sum_of_products(grad_a + s * channels, channels, std::max<int64_t>(0, last_tap - first_tap + 1), [&](int64_t i) {
      const int64_t j = last_tap - i;
      return std::pair{w_by_tap + j * channels, grad + (s + before - j) * channels};
    });
  }
  // Up to kRegisterTaps taps, the sums of every tap over kRegisterBlocks channel blocks stay in
  // registers through one pass over the tokens (16 chains that do not wait on each other); the
  // channels left over, and more taps, take one tap at a time.
  constexpr int64_t kRegisterTaps = 4;
  int64_t c0 = 0;
  if (taps <= kRegisterTaps) {
    for (; c0 + kRegisterBlocks * kLanes <= channels; c0 += kRegisterBlocks * kLanes) {
      Lanes<T> tap_sums[kRegisterTaps][kRegisterBlocks] = {}, g[kRegisterBlocks], x;
      for (int64_t t = 0; t < length; ++t) {
        for (int64_t b = 0; b < kRegisterBlocks; ++b) load_lanes(grad + t * channels + c0 + b * kLanes, g[b]);
        for (int64_t j = 0; j < kRegisterTaps; ++j) {
          const int64_t source = t - before + j;
          if (j >= taps || source < 0 || source >= length) continue;
          for (int64_t b = 0; b < kRegisterBlocks; ++b) {
            load_lanes(a + source * channels + c0 + b * kLanes, x);
            tap_sums[j][b] = tap_sums[j][b] + g[b] * x;
          }
        }
      }
      for (int64_t j = 0; j < taps; ++j) {
        for (int64_t b = 0; b < kRegisterBlocks; ++b) store_lanes(tap_sums[j][b], sums + j * channels + c0 + b * kLanes);
      }
    }
  }
  for (int64_t j = 0; j < taps; ++j) {
    // The tokens whose tap j reads inside the sequence.
    const int64_t first_t = std::max<int64_t>(0, before - j), end_t = std::min(length, length + before - j);
    sum_of_products(sums + j * channels + c0, channels - c0, std::max<int64_t>(0, end_t - first_t), [&](int64_t i) {
      const int64_t t = first_t + i;
      return std::pair{grad + t * channels + c0, a + (t - before + j) * channels + c0};
    });
  }
}

// With a sigmoid buffer (not null), each sequence's convolution goes through SiLU while it is still
// in cache: out = c s, s = sigmoid(c), the sigmoid kept for the backward as SiLU keeps it. Against
// a convolution and then SiLU, that is one write and one read of the activation fewer each way.
template <typename T>
void conv_forward(const T* a, const T* w_by_tap, T* out, T* sigmoid, const ConvShape& s) {
  at::parallel_for(0, s.batch, 1, [&](int64_t first, int64_t last) {
    std::vector<T> convolved(sigmoid != nullptr ? s.length * s.channels : 0);
    for (int64_t b = first; b < last; ++b) {
      const int64_t offset = b * s.length * s.channels;
      if (sigmoid == nullptr) {
        conv_forward_sequence(a + offset, w_by_tap, out + offset, s.length, s.channels, s.taps, s.before);
        continue;
      }
      conv_forward_sequence(a + offset, w_by_tap, convolved.data(), s.length, s.channels, s.taps, s.before);
      silu_forward(convolved.data(), out + offset, sigmoid + offset, s.length * s.channels);
    }
  });
}

// The taps' gradient is summed per sequence into partial [B, K, n], then over sequences. With the
// forward's SiLU output and sigmoid (not null), a sequence's gradient passes SiLU's backward first.
template <typename T>
void conv_backward(const T* a, const T* w_by_tap, const T* silu_out, const T* sigmoid, const T* grad, T* grad_a, T* partial,
                   const ConvShape& s) {
  at::parallel_for(0, s.batch, 1, [&](int64_t first, int64_t last) {
    std::vector<T> convolved_grad(sigmoid != nullptr ? s.length * s.channels : 0);
    for (int64_t b = first; b < last; ++b) {
      const int64_t offset = b * s.length * s.channels;
      const T* g = grad + offset;
      if (sigmoid != nullptr) {
        silu_backward(silu_out + offset, sigmoid + offset, g, convolved_grad.data(), s.length * s.channels);
        g = convolved_grad.data();
      }
      conv_backward_sequence(a + offset, w_by_tap, g, grad_a + offset, partial + b * s.taps * s.channels, s.length, s.channels, s.taps,
                             s.before);
    }
  });
}

class DepthwiseConvFunction : public torch::autograd::Function<DepthwiseConvFunction> {
 public:
  // With `silu`, the output is silu(convolution).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& taps, int64_t before, bool silu) {
    const auto input = a.contiguous();
    const auto by_tap = taps.t().contiguous();
    auto out = torch::empty_like(input);
    auto sigmoid = silu ? torch::empty_like(input) : torch::Tensor();
    const ConvShape s = conv_shape(input, taps, before);
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "depthwise_conv", [&] {
      conv_forward(input.data_ptr<scalar_t>(), by_tap.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                   silu ? sigmoid.data_ptr<scalar_t>() : nullptr, s);
    });
    ctx->save_for_backward(silu ? tensor_list{input, by_tap, out, sigmoid} : tensor_list{input, by_tap});
    ctx->saved_data["before"] = before;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& input = saved[0];
    const auto& by_tap = saved[1];
    const bool silu = saved.size() == 4;
    const auto grad = grads[0].contiguous();
    const ConvShape s{input.size(0), input.size(1), input.size(2), by_tap.size(0), ctx->saved_data["before"].toInt()};
    auto grad_a = torch::empty_like(input);
    auto partial = torch::empty({s.batch, s.taps, s.channels}, input.options());
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "depthwise_conv_backward", [&] {
      conv_backward(input.data_ptr<scalar_t>(), by_tap.data_ptr<scalar_t>(), silu ? saved[2].data_ptr<scalar_t>() : nullptr,
                    silu ? saved[3].data_ptr<scalar_t>() : nullptr, grad.data_ptr<scalar_t>(), grad_a.data_ptr<scalar_t>(),
                    partial.data_ptr<scalar_t>(), s);
    });
    return {grad_a, sum_in_order(partial).t().contiguous(), torch::Tensor(), torch::Tensor()};
  }
};

// ---- RMSNorm ----

// RMSNorm reads its rows where they lie, in memory order, when the input is dense with a
// contiguous last dimension: the heads of split_heads are such a [B, H, T, d] view of a [B, T, D]
// activation, and a contiguous copy (and a copy of the gradient back) cost more than the norm.
// Each row's output and input gradient are the same bits in any layout; the gain's gradient adds
// the rows in memory order, so for permuted rows it can differ in the last bits from that of a
// contiguous copy. Any other layout is copied.
torch::Tensor dense_rows(const torch::Tensor& a) {
  return a.stride(-1) == 1 && a.is_non_overlapping_and_dense() ? a : a.contiguous();
}

// grad with the strides of like (a copy only when they differ), so that its rows lie as like's.
torch::Tensor in_layout_of(const torch::Tensor& grad, const torch::Tensor& like) {
  if (grad.strides() == like.strides()) return grad;
  auto out = torch::empty_like(like);
  out.copy_(grad);
  return out;
}

// Rows are taken kRowGroup at a time, each step for the whole group before the next: a row's
// dot product, square root and division form a chain of long latencies, which one row at a time
// left the core waiting on (narrow rows, as L2 normalisation's 16 per head, are mostly that
// chain), while a group's chains overlap and their roots and divisions vectorise across rows.
// Every row is computed as before, bit for bit.
constexpr int64_t kRowGroup = 16;

// Rows first .. last - 1: y = a r gain with r = 1 / sqrt(mean(a^2) + epsilon) per row, r kept
// for the backward; with `copy` (else null), a copied there too.
template <typename T>
ASIARCH_VECTOR_CLONES void rms_forward_rows(const T* __restrict a, const T* __restrict gain, T* __restrict out, T* __restrict inverse_rms,
                                            T* __restrict copy, int64_t first, int64_t last, int64_t width, double epsilon) {
  double squares[kRowGroup];
  for (int64_t r0 = first; r0 < last; r0 += kRowGroup) {
    const int64_t rows = std::min(kRowGroup, last - r0);
    for (int64_t i = 0; i < rows; ++i) squares[i] = ordered_dot(a + (r0 + i) * width, a + (r0 + i) * width, width);
    for (int64_t i = 0; i < rows; ++i) {
      inverse_rms[r0 + i] = static_cast<T>(1.0 / std::sqrt(squares[i] / static_cast<double>(width) + epsilon));
    }
    for (int64_t r = r0; r < r0 + rows; ++r) {
      const T* __restrict x = a + r * width;
      const T scale = inverse_rms[r];
      T* __restrict y = out + r * width;
      if (copy == nullptr) {
        for (int64_t c = 0; c < width; ++c) y[c] = x[c] * scale * gain[c];
      } else {
        // In the same loop: std::copy would be a call to memmove per row.
        T* __restrict x_copy = copy + r * width;
        for (int64_t c = 0; c < width; ++c) {
          y[c] = x[c] * scale * gain[c];
          x_copy[c] = x[c];
        }
      }
    }
  }
}

// Rows first .. last - 1, with u = gain * dy: da = r u - a r^3 (u . a) / width (plus the copy's
// gradient, when `copy_grad` is not null), and sums[c] = sum over these rows of dy a r (their
// share of the gain's gradient).
template <typename T>
ASIARCH_VECTOR_CLONES void rms_backward_rows(const T* __restrict a, const T* __restrict gain, const T* __restrict inverse_rms,
                                             const T* __restrict grad, const T* __restrict copy_grad, T* __restrict grad_a,
                                             T* __restrict sums, int64_t first, int64_t last, int64_t width) {
  for (int64_t c = 0; c < width; ++c) sums[c] = 0;
  double dots[kRowGroup];
  T corrections[kRowGroup];
  for (int64_t r0 = first; r0 < last; r0 += kRowGroup) {
    const int64_t rows = std::min(kRowGroup, last - r0);
    for (int64_t i = 0; i < rows; ++i) {
      const T* __restrict x = a + (r0 + i) * width;
      const T* __restrict g = grad + (r0 + i) * width;
      dots[i] = ordered_sum(width, [&](int64_t c) { return static_cast<double>(gain[c] * g[c]) * static_cast<double>(x[c]); });
    }
    for (int64_t i = 0; i < rows; ++i) {
      const double scale = static_cast<double>(inverse_rms[r0 + i]);
      corrections[i] = static_cast<T>(dots[i] * (scale * scale * scale) / static_cast<double>(width));
    }
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t r = r0 + i;
      const T* __restrict x = a + r * width;
      const T* __restrict g = grad + r * width;
      const T scale = inverse_rms[r];
      const T correction = corrections[i];
      T* __restrict gx = grad_a + r * width;
      for (int64_t c = 0; c < width; ++c) {
        gx[c] = scale * (gain[c] * g[c]) - x[c] * correction;
        sums[c] += g[c] * x[c] * scale;
      }
      if (copy_grad != nullptr) {
        const T* __restrict h = copy_grad + r * width;
        for (int64_t c = 0; c < width; ++c) gx[c] = gx[c] + h[c];
      }
    }
  }
}

template <typename T>
void rms_forward(const T* a, const T* gain, T* out, T* inverse_rms, T* copy, int64_t rows, int64_t width, double epsilon) {
  at::parallel_for(0, rows, kRowsPerBlock, [&](int64_t first, int64_t last) {
    rms_forward_rows(a, gain, out, inverse_rms, copy, first, last, width, epsilon);
  });
}

// The gain's gradient is summed per block of kRowsPerBlock rows into partial [blocks, width].
template <typename T>
void rms_backward(const T* a, const T* gain, const T* inverse_rms, const T* grad, const T* copy_grad, T* grad_a, T* partial, int64_t rows,
                  int64_t width) {
  at::parallel_for(0, row_blocks(rows), 1, [&](int64_t first, int64_t last) {
    for (int64_t block = first; block < last; ++block) {
      rms_backward_rows(a, gain, inverse_rms, grad, copy_grad, grad_a, partial + block * width, block * kRowsPerBlock,
                        std::min(rows, (block + 1) * kRowsPerBlock), width);
    }
  });
}

// The norm, and with `copy` a copy of the input as a second output (pre_norm): the copy is
// written in the norm's pass, and its gradient is added to the input's in the backward's pass.
// a + b is b + a in floating point, so that sum has the bits of autograd's.
class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& gain, double epsilon, bool copy) {
    const auto input = dense_rows(a);
    const auto g = gain.contiguous();
    const int64_t width = input.size(-1), rows = input.numel() / std::max<int64_t>(width, 1);
    auto out = torch::empty_like(input);
    auto copied = copy ? torch::empty_like(input) : torch::Tensor();
    auto inverse_rms = torch::empty({rows}, input.options());
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rms_norm", [&] {
      rms_forward(input.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), inverse_rms.data_ptr<scalar_t>(),
                  copy ? copied.data_ptr<scalar_t>() : nullptr, rows, width, epsilon);
    });
    ctx->save_for_backward({input, g, inverse_rms});
    ctx->set_materialize_grads(false);
    return copy ? tensor_list{out, copied} : tensor_list{out};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& input = saved[0];
    const auto& gain = saved[1];
    const auto& inverse_rms = saved[2];
    const int64_t width = input.size(-1), rows = inverse_rms.numel();
    const auto grad = grads[0].defined() ? in_layout_of(grads[0], input) : torch::zeros_like(input);
    const auto copy_grad = grads.size() > 1 && grads[1].defined() ? in_layout_of(grads[1], input) : torch::Tensor();
    auto grad_a = torch::empty_like(input);
    auto partial = torch::empty({row_blocks(rows), width}, input.options());
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rms_norm_backward", [&] {
      rms_backward(input.data_ptr<scalar_t>(), gain.data_ptr<scalar_t>(), inverse_rms.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                   copy_grad.defined() ? copy_grad.data_ptr<scalar_t>() : nullptr, grad_a.data_ptr<scalar_t>(),
                   partial.data_ptr<scalar_t>(), rows, width);
    });
    return {grad_a, sum_in_order(partial), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

namespace reference {

torch::Tensor depthwise_conv(const torch::Tensor& a, const torch::Tensor& taps, int64_t before, int64_t after) {
  const int64_t length = a.size(1);
  const auto padded = torch::constant_pad_nd(a, {0, 0, before, after});
  torch::Tensor out = padded.narrow(1, 0, length) * taps.select(1, 0);
  for (int64_t j = 1; j < taps.size(1); ++j) out = torch::addcmul(out, padded.narrow(1, j, length), taps.select(1, j));
  return out;
}

torch::Tensor rms_norm(const torch::Tensor& a, const torch::Tensor& gain, double epsilon) {
  return a * torch::rsqrt(a.square().mean(-1, /*keepdim=*/true) + epsilon) * gain;
}

torch::Tensor l2_norm(const torch::Tensor& a, double epsilon) { return a * torch::rsqrt(a.square().sum(-1, /*keepdim=*/true) + epsilon); }

}  // namespace reference

namespace {

torch::Tensor checked_conv(const torch::Tensor& a, const torch::Tensor& taps, int64_t before, int64_t after, bool silu) {
  TORCH_CHECK(a.dim() == 3 && taps.dim() == 2 && taps.size(0) == a.size(2) && before >= 0 && after >= 0 &&
                  taps.size(1) == before + after + 1,
              "depthwise_conv: a must be [B, T, n] and taps [n, before + after + 1], got ", a.sizes(), " and ", taps.sizes());
  if (!fused_kernels_take(a, taps)) {
    const auto out = reference::depthwise_conv(a, taps, before, after);
    return silu ? reference::silu(out) : out;
  }
  return DepthwiseConvFunction::apply(a, taps, before, silu);
}

}  // namespace

torch::Tensor depthwise_conv(const torch::Tensor& a, const torch::Tensor& taps, int64_t before, int64_t after) {
  return checked_conv(a, taps, before, after, false);
}

torch::Tensor depthwise_conv_silu(const torch::Tensor& a, const torch::Tensor& taps, int64_t before, int64_t after) {
  return checked_conv(a, taps, before, after, true);
}

torch::Tensor rms_norm(const torch::Tensor& a, const torch::Tensor& gain, double epsilon) {
  TORCH_CHECK(a.dim() >= 1 && gain.dim() == 1 && gain.size(0) == a.size(-1), "rms_norm: gain must be [", a.size(-1), "], got ",
              gain.sizes());
  if (reduced_precision(a)) return rms_norm(a.to(torch::kFloat), gain.to(torch::kFloat), epsilon).to(a.scalar_type());
  if (!fused_kernels_take(a, gain) || a.numel() == 0) return reference::rms_norm(a, gain, epsilon);
  return RmsNormFunction::apply(a, gain, epsilon, false)[0];
}

PreNorm pre_norm(const torch::Tensor& h, const torch::Tensor& gain, double epsilon) {
  TORCH_CHECK(h.dim() >= 1 && gain.dim() == 1 && gain.size(0) == h.size(-1), "pre_norm: gain must be [", h.size(-1), "], got ",
              gain.sizes());
  if (!fused_kernels_take(h, gain) || h.numel() == 0 || !h.is_contiguous()) return {rms_norm(h, gain, epsilon), h.clone()};
  const auto outputs = RmsNormFunction::apply(h, gain, epsilon, true);
  return {outputs[0], outputs[1]};
}

torch::Tensor l2_norm(const torch::Tensor& a, double epsilon) {
  TORCH_CHECK(a.dim() >= 1, "l2_norm: a must have a last dimension");
  if (reduced_precision(a)) return l2_norm(a.to(torch::kFloat), epsilon).to(a.scalar_type());
  if (!fused_kernels_take(a, a) || a.numel() == 0) return reference::l2_norm(a, epsilon);
  const int64_t width = a.size(-1);
  const auto gain = torch::full({width}, 1.0 / std::sqrt(static_cast<double>(width)), a.options());
  return RmsNormFunction::apply(a, gain, epsilon / static_cast<double>(width), false)[0];
}

}  // namespace asiarch::kernels
