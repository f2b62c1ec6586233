// The token embedding (kernels/layers.h), forward and backward. libtorch's backward adds the
// rows' gradients with index_add_, an iterator per token: about 50 us of the explore model's
// step (1,024 tokens of 64 values) for work a loop does in a few. The loop adds them in token
// order, as index_add_ does, so the gradient has its bits.
#include "kernels/layers.h"
#include "kernels/recurrence_cpu.h"

namespace asiarch::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class EmbeddingFunction : public torch::autograd::Function<EmbeddingFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& weight, const torch::Tensor& tokens) {
    const auto rows = weight.contiguous();
    const auto ids = tokens.contiguous();
    const int64_t vocab = rows.size(0), width = rows.size(1), count = ids.numel();
    auto sizes = ids.sizes().vec();
    sizes.push_back(width);
    auto out = torch::empty(sizes, rows.options());
    const int64_t* id = ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
      TORCH_CHECK(id[i] >= 0 && id[i] < vocab, "embedding: token ", id[i], " is outside the vocabulary of ", vocab);
    }
    AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "embedding", [&] {
      const scalar_t* from = rows.data_ptr<scalar_t>();
      scalar_t* to = out.data_ptr<scalar_t>();
      for (int64_t i = 0; i < count; ++i) std::copy(from + id[i] * width, from + (id[i] + 1) * width, to + i * width);
    });
    ctx->save_for_backward({ids});
    ctx->saved_data["vocab"] = vocab;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto ids = ctx->get_saved_variables()[0];
    const auto grad = grads[0].contiguous();
    const int64_t width = grad.size(-1), count = ids.numel();
    auto grad_weight = torch::zeros({ctx->saved_data["vocab"].toInt(), width}, grad.options());
    const int64_t* id = ids.data_ptr<int64_t>();
    AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "embedding_backward", [&] {
      const scalar_t* from = grad.data_ptr<scalar_t>();
      scalar_t* to = grad_weight.data_ptr<scalar_t>();
      for (int64_t i = 0; i < count; ++i) {
        scalar_t* __restrict row = to + id[i] * width;
        const scalar_t* __restrict g = from + i * width;
        for (int64_t c = 0; c < width; ++c) row[c] = row[c] + g[c];
      }
    });
    return {grad_weight, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor embedding(const torch::Tensor& weight, const torch::Tensor& tokens) {
  TORCH_CHECK(weight.dim() == 2, "embedding: the weight must be [vocab, width], got ", weight.sizes());
  if (!cpu::supports(weight) || !tokens.device().is_cpu() || tokens.scalar_type() != torch::kLong) return torch::embedding(weight, tokens);
  return EmbeddingFunction::apply(weight, tokens);
}

}  // namespace asiarch::kernels
