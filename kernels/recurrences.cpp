#include "kernels/recurrences.h"

#include <cmath>

#include "kernels/recurrence_cpu.h"

// Dispatch: float32 and float64 tensors on the CPU run the fused kernels of recurrence_cpu.cpp,
// wired into autograd below; anything else (CUDA, half precision) runs the chunkwise forms of
// recurrence_chunkwise.cpp, whose autograd libtorch derives.
namespace asiarch::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Linear attention (q, k, v) and decayed linear attention (q, k, v, g).
class DecayAttnFunction : public torch::autograd::Function<DecayAttnFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return forward(ctx, q, k, v, torch::Tensor());
  }
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& g) {
    ctx->save_for_backward({q, k, v, g});
    return cpu::decay_attn_forward(q, k, v, g);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto d = cpu::decay_attn_backward(saved[0], saved[1], saved[2], saved[3], grads[0]);
    if (!saved[3].defined()) return {d.q, d.k, d.v};
    return {d.q, d.k, d.v, d.g};
  }
};

// The delta rule (q, k, v, beta) and the gated delta rule (q, k, v, beta, g).
class DeltaRuleFunction : public torch::autograd::Function<DeltaRuleFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& beta) {
    return forward(ctx, q, k, v, beta, torch::Tensor());
  }
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& beta, const torch::Tensor& g) {
    auto result = cpu::delta_rule_forward(q, k, v, beta, g, /*keep_checkpoints=*/true);
    ctx->save_for_backward({q, k, v, beta, g, result.checkpoints});
    return result.out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto d = cpu::delta_rule_backward(saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], grads[0]);
    if (!saved[4].defined()) return {d.q, d.k, d.v, d.beta};
    return {d.q, d.k, d.v, d.beta, d.g};
  }
};

class SwaFunction : public torch::autograd::Function<SwaFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               int64_t window) {
    auto result = cpu::swa_forward(q, k, v, window);
    ctx->save_for_backward({q, k, v, result.logsumexp});
    ctx->saved_data["window"] = window;
    return result.out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto d = cpu::swa_backward(saved[0], saved[1], saved[2], ctx->saved_data["window"].toInt(), saved[3], grads[0]);
    return {d.q, d.k, d.v, torch::Tensor()};
  }
};

void check_heads(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes(), "q and k must be [B, H, T, dk] alike, got ", q.sizes(), " and ", k.sizes());
  TORCH_CHECK(v.dim() == 4 && v.sizes().slice(0, 3) == q.sizes().slice(0, 3), "v must be [B, H, T, dv], got ", v.sizes());
  TORCH_CHECK(k.device() == q.device() && v.device() == q.device(), "q, k and v must be on one device");
}

// A per-token gate: [B, H, T], or [B, H, T, dk] where a vector is allowed.
void check_gate(const torch::Tensor& gate, const torch::Tensor& q, bool vector_allowed, const char* name) {
  const bool scalar = gate.dim() == 3 && gate.sizes() == q.sizes().slice(0, 3);
  const bool vector = vector_allowed && gate.sizes() == q.sizes();
  TORCH_CHECK(scalar || vector, name, " has shape ", gate.sizes(), " for q of shape ", q.sizes());
  TORCH_CHECK(gate.device() == q.device(), name, " must be on the device of q");
}

// The other inputs in q's dtype (a cast autograd sees through).
torch::Tensor like_q(const torch::Tensor& x, const torch::Tensor& q) {
  return x.defined() ? x.to(q.scalar_type()) : x;
}

// Whether autograd will want a backward: otherwise the forward keeps nothing for one.
bool grad_needed(std::initializer_list<torch::Tensor> inputs) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto& x : inputs)
    if (x.defined() && x.requires_grad()) return true;
  return false;
}

torch::Tensor fused_decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g) {
  const auto kq = like_q(k, q), vq = like_q(v, q), gq = like_q(g, q);
  if (!grad_needed({q, kq, vq, gq})) return cpu::decay_attn_forward(q, kq, vq, gq);
  return gq.defined() ? DecayAttnFunction::apply(q, kq, vq, gq) : DecayAttnFunction::apply(q, kq, vq);
}

torch::Tensor fused_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta,
                               const torch::Tensor& g) {
  const auto kq = like_q(k, q), vq = like_q(v, q), bq = like_q(beta, q), gq = like_q(g, q);
  if (!grad_needed({q, kq, vq, bq, gq})) return cpu::delta_rule_forward(q, kq, vq, bq, gq, /*keep_checkpoints=*/false).out;
  return gq.defined() ? DeltaRuleFunction::apply(q, kq, vq, bq, gq) : DeltaRuleFunction::apply(q, kq, vq, bq);
}

}  // namespace

torch::Tensor linear_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  check_heads(q, k, v);
  if (!cpu::supports(q)) return chunkwise::linear_attn(q, k, v);
  return fused_decay_attn(q, k, v, torch::Tensor());
}

torch::Tensor decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g) {
  check_heads(q, k, v);
  check_gate(g, q, /*vector_allowed=*/true, "g");
  if (!cpu::supports(q)) return chunkwise::decay_attn(q, k, v, g);
  return fused_decay_attn(q, k, v, g);
}

torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta) {
  check_heads(q, k, v);
  check_gate(beta, q, /*vector_allowed=*/false, "beta");
  if (!cpu::supports(q)) return chunkwise::delta_rule(q, k, v, beta);
  return fused_delta_rule(q, k, v, beta, torch::Tensor());
}

torch::Tensor gated_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& beta, const torch::Tensor& g) {
  check_heads(q, k, v);
  check_gate(beta, q, /*vector_allowed=*/false, "beta");
  check_gate(g, q, /*vector_allowed=*/false, "g");
  if (!cpu::supports(q)) return chunkwise::gated_delta_rule(q, k, v, beta, g);
  return fused_delta_rule(q, k, v, beta, g);
}

torch::Tensor swa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window) {
  check_heads(q, k, v);
  TORCH_CHECK(window >= 1, "swa: the window must be at least 1, got ", window);
  if (!cpu::supports(q)) return chunkwise::swa(q, k, v, window);
  const auto kq = like_q(k, q), vq = like_q(v, q);
  if (!grad_needed({q, kq, vq})) return cpu::swa_forward(q, kq, vq, window).out;
  return SwaFunction::apply(q, kq, vq, window);
}

torch::Tensor softmax_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t T = q.size(2);
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(3)));
  auto future = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(1);
  return torch::matmul(torch::softmax(scores.masked_fill(future, -INFINITY), -1), v);
}

}  // namespace asiarch::kernels
