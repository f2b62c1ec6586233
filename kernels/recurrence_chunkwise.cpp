#include <cmath>
#include <limits>

#include "kernels/recurrences.h"

// Chunkwise forms of the recurrences, from libtorch operations with the autograd libtorch
// derives: a loop over chunks of `chunk` tokens carries the state S [B,H,dk,dv], and inside a
// chunk everything is batched matrix products, so a length-T sequence costs T / chunk steps of
// a few large operations instead of T steps of many small ones. This is the form for devices
// the fused CPU loops do not serve (CUDA) and dtypes they do not take (half precision, which is
// computed in float32 here).
//
// Within a chunk, with G_t the cumulative log decay up to and including token t (0 without
// decay) and S_0 the state before the chunk:
// - decayed linear attention: o_t = e^{G_t} S_0^T q_t + sum_{i<=t} e^{G_t - G_i} (q_t.k_i) v_i
//   (per channel of the key for a vector decay), and
//   S_C = e^{G_C} S_0 + sum_i e^{G_C - G_i} k_i v_i^T;
// - the (gated) delta rule in its WY/UT form (Yang et al. 2024, arXiv:2406.06484, section 3;
//   the gated form of Yang, Kautz and Hatamizadeh 2024, arXiv:2412.06464): the update of token t
//   is u_t = beta_t (v_t - e^{G_t} S_0^T k_t - sum_{i<t} e^{G_t - G_i} (k_t.k_i) u_i), which is
//   the lower-triangular system (I + A) U = diag(beta) (V - diag(e^G) K S_0) with
//   A[t,i] = beta_t e^{G_t - G_i} (k_t.k_i) for i < t; then the outputs and the next state are
//   those of decayed linear attention with the values u_t.
// Every exponent taken is G_t - G_i with i <= t, never positive, so no factor overflows; the
// pairs i > t are set to -inf before the exponential.
namespace asiarch::kernels::chunkwise {
namespace {

// The dtype the arithmetic runs in: float64 stays, everything else is float32.
torch::ScalarType compute_type(const torch::Tensor& q) { return q.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat; }

// Tokens padded to a whole number of chunks: zero keys, queries, values, betas and log decays
// leave the state as it is, and the padded outputs are cut off.
torch::Tensor padded_time(const torch::Tensor& x, int64_t length, int64_t chunk, torch::ScalarType type) {
  const int64_t extra = (chunk - length % chunk) % chunk;
  const torch::Tensor cast = x.to(type);
  if (extra == 0) return cast;
  std::vector<int64_t> pad(2 * static_cast<size_t>(x.dim() - 2), 0);
  pad.back() = extra;  // the time dimension (2) is padded at its end
  return torch::constant_pad_nd(cast, pad);
}

// The pairs a causal chunk hides, for scores [.., t, i]: [C, C], true where i > t, or where
// i >= t when the diagonal is hidden too.
torch::Tensor hidden_pairs(int64_t chunk, bool diagonal_hidden, const torch::Device& device) {
  return torch::ones({chunk, chunk}, torch::TensorOptions().dtype(torch::kBool).device(device)).triu(diagonal_hidden ? 0 : 1);
}

// exp(G_t - G_i) for i <= t, 0 above: [.., C, C] from G [.., C].
torch::Tensor pairwise_decay(const torch::Tensor& cumulative, const torch::Tensor& future) {
  const auto difference = cumulative.unsqueeze(-1) - cumulative.unsqueeze(-2);
  return difference.masked_fill(future, -std::numeric_limits<double>::infinity()).exp();
}

// One chunk of decayed linear attention with values `values` [B,H,C,dv] from state S [B,H,dk,dv]:
// the chunk's outputs, and S becomes the state after it. g: cumulative log decay [B,H,C] or
// [B,H,C,dk], or undefined.
torch::Tensor attend_chunk(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& values, const torch::Tensor& cumulative,
                           const torch::Tensor& future, torch::Tensor& state) {
  torch::Tensor scores, from_state, next;
  if (!cumulative.defined()) {
    scores = torch::matmul(q, k.transpose(-1, -2)).masked_fill(future, 0.0);
    from_state = torch::matmul(q, state);
    next = state + torch::matmul(k.transpose(-1, -2), values);
  } else if (cumulative.dim() == 3) {
    scores = torch::matmul(q, k.transpose(-1, -2)) * pairwise_decay(cumulative, future);
    from_state = cumulative.exp().unsqueeze(-1) * torch::matmul(q, state);
    const auto last = cumulative.narrow(-1, cumulative.size(-1) - 1, 1);  // G_C [B,H,1]
    next = last.exp().unsqueeze(-1) * state + torch::matmul((k * (last - cumulative).exp().unsqueeze(-1)).transpose(-1, -2), values);
  } else {
    // Per key channel: scores[t,i] = sum_d q_t[d] k_i[d] e^{G_t[d] - G_i[d]}.
    const auto difference = cumulative.unsqueeze(-2) - cumulative.unsqueeze(-3);  // [B,H,t,i,dk]
    const auto decay = difference.masked_fill(future.unsqueeze(-1), -std::numeric_limits<double>::infinity()).exp();
    scores = (q.unsqueeze(-2) * k.unsqueeze(-3) * decay).sum(-1);
    from_state = torch::matmul(q * cumulative.exp(), state);
    const auto last = cumulative.narrow(-2, cumulative.size(-2) - 1, 1);  // G_C [B,H,1,dk]
    next = last.exp().transpose(-1, -2) * state + torch::matmul((k * (last - cumulative).exp()).transpose(-1, -2), values);
  }
  state = next;
  return from_state + torch::matmul(scores, values);
}

torch::Tensor decayed(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g, int64_t chunk) {
  const int64_t length = q.size(2);
  const auto type = compute_type(q);
  const auto qp = padded_time(q, length, chunk, type), kp = padded_time(k, length, chunk, type), vp = padded_time(v, length, chunk, type);
  const auto gp = g.defined() ? padded_time(g, length, chunk, type) : torch::Tensor();
  const auto future = hidden_pairs(chunk, false, q.device());
  torch::Tensor state = torch::zeros({q.size(0), q.size(1), q.size(3), v.size(3)}, qp.options());
  std::vector<torch::Tensor> outputs;
  for (int64_t start = 0; start < qp.size(2); start += chunk) {
    const auto cumulative = gp.defined() ? gp.narrow(2, start, chunk).cumsum(2) : torch::Tensor();
    outputs.push_back(attend_chunk(qp.narrow(2, start, chunk), kp.narrow(2, start, chunk), vp.narrow(2, start, chunk), cumulative, future, state));
  }
  return torch::cat(outputs, 2).narrow(2, 0, length).to(q.scalar_type());
}

torch::Tensor delta(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta, const torch::Tensor& g,
                    int64_t chunk) {
  const int64_t length = q.size(2);
  const auto type = compute_type(q);
  const auto qp = padded_time(q, length, chunk, type), kp = padded_time(k, length, chunk, type), vp = padded_time(v, length, chunk, type);
  const auto bp = padded_time(beta, length, chunk, type);
  const auto gp = g.defined() ? padded_time(g, length, chunk, type) : torch::Tensor();
  const auto future = hidden_pairs(chunk, false, q.device()), future_and_now = hidden_pairs(chunk, true, q.device());
  const auto identity = torch::eye(chunk, qp.options());
  torch::Tensor state = torch::zeros({q.size(0), q.size(1), q.size(3), v.size(3)}, qp.options());
  std::vector<torch::Tensor> outputs;
  for (int64_t start = 0; start < qp.size(2); start += chunk) {
    const auto q_c = qp.narrow(2, start, chunk), k_c = kp.narrow(2, start, chunk), v_c = vp.narrow(2, start, chunk);
    const auto b_c = bp.narrow(2, start, chunk).unsqueeze(-1);  // [B,H,C,1]
    const auto cumulative = gp.defined() ? gp.narrow(2, start, chunk).cumsum(2) : torch::Tensor();
    auto keys = torch::matmul(k_c, k_c.transpose(-1, -2));
    auto predicted = torch::matmul(k_c, state);  // k_t^T S_0
    if (cumulative.defined()) {
      keys = keys * pairwise_decay(cumulative, future);
      predicted = cumulative.exp().unsqueeze(-1) * predicted;
    }
    const auto system = identity + (b_c * keys).masked_fill(future_and_now, 0.0);
    const auto updates = at::linalg_solve_triangular(system, b_c * (v_c - predicted), /*upper=*/false, /*left=*/true, /*unitriangular=*/true);
    outputs.push_back(attend_chunk(q_c, k_c, updates, cumulative, future, state));
  }
  return torch::cat(outputs, 2).narrow(2, 0, length).to(q.scalar_type());
}

}  // namespace

torch::Tensor linear_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t chunk) {
  return decayed(q, k, v, torch::Tensor(), chunk);
}

torch::Tensor decay_attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g, int64_t chunk) {
  return decayed(q, k, v, g, chunk);
}

torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta, int64_t chunk) {
  return delta(q, k, v, beta, torch::Tensor(), chunk);
}

torch::Tensor gated_delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta,
                               const torch::Tensor& g, int64_t chunk) {
  return delta(q, k, v, beta, g, chunk);
}

// Each chunk's queries attend to the keys from `window` - 1 tokens before the chunk to its end,
// masked to each query's own window.
torch::Tensor swa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window, int64_t chunk) {
  const int64_t length = q.size(2);
  const auto type = compute_type(q);
  const auto qc = q.to(type), kc = k.to(type), vc = v.to(type);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  std::vector<torch::Tensor> outputs;
  for (int64_t start = 0; start < length; start += chunk) {
    const int64_t size = std::min(chunk, length - start);
    const int64_t first = std::max<int64_t>(0, start - window + 1);
    const auto keys = kc.narrow(2, first, start + size - first), values = vc.narrow(2, first, start + size - first);
    const auto query_position = torch::arange(start, start + size, torch::TensorOptions().dtype(torch::kLong).device(q.device())).unsqueeze(-1);
    const auto key_position = torch::arange(first, start + size, torch::TensorOptions().dtype(torch::kLong).device(q.device())).unsqueeze(0);
    const auto hidden = (key_position > query_position).logical_or(key_position <= query_position - window);
    const auto scores = (torch::matmul(qc.narrow(2, start, size), keys.transpose(-1, -2)) * scale)
                            .masked_fill(hidden, -std::numeric_limits<double>::infinity());
    outputs.push_back(torch::matmul(torch::softmax(scores, -1), values));
  }
  return torch::cat(outputs, 2).to(q.scalar_type());
}

}  // namespace asiarch::kernels::chunkwise
