// The fused cross-entropy (kernels/layers.h). libtorch's cross_entropy runs a log-softmax and a
// gather, forward and backward: four passes over the logits, two of them with an exp per element.
// Here the forward writes the softmax once and keeps it in place of the logits, and the backward
// subtracts the targets' ones from it.
//
// Rows run in parallel and each row's sums have a fixed order; the mean adds the rows' losses
// in row order. No result depends on the thread count.
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "kernels/layers.h"
#include "kernels/ordered_dot.h"
#include "kernels/recurrence_cpu.h"
#include "kernels/vector_clones.h"
#include "kernels/vector_exp.h"

namespace asiarch::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Lanes of the running maximum of one row, combined in a fixed order at the end. `#pragma GCC
// unroll 1` on the loop over lanes keeps gcc from unrolling it into scalars before its vectoriser
// sees it.
constexpr int64_t kLanes = 16;

// One row: softmax[j] = exp(x[j] - max) / sum_j exp(x[j] - max); returns max + log(sum), the
// log-sum-exp.
template <typename T>
ASIARCH_VECTOR_CLONES double softmax_row(const T* __restrict x, T* __restrict softmax, int64_t width, ExpRange range) {
  T lane_max[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) lane_max[l] = x[0];
  int64_t j = 0;
  for (; j + kLanes <= width; j += kLanes) {
#pragma GCC unroll 1
    for (int64_t l = 0; l < kLanes; ++l) {
      const T value = x[j + l];
      lane_max[l] = lane_max[l] > value ? lane_max[l] : value;
    }
  }
  for (; j < width; ++j) lane_max[0] = lane_max[0] > x[j] ? lane_max[0] : x[j];
  T largest = lane_max[0];
  for (int64_t l = 1; l < kLanes; ++l) largest = largest > lane_max[l] ? largest : lane_max[l];
  for (j = 0; j < width; ++j) softmax[j] = vector_exp(x[j] - largest, range);
  const double sum = ordered_sum(width, [&](int64_t i) { return static_cast<double>(softmax[i]); });
  const T total = static_cast<T>(sum);
  for (j = 0; j < width; ++j) softmax[j] = softmax[j] / total;
  return static_cast<double>(largest) + std::log(sum);
}

class CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index) {
    const auto x = logits.contiguous();
    const auto target = targets.to(torch::kLong).contiguous();
    const int64_t rows = x.size(0), width = x.size(1);
    const int64_t* t = target.data_ptr<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
      TORCH_CHECK(t[r] == ignore_index || (t[r] >= 0 && t[r] < width), "cross_entropy: target ", t[r], " is outside [0, ", width, ")");
    }
    auto softmax = torch::empty_like(x);
    std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cross_entropy", [&] {
      const scalar_t* in = x.data_ptr<scalar_t>();
      scalar_t* out = softmax.data_ptr<scalar_t>();
      at::parallel_for(0, rows, 16, [&](int64_t first, int64_t last) {
        for (int64_t r = first; r < last; ++r) {
          const double logsumexp = softmax_row(in + r * width, out + r * width, width, ExpRange{});
          if (t[r] != ignore_index) row_loss[static_cast<size_t>(r)] = logsumexp - static_cast<double>(in[r * width + t[r]]);
        }
      });
    });
    double total = 0;
    int64_t counted = 0;
    for (int64_t r = 0; r < rows; ++r) {
      total += row_loss[static_cast<size_t>(r)];
      counted += t[r] != ignore_index;
    }
    ctx->save_for_backward({softmax, target});
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["counted"] = counted;
    // No counted row: 0 / 0, NaN, as libtorch's mean gives.
    return torch::tensor(total / static_cast<double>(counted), x.options());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& softmax = saved[0];
    const auto& target = saved[1];
    const int64_t ignore_index = ctx->saved_data["ignore_index"].toInt();
    const double scale = grads[0].item<double>() / static_cast<double>(ctx->saved_data["counted"].toInt());
    const int64_t rows = softmax.size(0), width = softmax.size(1);
    auto grad = torch::empty_like(softmax);
    const int64_t* t = target.data_ptr<int64_t>();
    AT_DISPATCH_FLOATING_TYPES(softmax.scalar_type(), "cross_entropy_backward", [&] {
      const scalar_t* p = softmax.data_ptr<scalar_t>();
      scalar_t* g = grad.data_ptr<scalar_t>();
      const auto s = static_cast<scalar_t>(scale);
      at::parallel_for(0, rows, 16, [&](int64_t first, int64_t last) {
        for (int64_t r = first; r < last; ++r) {
          scalar_t* row = g + r * width;
          if (t[r] == ignore_index) {
            std::fill(row, row + width, scalar_t(0));
            continue;
          }
          for (int64_t j = 0; j < width; ++j) row[j] = s * p[r * width + j];
          row[t[r]] = s * (p[r * width + t[r]] - scalar_t(1));
        }
      });
    });
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

namespace reference {

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index) {
  return torch::nn::functional::cross_entropy(logits, targets, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index));
}

}  // namespace reference

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index) {
  TORCH_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0) && logits.size(1) > 0,
              "cross_entropy: logits must be [N, V] and targets [N], got ", logits.sizes(), " and ", targets.sizes());
  if (!cpu::supports(logits) || !targets.device().is_cpu() || logits.size(0) == 0) {
    return reference::cross_entropy(logits, targets, ignore_index);
  }
  return CrossEntropyFunction::apply(logits, targets, ignore_index);
}

}  // namespace asiarch::kernels
