#pragma once
// The fused CPU kernels behind kernels/recurrences.h: forward and backward passes of the
// recurrences on CPU tensors of float32 or float64 (any strides), parallel over (batch, head).
// Internal to kernels/; recurrences.cpp wires them into autograd. Shapes as in recurrences.h;
// every gradient has the shape of its input.
#include <torch/torch.h>

namespace asiarch::kernels::cpu {

// Whether the fused kernels take inputs like this one: on the CPU, float32 or float64.
bool supports(const torch::Tensor& q);
// The instruction set the hot loops were dispatched to on this machine: "avx512f", "avx2" or
// "baseline".
const char* instruction_set();

// Linear attention (g undefined) and decayed linear attention (g [B,H,T] or [B,H,T,dk]).
torch::Tensor decay_attn_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g);
struct DecayAttnGrads {
  torch::Tensor q, k, v, g;  // g undefined when there is no decay
};
DecayAttnGrads decay_attn_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g,
                                   const torch::Tensor& grad_out);

// Delta rule (g undefined) and gated delta rule (g [B,H,T]). The forward keeps the state every
// checkpoint interval when asked to; the backward starts from those checkpoints.
struct DeltaRuleForward {
  torch::Tensor out;
  torch::Tensor checkpoints;  // undefined unless asked for
};
DeltaRuleForward delta_rule_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta,
                                    const torch::Tensor& g, bool keep_checkpoints);
struct DeltaRuleGrads {
  torch::Tensor q, k, v, beta, g;  // g undefined for the ungated rule
};
DeltaRuleGrads delta_rule_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta,
                                   const torch::Tensor& g, const torch::Tensor& checkpoints, const torch::Tensor& grad_out);

// Sliding-window softmax attention. The forward also returns each token's log-sum-exp of scores
// [B,H,T], from which the backward recomputes the attention weights.
struct SwaForward {
  torch::Tensor out, logsumexp;
};
SwaForward swa_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window);
struct SwaGrads {
  torch::Tensor q, k, v;
};
SwaGrads swa_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window,
                      const torch::Tensor& logsumexp, const torch::Tensor& grad_out);

}  // namespace asiarch::kernels::cpu
