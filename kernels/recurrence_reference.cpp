#include "kernels/recurrences.h"

#include <cmath>
#include <vector>

// Token-by-token recurrences with the state as a [B, H, dk, dv] tensor. Slow on purpose: every
// line is one formula of LANGUAGE.md, so that the fast kernels have something plain to match.
namespace asiarch::kernels::reference {
namespace {

torch::Tensor state_for(const torch::Tensor& k, const torch::Tensor& v) {
  return torch::zeros({k.size(0), k.size(1), k.size(3), v.size(3)}, k.options());
}

// k_t v_t^T for one step: [B,H,dk,1] x [B,H,1,dv].
torch::Tensor outer_product(const torch::Tensor& k_t, const torch::Tensor& v_t) {
  return k_t.unsqueeze(-1) * v_t.unsqueeze(-2);
}

// o_t = S_t^T q_t: [B,H,dv].
torch::Tensor read(const torch::Tensor& state, const torch::Tensor& q_t) {
  return (state * q_t.unsqueeze(-1)).sum(-2);
}

}  // namespace

torch::Tensor linear_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  auto state = state_for(k, v);
  std::vector<torch::Tensor> outputs;
  for (int64_t t = 0; t < q.size(2); ++t) {
    state = state + outer_product(k.select(2, t), v.select(2, t));
    outputs.push_back(read(state, q.select(2, t)));
  }
  return torch::stack(outputs, 2);
}

torch::Tensor decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g) {
  const bool vector_decay = g.dim() == 4;
  auto state = state_for(k, v);
  std::vector<torch::Tensor> outputs;
  for (int64_t t = 0; t < q.size(2); ++t) {
    auto decay = g.select(2, t).exp();
    decay = vector_decay ? decay.unsqueeze(-1) : decay.unsqueeze(-1).unsqueeze(-1);
    state = decay * state + outer_product(k.select(2, t), v.select(2, t));
    outputs.push_back(read(state, q.select(2, t)));
  }
  return torch::stack(outputs, 2);
}

torch::Tensor gated_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& beta, const torch::Tensor& g) {
  auto state = state_for(k, v);
  std::vector<torch::Tensor> outputs;
  for (int64_t t = 0; t < q.size(2); ++t) {
    auto k_t = k.select(2, t);
    auto decayed = state * g.select(2, t).exp().unsqueeze(-1).unsqueeze(-1);
    auto predicted = (decayed * k_t.unsqueeze(-1)).sum(-2);  // k_t^T S: [B,H,dv]
    auto error = predicted - v.select(2, t);
    state = decayed - beta.select(2, t).unsqueeze(-1).unsqueeze(-1) * outer_product(k_t, error);
    outputs.push_back(read(state, q.select(2, t)));
  }
  return torch::stack(outputs, 2);
}

torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta) {
  return gated_delta_rule(q, k, v, beta, torch::zeros_like(beta));
}

torch::Tensor swa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  std::vector<torch::Tensor> outputs;
  for (int64_t t = 0; t < q.size(2); ++t) {
    const int64_t first = std::max<int64_t>(0, t - window + 1);
    auto keys = k.slice(2, first, t + 1);                                   // [B,H,w,dk]
    auto scores = (keys * q.select(2, t).unsqueeze(2)).sum(-1) * scale;    // [B,H,w]
    auto weights = torch::softmax(scores, -1);
    outputs.push_back((weights.unsqueeze(-1) * v.slice(2, first, t + 1)).sum(2));
  }
  return torch::stack(outputs, 2);
}

}  // namespace asiarch::kernels::reference
