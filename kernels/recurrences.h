#pragma once
// The recurrence kernels of the architecture language (LANGUAGE.md, "Recurrences"), as libtorch
// functions with autograd. Internal to kernels/ (and its tests and benchmarks): it includes
// torch. Shapes: q, k [B, H, T, dk]; v [B, H, T, dv]; scalar gates [B, H, T]; vector decay
// [B, H, T, dk]. Every function returns [B, H, T, dv] in the dtype and on the device of q.
#include <torch/torch.h>

namespace asiarch::kernels {

// S_t = S_{t-1} + k_t v_t^T;  o_t = S_t^T q_t
torch::Tensor linear_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
// S_t = diag(exp g_t) S_{t-1} + k_t v_t^T with g <= 0 in log space: [B,H,T] (scalar decay:
// RetNet, Mamba2) or [B,H,T,dk] (vector decay: GLA).
torch::Tensor decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g);
// S_t = S_{t-1} - beta_t k_t (k_t^T S_{t-1} - v_t^T), beta [B,H,T] in (0, 1).
torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta);
// S_t = exp(g_t) S_{t-1} - beta_t k_t (exp(g_t) k_t^T S_{t-1} - v_t^T), beta, g [B,H,T].
torch::Tensor gated_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& beta, const torch::Tensor& g);
// Causal softmax attention over the last `window` tokens (the token itself included), scores
// q.k / sqrt(dk).
torch::Tensor swa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window);
// Causal full softmax attention, scores q.k / sqrt(dk): quadratic, the reference baseline only.
torch::Tensor softmax_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// Chunkwise forms from libtorch ops (kernels/recurrence_chunkwise.cpp): a loop over chunks of
// `chunk` tokens with batched matrix products inside each, autograd by libtorch. The functions
// above run them wherever the fused CPU kernels do not (CUDA, half precision: computed in
// float32, returned in q's dtype).
namespace chunkwise {
inline constexpr int64_t kChunk = 32;
torch::Tensor linear_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t chunk = kChunk);
torch::Tensor decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g, int64_t chunk = kChunk);
torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta, int64_t chunk = kChunk);
torch::Tensor gated_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta,
                               const torch::Tensor& g, int64_t chunk = kChunk);
torch::Tensor swa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window, int64_t chunk = kChunk);
}  // namespace chunkwise

// Straightforward token-by-token recurrences from libtorch ops, the ground truth the fast kernels
// are tested against (in float64) and measured against (`asiarch bench kernels`).
namespace reference {
torch::Tensor linear_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
torch::Tensor decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g);
torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta);
torch::Tensor gated_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& beta, const torch::Tensor& g);
torch::Tensor swa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window);
}  // namespace reference

}  // namespace asiarch::kernels
