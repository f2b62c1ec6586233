#include "kernels/recurrences.h"

#include <cmath>

// Placeholder dispatch while the fused CPU kernels are written: every op runs its reference.
namespace asiarch::kernels {

torch::Tensor linear_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return reference::linear_attn(q, k, v);
}
torch::Tensor decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g) {
  return reference::decay_attn(q, k, v, g);
}
torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta) {
  return reference::delta_rule(q, k, v, beta);
}
torch::Tensor gated_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& beta, const torch::Tensor& g) {
  return reference::gated_delta_rule(q, k, v, beta, g);
}
torch::Tensor swa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window) {
  return reference::swa(q, k, v, window);
}
torch::Tensor softmax_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t T = q.size(2);
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(3)));
  auto future = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(1);
  return torch::matmul(torch::softmax(scores.masked_fill(future, -INFINITY), -1), v);
}

}  // namespace asiarch::kernels
