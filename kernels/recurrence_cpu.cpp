// Fused CPU recurrences (LANGUAGE.md, "Recurrences"), forward and backward.
//
// Design:
// - Fused recurrent loops, not a chunkwise form: without FMA (-ffp-contract=off) and without
//   BLAS-sized matrices, a state that stays in L1 beats small-chunk matrix products. Measured on
//   the forward of linear attention (16 heads x 1024 tokens, AVX2): 18.6 vs 6.4 (chunks of 16) M
//   head-tokens/s at head size 32, 5.4 vs 2.2 at 64, 1.3 vs 0.7 at 128.
// - Every state column evolves on its own (a decay scales rows; the delta rule's k^T S and its
//   update act column by column), so the state is processed in strips of kLanes columns over the
//   whole sequence: a strip (rows x kLanes) stays in L1 whatever the head size, and the loops
//   over its lanes are what gcc vectorises. Widths that are not a multiple of kLanes are padded
//   with zeros, which stay zero through every recurrence.
// - Linear and decayed attention store no states: their backward is three more scans of the
//   same kind as the forward (dq = S_t do_t forward in time; dv = dS_t^T k_t and dk = dS_t v_t
//   backward in time), and the gradient of the log decay follows from dq and dk: with G_t the
//   cumulative log decay, dL/dG_t = q_t * dq_t - k_t * dk_t, and dL/dg_t sums it over s >= t.
// - The delta rules keep the state every kCheckpointInterval tokens in the forward; the backward
//   recomputes one interval's states from its checkpoint and runs the reverse recurrence of dS
//   through them.
// - One (batch, head) is one task of at::parallel_for, and every sum has a fixed order, so the
//   results do not depend on the thread count, nor on which of the compiled instruction sets
//   runs the loops (sums across lanes have one order, and no FMA is formed).
#include "kernels/recurrence_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/lanes.h"
#include "kernels/vector_clones.h"

namespace asiarch::kernels::cpu {
namespace {

// A strip's rows and the per-token vectors are Lanes (kernels/lanes.h).
// Measured on the delta rules' forward + backward (batch 4, heads 4, length 1024, head size 64):
// intervals of 8 and 16 tokens lose 2-4x in the forward, which writes their checkpoints (32 and
// 16 MB) to fresh pages; 32, 64 and 128 are within noise of each other. 32 keeps the backward's
// recompute buffer (33 state strips) smallest.
constexpr int64_t kCheckpointInterval = 32;

// `#pragma GCC unroll 1` on the lane loops below keeps gcc from unrolling them into scalars
// before its loop vectoriser sees them (which it then fails to vectorise).

int64_t padded(int64_t width) { return (width + kLanes - 1) / kLanes * kLanes; }

// x contiguous, its last dimension padded with zeros to a multiple of kLanes.
torch::Tensor padded_lanes(const torch::Tensor& x) {
  const int64_t extra = padded(x.size(-1)) - x.size(-1);
  return (extra == 0 ? x : torch::constant_pad_nd(x, {0, extra})).contiguous();
}

torch::Tensor unpadded(const torch::Tensor& x, int64_t width) {
  return x.size(-1) == width ? x : x.narrow(-1, 0, width).contiguous();
}

// The delta rules read and write [B, H, T, width] in place wherever the last dimension is
// contiguous: split_heads gives the heads of a [B, T, D] activation as such a view, and copying
// them to [B, H, T, width] and the results back (merge_heads) took a copy per tensor each way.
torch::Tensor with_contiguous_rows(const torch::Tensor& x) { return x.stride(-1) == 1 ? x : x.contiguous(); }

// v or do for the delta rules: in place when the width fills whole strips, else padded.
torch::Tensor lanes_in_place(const torch::Tensor& x) {
  return x.size(-1) % kLanes == 0 ? with_contiguous_rows(x) : padded_lanes(x);
}

// Where (batch, head) bh of a [B, H, T, width] tensor starts.
template <typename T>
T* head_start(const torch::Tensor& x, int64_t bh) {
  return x.data_ptr<T>() + bh / x.size(1) * x.stride(0) + bh % x.size(1) * x.stride(1);
}

// Elements between one token and the next in each head the delta rules read or write: q, k, v,
// the output (forward) or its gradient (backward), and the gradients of q, k and v.
struct TokenSteps {
  int64_t q, k, v, out, dq = 0, dk = 0, dv = 0;
};

// The sum of kLanes values in a fixed pairwise order, spelled out: written as a loop over halving
// widths gcc compiles it to scalar code (the delta rules' backward ran 4x slower).
template <typename T>
inline T lane_sum(const T* x) {
  static_assert(kLanes == 16);
  T half[8];
#pragma GCC unroll 1
  for (int64_t l = 0; l < 8; ++l) half[l] = x[l] + x[l + 8];
  T quarter[4];
  for (int64_t l = 0; l < 4; ++l) quarter[l] = half[l] + half[l + 4];
  return (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
}

// lane_sum of 16 rows at once, as one vector of 16 sums: pairs of rows are combined by shuffles
// level by level (halves, quarters, pairs, singles), each level adding what lane_sum adds at that
// level, so every sum has lane_sum's order and bits. It replaces 16 scalar tails (extracts,
// shuffles and a scalar store per row) by 15 vector additions.
//
// One level: lane i of out adds lane I_i of x and y's 32 lanes (y's numbered from 16) and the lane
// kStep after it. lane_sum's levels add lanes 8, 4, 2 and 1 apart; each level's first lanes
// (kHalves ... kSingles) keep the rows of x before those of y.
template <int kStep, typename T, int... I>
inline void add_lanes_apart(const Lanes<T>& x, const Lanes<T>& y, Lanes<T>& out, std::integer_sequence<int, I...>) {
  out = __builtin_shufflevector(x, y, I...) + __builtin_shufflevector(x, y, (I + kStep)...);
}

constexpr std::integer_sequence<int, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23> kHalves;
constexpr std::integer_sequence<int, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27> kQuarters;
// (quarter[0] + quarter[2]) and (quarter[1] + quarter[3]) of each row.
constexpr std::integer_sequence<int, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29> kPairs;
constexpr std::integer_sequence<int, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30> kSingles;

template <typename T>
inline T lane_sum_of_vector(const Lanes<T>& v) {
  T x[kLanes];
  store_lanes(v, x);
  return lane_sum(x);
}

// out[r] += lane_sum(terms + r * kLanes) for r < rows, or out[r] = ... without `accumulate`.
// Always inlined: a call would run the baseline instruction set's shuffles from every clone.
template <typename T>
__attribute__((always_inline)) inline void add_lane_sums(const T* __restrict terms, int64_t rows, T* __restrict out, bool accumulate) {
  static_assert(kLanes == 16);
  int64_t r = 0;
  for (; r + 16 <= rows; r += 16) {
    const T* x = terms + r * kLanes;
    Lanes<T> a, b, halves[8], quarters[4], pairs[2], sums, previous;
    for (int i = 0; i < 8; ++i) {
      load_lanes(x + 2 * i * kLanes, a);
      load_lanes(x + (2 * i + 1) * kLanes, b);
      add_lanes_apart<8, T>(a, b, halves[i], kHalves);
    }
    for (int i = 0; i < 4; ++i) add_lanes_apart<4, T>(halves[2 * i], halves[2 * i + 1], quarters[i], kQuarters);
    add_lanes_apart<2, T>(quarters[0], quarters[1], pairs[0], kPairs);
    add_lanes_apart<2, T>(quarters[2], quarters[3], pairs[1], kPairs);
    add_lanes_apart<1, T>(pairs[0], pairs[1], sums, kSingles);
    if (accumulate) {
      load_lanes(out + r, previous);
      sums = previous + sums;
    }
    store_lanes(sums, out + r);
  }
  for (; r < rows; ++r) out[r] = accumulate ? out[r] + lane_sum(terms + r * kLanes) : lane_sum(terms + r * kLanes);
}

template <typename T>
void exp_into(const T* log_values, int64_t count, T* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = std::exp(log_values[i]);
}

// Runs body(bh, scratch) for every (batch, head) in parallel tasks; the heads of one task share
// one scratch, from make_scratch(), instead of each allocating and clearing its own.
template <typename MakeScratch, typename Body>
void for_each_head_sharing(int64_t heads, const MakeScratch& make_scratch, const Body& body) {
  at::parallel_for(0, heads, 1, [&](int64_t begin, int64_t end) {
    auto scratch = make_scratch();
    for (int64_t bh = begin; bh < end; ++bh) body(bh, scratch);
  });
}

// Runs body(bh) for every (batch, head) in parallel.
template <typename Body>
void for_each_head(int64_t heads, const Body& body) {
  for_each_head_sharing(heads, [] { return nullptr; }, [&](int64_t bh, std::nullptr_t) { body(bh); });
}

// ---- Linear and decayed attention: one scan kernel, four uses -------------------------------

// How the decay multipliers apply to the scanned state: not at all, one per token, one per row,
// one per lane.
enum class Decay { None, Scalar, Rows, Lanes };

// state_t = decay_t (.) state_{t-1} + x_t y_t^T and out_t = state_t^T z_t over `steps` tokens, the
// state rows x lanes (lanes a multiple of kLanes). x, z: [steps, rows]; y, out: [steps, lanes];
// pairing: x_t . z_t [steps]; decay: multipliers [steps] (Scalar) or [steps, rows or lanes].
// out_t is computed as (decay_t (.) state_{t-1})^T z_t + (x_t . z_t) y_t, and its first term, which
// leaves out token t's own outer product, also goes to out_exclusive unless that is null.
// kReverse runs from the last token to the first, the state then being a gradient: arriving at
// token t it is scaled by the decay of token t + 1.
template <typename T, Decay kDecay, bool kReverse>
ASIARCH_VECTOR_CLONES void outer_product_scan(const T* __restrict x, const T* __restrict y, const T* __restrict z,
                                              const T* __restrict pairing, const T* __restrict decay, T* __restrict out,
                                              T* __restrict out_exclusive, int64_t steps, int64_t rows, int64_t lanes,
                                              T* __restrict strip) {
  using V = Lanes<T>;
  const int64_t decay_stride = kDecay == Decay::Rows ? rows : kDecay == Decay::Lanes ? lanes : 1;
  for (int64_t lane0 = 0; lane0 < lanes; lane0 += kLanes) {
    std::fill(strip, strip + rows * kLanes, T(0));
    for (int64_t n = 0; n < steps; ++n) {
      const int64_t t = kReverse ? steps - 1 - n : n;
      // Arriving at the last token in reverse the state is zero: any finite decay will do.
      const int64_t decay_step = kReverse ? std::min(t + 1, steps - 1) : t;
      const T* a = kDecay == Decay::None ? nullptr : decay + decay_step * decay_stride;
      const T* x_t = x + t * rows;
      const T* z_t = z + t * rows;
      V y_t, lane_decay, row;
      load_lanes(y + t * lanes + lane0, y_t);
      if constexpr (kDecay == Decay::Lanes) load_lanes(a + lane0, lane_decay);
      // Lanes, not arrays: gcc kept an array accumulator in memory (see delta_rule_forward_head).
      V acc = {};
      for (int64_t r = 0; r < rows; ++r) {
        load_lanes(strip + r * kLanes, row);
        V kept = row;
        if constexpr (kDecay == Decay::Scalar) kept = a[0] * kept;
        if constexpr (kDecay == Decay::Rows) kept = a[r] * kept;
        if constexpr (kDecay == Decay::Lanes) kept = lane_decay * kept;
        store_lanes(kept + x_t[r] * y_t, strip + r * kLanes);
        acc = acc + z_t[r] * kept;
      }
      if (out_exclusive != nullptr) store_lanes(acc, out_exclusive + t * lanes + lane0);
      store_lanes(acc + pairing[t] * y_t, out + t * lanes + lane0);
    }
  }
}

template <typename T, bool kReverse>
void scan(Decay decay_kind, const T* x, const T* y, const T* z, const T* pairing, const T* decay, T* out, T* out_exclusive,
          int64_t steps, int64_t rows, int64_t lanes, T* strip) {
  const auto run = [&](auto kind) {
    outer_product_scan<T, decltype(kind)::value, kReverse>(x, y, z, pairing, decay, out, out_exclusive, steps, rows, lanes, strip);
  };
  switch (decay_kind) {
    case Decay::None: return run(std::integral_constant<Decay, Decay::None>());
    case Decay::Scalar: return run(std::integral_constant<Decay, Decay::Scalar>());
    case Decay::Rows: return run(std::integral_constant<Decay, Decay::Rows>());
    case Decay::Lanes: return run(std::integral_constant<Decay, Decay::Lanes>());
  }
}

// out[t] = a_t . b_t for rows of `width`.
template <typename T>
void row_dots(const T* a, const T* b, int64_t steps, int64_t width, T* out, int64_t a_step, int64_t b_step) {
  for (int64_t t = 0; t < steps; ++t) {
    T sum = 0;
    for (int64_t i = 0; i < width; ++i) sum = sum + a[t * a_step + i] * b[t * b_step + i];
    out[t] = sum;
  }
}

// dL/dg from dL/dG_t = q_t * dq_t - k_t * dk_t, summed over later tokens (and over channels for a
// scalar decay). Token t's own outer product adds q_t k_t (v_t . do_t) to both terms, so it is
// left out of dq and dk here (their exclusive parts): under strong decay what remains is small,
// and the cancellation small with it. Accumulated in double.
template <typename T>
void log_decay_gradient(const T* q, const T* k, const T* dq_exclusive, const T* dk_exclusive, T* dg, int64_t steps, int64_t width,
                        bool per_channel, std::vector<double>& later) {
  later.assign(per_channel ? width : 1, 0.0);
  for (int64_t t = steps - 1; t >= 0; --t) {
    for (int64_t i = 0; i < width; ++i) {
      const int64_t at = t * width + i;
      later[per_channel ? i : 0] += static_cast<double>(q[at]) * dq_exclusive[at] - static_cast<double>(k[at]) * dk_exclusive[at];
      if (per_channel) dg[at] = static_cast<T>(later[i]);
    }
    if (!per_channel) dg[t] = static_cast<T>(later[0]);
  }
}

struct DecayKinds {
  Decay on_dk_rows, on_dk_lanes;
};

DecayKinds decay_kinds(const torch::Tensor& g) {
  if (!g.defined()) return {Decay::None, Decay::None};
  if (g.dim() == 3) return {Decay::Scalar, Decay::Scalar};
  return {Decay::Rows, Decay::Lanes};
}

// ---- Delta and gated delta rule -------------------------------------------------------------

int64_t checkpoint_count(int64_t steps) { return (steps + kCheckpointInterval - 1) / kCheckpointInterval; }

// One (batch, head), strip by strip: with a_t = exp(g_t) (1 ungated), the predicted values
// p_t = a_t S_{t-1}^T k_t, the update w_t = beta_t (v_t - p_t), S_t = a_t S_{t-1} + k_t w_t^T and
// o_t = S_t^T q_t. checkpoints (null: none kept) receives the strip entering each interval:
// [lanes / kLanes][checkpoint_count][rows][kLanes]. A strip's rows and the per-token vectors are
// Lanes: as arrays, gcc kept the sums over rows (p, o) in memory, a store and a load in every
// link of their chains.
template <typename T, bool kGated>
ASIARCH_VECTOR_CLONES void delta_rule_forward_head(const T* __restrict q, const T* __restrict k, const T* __restrict v,
                                                   const T* __restrict beta, const T* __restrict decay, T* __restrict out,
                                                   T* __restrict checkpoints, int64_t steps, int64_t rows, int64_t lanes,
                                                   const TokenSteps& step, T* __restrict strip) {
  using V = Lanes<T>;
  const int64_t strip_size = rows * kLanes;
  for (int64_t lane0 = 0; lane0 < lanes; lane0 += kLanes) {
    std::fill(strip, strip + strip_size, T(0));
    for (int64_t t = 0; t < steps; ++t) {
      if (checkpoints != nullptr && t % kCheckpointInterval == 0) {
        const int64_t index = lane0 / kLanes * checkpoint_count(steps) + t / kCheckpointInterval;
        std::copy(strip, strip + strip_size, checkpoints + index * strip_size);
      }
      const T a = kGated ? decay[t] : T(1);
      const T* q_t = q + t * step.q;
      const T* k_t = k + t * step.k;
      V predicted = {}, value, row;
      for (int64_t r = 0; r < rows; ++r) {
        load_lanes(strip + r * kLanes, row);
        predicted = predicted + k_t[r] * row;
      }
      if constexpr (kGated) predicted = a * predicted;
      load_lanes(v + t * step.v + lane0, value);
      const V update = beta[t] * (value - predicted);
      V acc = {};
      for (int64_t r = 0; r < rows; ++r) {
        load_lanes(strip + r * kLanes, row);
        const V next = (kGated ? a * row : row) + k_t[r] * update;
        store_lanes(next, strip + r * kLanes);
        acc = acc + q_t[r] * next;
      }
      store_lanes(acc, out + t * step.out + lane0);
    }
  }
}

// Scratch of one delta-rule backward task.
template <typename T>
struct DeltaScratch {
  std::vector<T> states, predicted, update, grad_state, row_terms, qk, multipliers;
  DeltaScratch(int64_t steps, int64_t rows, bool gated)
      : states((kCheckpointInterval + 1) * rows * kLanes),
        predicted(kCheckpointInterval * kLanes),
        update(kCheckpointInterval * kLanes),
        grad_state(rows * kLanes),
        row_terms(rows * kLanes),
        qk(steps),
        multipliers(gated ? steps : 0) {}
};

// The backward of delta_rule_forward_head. Per token, from G = dL/dS_t (the carried gradient H
// plus q_t do_t^T) and P = a_t S_{t-1}:
//   dq_t = S_t do_t, dw = G^T k_t, dv_t = beta_t dw, dp = -beta_t dw, dbeta_t = dw . (v_t - p_t),
//   dk_t = G w_t + P dp, dP = G + k_t dp^T, dg_t = a_t sum(dP (.) S_{t-1}), H <- a_t dP.
// dq, dk, dbeta and dg are written by the first strip and accumulate over the others, so they
// need no zeroing first.
template <typename T, bool kGated>
ASIARCH_VECTOR_CLONES void delta_rule_backward_head(const T* __restrict q, const T* __restrict k, const T* __restrict v,
                                                    const T* __restrict beta, const T* __restrict decay,
                                                    const T* __restrict checkpoints, const T* __restrict grad_out,
                                                    T* __restrict dq, T* __restrict dk, T* __restrict dv, T* __restrict dbeta,
                                                    T* __restrict dg, int64_t steps, int64_t rows, int64_t lanes,
                                                    const TokenSteps& step, DeltaScratch<T>& scratch) {
  using V = Lanes<T>;
  const int64_t strip_size = rows * kLanes;
  T* __restrict states = scratch.states.data();
  T* __restrict predicted = scratch.predicted.data();
  T* __restrict update = scratch.update.data();
  T* __restrict grad_state = scratch.grad_state.data();
  T* __restrict row_terms = scratch.row_terms.data();
  T* __restrict qk = scratch.qk.data();
  row_dots(q, k, steps, rows, qk, step.q, step.k);
  for (int64_t lane0 = 0; lane0 < lanes; lane0 += kLanes) {
    const bool accumulate = lane0 > 0;
    std::fill(grad_state, grad_state + strip_size, T(0));
    for (int64_t interval = checkpoint_count(steps) - 1; interval >= 0; --interval) {
      const int64_t first = interval * kCheckpointInterval;
      const int64_t end = std::min(steps, first + kCheckpointInterval);
      const T* checkpoint = checkpoints + (lane0 / kLanes * checkpoint_count(steps) + interval) * strip_size;
      std::copy(checkpoint, checkpoint + strip_size, states);
      // Recompute S_first .. S_{end-1} into states[1..], with each token's p and w, as the forward.
      for (int64_t t = first; t < end; ++t) {
        const T a = kGated ? decay[t] : T(1);
        const T* k_t = k + t * step.k;
        const T* previous = states + (t - first) * strip_size;
        T* __restrict next = states + (t - first + 1) * strip_size;
        V p = {}, value, row;
        for (int64_t r = 0; r < rows; ++r) {
          load_lanes(previous + r * kLanes, row);
          p = p + k_t[r] * row;
        }
        if constexpr (kGated) p = a * p;
        load_lanes(v + t * step.v + lane0, value);
        const V w = beta[t] * (value - p);
        store_lanes(p, predicted + (t - first) * kLanes);
        store_lanes(w, update + (t - first) * kLanes);
        for (int64_t r = 0; r < rows; ++r) {
          load_lanes(previous + r * kLanes, row);
          store_lanes((kGated ? a * row : row) + k_t[r] * w, next + r * kLanes);
        }
      }
      for (int64_t t = end - 1; t >= first; --t) {
        const T a = kGated ? decay[t] : T(1);
        const T* q_t = q + t * step.q;
        const T* k_t = k + t * step.k;
        const T* previous = states + (t - first) * strip_size;
        const T* current = states + (t - first + 1) * strip_size;
        V value, grad, p, w, h, row;
        load_lanes(v + t * step.v + lane0, value);
        load_lanes(grad_out + t * step.out + lane0, grad);
        load_lanes(predicted + (t - first) * kLanes, p);
        load_lanes(update + (t - first) * kLanes, w);
        // dw = H^T k_t + (q_t . k_t) do_t; dq_t += S_t do_t.
        V dw = {};
        for (int64_t r = 0; r < rows; ++r) {
          load_lanes(grad_state + r * kLanes, h);
          dw = dw + k_t[r] * h;
          load_lanes(current + r * kLanes, row);
          store_lanes(row * grad, row_terms + r * kLanes);
        }
        add_lane_sums(row_terms, rows, dq + t * step.dq, accumulate);
        dw = dw + qk[t] * grad;
        store_lanes(beta[t] * dw, dv + t * step.dv + lane0);
        const V dp = -(beta[t] * dw);
        const V beta_terms = dw * (value - p);
        dbeta[t] = accumulate ? dbeta[t] + lane_sum_of_vector<T>(beta_terms) : lane_sum_of_vector<T>(beta_terms);
        V decay_terms = {};
        for (int64_t r = 0; r < rows; ++r) {
          load_lanes(grad_state + r * kLanes, h);
          load_lanes(previous + r * kLanes, row);
          const V g_state = h + q_t[r] * grad;
          const V g_decayed = g_state + k_t[r] * dp;
          store_lanes(g_state * w + (kGated ? a * row : row) * dp, row_terms + r * kLanes);
          if constexpr (kGated) decay_terms = decay_terms + g_decayed * row;
          store_lanes(kGated ? a * g_decayed : g_decayed, grad_state + r * kLanes);
        }
        add_lane_sums(row_terms, rows, dk + t * step.dk, accumulate);
        if constexpr (kGated) dg[t] = accumulate ? dg[t] + a * lane_sum_of_vector<T>(decay_terms) : a * lane_sum_of_vector<T>(decay_terms);
      }
    }
  }
}

// ---- Sliding-window softmax attention -------------------------------------------------------

// scores[s] = q_t . k_{first+s} for s < count, from the keys transposed to [dk][steps] so that
// the loop over keys vectorises.
template <typename T>
inline void window_scores(const T* __restrict q_t, const T* __restrict keys_transposed, T* __restrict scores, int64_t first,
                          int64_t count, int64_t steps, int64_t dk) {
  std::fill(scores, scores + count, T(0));
  for (int64_t i = 0; i < dk; ++i) {
    const T q_i = q_t[i];
    const T* keys = keys_transposed + i * steps + first;
    for (int64_t s = 0; s < count; ++s) scores[s] = scores[s] + q_i * keys[s];
  }
}

template <typename T>
void transpose_into(const T* x, int64_t rows, int64_t cols, T* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = x[r * cols + c];
}

template <typename T>
ASIARCH_VECTOR_CLONES void swa_forward_head(const T* __restrict q, const T* __restrict k, const T* __restrict v, T* __restrict out,
                                            T* __restrict logsumexp, int64_t steps, int64_t dk, int64_t dv, int64_t window, T scale,
                                            T* __restrict keys_transposed, T* __restrict scores) {
  transpose_into(k, steps, dk, keys_transposed);
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t first = std::max<int64_t>(0, t - window + 1);
    const int64_t count = t - first + 1;
    window_scores(q + t * dk, keys_transposed, scores, first, count, steps, dk);
    T largest = scale * scores[0];
    for (int64_t s = 1; s < count; ++s) largest = std::max(largest, scale * scores[s]);
    T total = 0;
    for (int64_t s = 0; s < count; ++s) {
      scores[s] = std::exp(scale * scores[s] - largest);
      total = total + scores[s];
    }
    T* out_t = out + t * dv;
    std::fill(out_t, out_t + dv, T(0));
    for (int64_t s = 0; s < count; ++s) {
      const T weight = scores[s];
      const T* v_s = v + (first + s) * dv;
      for (int64_t j = 0; j < dv; ++j) out_t[j] = out_t[j] + weight * v_s[j];
    }
    for (int64_t j = 0; j < dv; ++j) out_t[j] = out_t[j] / total;
    logsumexp[t] = largest + std::log(total);
  }
}

// With weights p_s = exp(scale q_t.k_s - lse_t) recomputed: dp_s = do_t . v_s,
// dscore_s = p_s (dp_s - sum_s' p_s' dp_s') scale, dq_t = sum_s dscore_s k_s, dk_s += dscore_s q_t,
// dv_s += p_s do_t. dk and dv must start at zero.
template <typename T>
ASIARCH_VECTOR_CLONES void swa_backward_head(const T* __restrict q, const T* __restrict k, const T* __restrict v,
                                             const T* __restrict logsumexp, const T* __restrict grad_out, T* __restrict dq,
                                             T* __restrict dk, T* __restrict dv, int64_t steps, int64_t dk_size, int64_t dv_size,
                                             int64_t window, T scale, T* __restrict keys_transposed, T* __restrict values_transposed,
                                             T* __restrict weights, T* __restrict weight_grads) {
  transpose_into(k, steps, dk_size, keys_transposed);
  transpose_into(v, steps, dv_size, values_transposed);
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t first = std::max<int64_t>(0, t - window + 1);
    const int64_t count = t - first + 1;
    window_scores(q + t * dk_size, keys_transposed, weights, first, count, steps, dk_size);
    for (int64_t s = 0; s < count; ++s) weights[s] = std::exp(scale * weights[s] - logsumexp[t]);
    const T* do_t = grad_out + t * dv_size;
    std::fill(weight_grads, weight_grads + count, T(0));
    for (int64_t j = 0; j < dv_size; ++j) {
      const T do_j = do_t[j];
      const T* values = values_transposed + j * steps + first;
      for (int64_t s = 0; s < count; ++s) weight_grads[s] = weight_grads[s] + do_j * values[s];
    }
    T expected = 0;
    for (int64_t s = 0; s < count; ++s) expected = expected + weights[s] * weight_grads[s];
    const T* q_t = q + t * dk_size;
    T* dq_t = dq + t * dk_size;
    for (int64_t s = 0; s < count; ++s) {
      const T score_grad = weights[s] * (weight_grads[s] - expected) * scale;
      const T* k_s = k + (first + s) * dk_size;
      T* dk_s = dk + (first + s) * dk_size;
      T* dv_s = dv + (first + s) * dv_size;
      const T weight = weights[s];
      for (int64_t i = 0; i < dk_size; ++i) {
        dq_t[i] = dq_t[i] + score_grad * k_s[i];
        dk_s[i] = dk_s[i] + score_grad * q_t[i];
      }
      for (int64_t j = 0; j < dv_size; ++j) dv_s[j] = dv_s[j] + weight * do_t[j];
    }
  }
}

}  // namespace

bool supports(const torch::Tensor& q) {
  return q.device().is_cpu() && (q.scalar_type() == torch::kFloat || q.scalar_type() == torch::kDouble);
}

const char* instruction_set() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  return __builtin_cpu_supports("avx2") ? "avx2" : "baseline";
#else
  return "baseline";
#endif
}

torch::Tensor decay_attn_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g) {
  const auto qc = q.contiguous();
  const auto kc = k.contiguous();
  const auto vp = padded_lanes(v);
  const auto gc = g.defined() ? g.contiguous() : g;
  const int64_t heads = q.size(0) * q.size(1), steps = q.size(2), dk = q.size(3), lanes = vp.size(3);
  const int64_t decay_width = gc.defined() ? gc.numel() / std::max<int64_t>(heads, 1) : 0;
  const Decay decay = decay_kinds(g).on_dk_rows;
  auto out = torch::empty({q.size(0), q.size(1), steps, lanes}, qc.options());
  AT_DISPATCH_FLOATING_TYPES(qc.scalar_type(), "decay_attn_forward", [&] {
    using T = scalar_t;
    for_each_head(heads, [&](int64_t bh) {
      std::vector<T> strip(dk * kLanes), multipliers(decay_width), qk(steps);
      if (gc.defined()) exp_into(gc.data_ptr<T>() + bh * decay_width, decay_width, multipliers.data());
      const T* q_h = qc.data_ptr<T>() + bh * steps * dk;
      const T* k_h = kc.data_ptr<T>() + bh * steps * dk;
      row_dots(q_h, k_h, steps, dk, qk.data(), dk, dk);
      scan<T, false>(decay, k_h, vp.data_ptr<T>() + bh * steps * lanes, q_h, qk.data(), multipliers.data(),
                     out.data_ptr<T>() + bh * steps * lanes, nullptr, steps, dk, lanes, strip.data());
    });
  });
  return unpadded(out, v.size(3));
}

DecayAttnGrads decay_attn_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g,
                                   const torch::Tensor& grad_out) {
  const auto qp = padded_lanes(q), kp = padded_lanes(k), vp = padded_lanes(v), dop = padded_lanes(grad_out);
  const bool vector_decay = g.defined() && g.dim() == 4;
  const auto gp = !g.defined() ? g : vector_decay ? padded_lanes(g) : g.contiguous();
  const int64_t heads = q.size(0) * q.size(1), steps = q.size(2), dk = qp.size(3), dv = vp.size(3);
  const int64_t decay_width = !g.defined() ? 0 : vector_decay ? steps * dk : steps;
  const DecayKinds decay = decay_kinds(g);
  auto dq = torch::empty_like(qp), dk_grad = torch::empty_like(kp), dv_grad = torch::empty_like(vp);
  auto dg = g.defined() ? torch::empty_like(gp) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(qp.scalar_type(), "decay_attn_backward", [&] {
    using T = scalar_t;
    for_each_head(heads, [&](int64_t bh) {
      std::vector<T> strip(std::max(dk, dv) * kLanes), multipliers(decay_width), qk(steps), vdo(steps);
      std::vector<T> dq_exclusive(g.defined() ? steps * dk : 0), dk_exclusive(g.defined() ? steps * dk : 0);
      std::vector<double> later;
      if (g.defined()) exp_into(gp.data_ptr<T>() + bh * decay_width, decay_width, multipliers.data());
      const T* q_h = qp.data_ptr<T>() + bh * steps * dk;
      const T* k_h = kp.data_ptr<T>() + bh * steps * dk;
      const T* v_h = vp.data_ptr<T>() + bh * steps * dv;
      const T* do_h = dop.data_ptr<T>() + bh * steps * dv;
      T* dq_h = dq.data_ptr<T>() + bh * steps * dk;
      T* dk_h = dk_grad.data_ptr<T>() + bh * steps * dk;
      row_dots(q_h, k_h, steps, dk, qk.data(), dk, dk);
      row_dots(v_h, do_h, steps, dv, vdo.data(), dv, dv);
      T* dq_exclusive_h = g.defined() ? dq_exclusive.data() : nullptr;
      T* dk_exclusive_h = g.defined() ? dk_exclusive.data() : nullptr;
      // dq_t = S_t do_t: the forward scan of S_t^T (rows dv, lanes dk).
      scan<T, false>(decay.on_dk_lanes, v_h, k_h, do_h, vdo.data(), multipliers.data(), dq_h, dq_exclusive_h, steps, dv, dk, strip.data());
      // dS_t = a_{t+1} dS_{t+1} + q_t do_t^T backward in time: dv_t = dS_t^T k_t, dk_t = dS_t v_t.
      scan<T, true>(decay.on_dk_rows, q_h, do_h, k_h, qk.data(), multipliers.data(), dv_grad.data_ptr<T>() + bh * steps * dv, nullptr,
                    steps, dk, dv, strip.data());
      scan<T, true>(decay.on_dk_lanes, do_h, q_h, v_h, vdo.data(), multipliers.data(), dk_h, dk_exclusive_h, steps, dv, dk, strip.data());
      if (g.defined())
        log_decay_gradient(q_h, k_h, dq_exclusive_h, dk_exclusive_h, dg.data_ptr<T>() + bh * decay_width, steps, dk, vector_decay, later);
    });
  });
  return {unpadded(dq, q.size(3)), unpadded(dk_grad, k.size(3)), unpadded(dv_grad, v.size(3)),
          vector_decay ? unpadded(dg, g.size(3)) : dg};
}

DeltaRuleForward delta_rule_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta,
                                    const torch::Tensor& g, bool keep_checkpoints) {
  const auto qc = with_contiguous_rows(q), kc = with_contiguous_rows(k), vp = lanes_in_place(v), bc = beta.contiguous();
  const auto gc = g.defined() ? g.contiguous() : g;
  const int64_t heads = q.size(0) * q.size(1), steps = q.size(2), dk = q.size(3), lanes = vp.size(3);
  const int64_t checkpoint_size = lanes * checkpoint_count(steps) * dk;
  // In v's layout (a view of split_heads stays one, and merge_heads then needs no copy).
  auto out = torch::empty_like(vp);
  const TokenSteps step{qc.stride(2), kc.stride(2), vp.stride(2), out.stride(2)};
  auto checkpoints = keep_checkpoints ? torch::empty({heads, checkpoint_size}, qc.options()) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(qc.scalar_type(), "delta_rule_forward", [&] {
    using T = scalar_t;
    for_each_head(heads, [&](int64_t bh) {
      std::vector<T> strip(dk * kLanes), multipliers(gc.defined() ? steps : 0);
      T* checkpoints_h = keep_checkpoints ? checkpoints.data_ptr<T>() + bh * checkpoint_size : nullptr;
      const T* q_h = head_start<T>(qc, bh);
      const T* k_h = head_start<T>(kc, bh);
      const T* v_h = head_start<T>(vp, bh);
      const T* beta_h = bc.data_ptr<T>() + bh * steps;
      T* out_h = head_start<T>(out, bh);
      if (gc.defined()) {
        exp_into(gc.data_ptr<T>() + bh * steps, steps, multipliers.data());
        delta_rule_forward_head<T, true>(q_h, k_h, v_h, beta_h, multipliers.data(), out_h, checkpoints_h, steps, dk, lanes, step,
                                         strip.data());
      } else {
        delta_rule_forward_head<T, false>(q_h, k_h, v_h, beta_h, nullptr, out_h, checkpoints_h, steps, dk, lanes, step, strip.data());
      }
    });
  });
  return {unpadded(out, v.size(3)), checkpoints};
}

DeltaRuleGrads delta_rule_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& beta,
                                   const torch::Tensor& g, const torch::Tensor& checkpoints, const torch::Tensor& grad_out) {
  const auto qc = with_contiguous_rows(q), kc = with_contiguous_rows(k), vp = lanes_in_place(v), bc = beta.contiguous();
  const auto dop = lanes_in_place(grad_out);
  const auto gc = g.defined() ? g.contiguous() : g;
  const int64_t heads = q.size(0) * q.size(1), steps = q.size(2), dk = q.size(3), lanes = vp.size(3);
  const int64_t checkpoint_size = lanes * checkpoint_count(steps) * dk;
  TORCH_CHECK(checkpoints.defined() && checkpoints.numel() == heads * checkpoint_size, "delta_rule_backward: checkpoints do not match");
  // Each gradient in its input's layout.
  auto dq = torch::empty_like(qc), dk_grad = torch::empty_like(kc), dv_grad = torch::empty_like(vp), dbeta = torch::empty_like(bc);
  auto dg = g.defined() ? torch::empty_like(gc) : torch::Tensor();
  const TokenSteps step{qc.stride(2), kc.stride(2), vp.stride(2), dop.stride(2), dq.stride(2), dk_grad.stride(2), dv_grad.stride(2)};
  AT_DISPATCH_FLOATING_TYPES(qc.scalar_type(), "delta_rule_backward", [&] {
    using T = scalar_t;
    const auto make_scratch = [&] { return DeltaScratch<T>(steps, dk, gc.defined()); };
    for_each_head_sharing(heads, make_scratch, [&](int64_t bh, DeltaScratch<T>& scratch) {
      const T* q_h = head_start<T>(qc, bh);
      const T* k_h = head_start<T>(kc, bh);
      const T* v_h = head_start<T>(vp, bh);
      const T* beta_h = bc.data_ptr<T>() + bh * steps;
      const T* checkpoints_h = checkpoints.data_ptr<T>() + bh * checkpoint_size;
      const T* do_h = head_start<T>(dop, bh);
      T* dq_h = head_start<T>(dq, bh);
      T* dk_h = head_start<T>(dk_grad, bh);
      T* dv_h = head_start<T>(dv_grad, bh);
      T* dbeta_h = dbeta.data_ptr<T>() + bh * steps;
      if (gc.defined()) {
        exp_into(gc.data_ptr<T>() + bh * steps, steps, scratch.multipliers.data());
        delta_rule_backward_head<T, true>(q_h, k_h, v_h, beta_h, scratch.multipliers.data(), checkpoints_h, do_h, dq_h, dk_h, dv_h, dbeta_h,
                                          dg.data_ptr<T>() + bh * steps, steps, dk, lanes, step, scratch);
      } else {
        delta_rule_backward_head<T, false>(q_h, k_h, v_h, beta_h, nullptr, checkpoints_h, do_h, dq_h, dk_h, dv_h, dbeta_h, nullptr,
                                           steps, dk, lanes, step, scratch);
      }
    });
  });
  return {dq, dk_grad, unpadded(dv_grad, v.size(3)), dbeta, dg};
}

SwaForward swa_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window) {
  const auto qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  const int64_t heads = q.size(0) * q.size(1), steps = q.size(2), dk = q.size(3), dv = v.size(3);
  auto out = torch::empty({q.size(0), q.size(1), steps, dv}, qc.options());
  auto logsumexp = torch::empty({q.size(0), q.size(1), steps}, qc.options());
  AT_DISPATCH_FLOATING_TYPES(qc.scalar_type(), "swa_forward", [&] {
    using T = scalar_t;
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dk)));
    for_each_head(heads, [&](int64_t bh) {
      std::vector<T> keys_transposed(dk * steps), scores(std::min(window, steps));
      swa_forward_head<T>(qc.data_ptr<T>() + bh * steps * dk, kc.data_ptr<T>() + bh * steps * dk, vc.data_ptr<T>() + bh * steps * dv,
                          out.data_ptr<T>() + bh * steps * dv, logsumexp.data_ptr<T>() + bh * steps, steps, dk, dv, window, scale,
                          keys_transposed.data(), scores.data());
    });
  });
  return {out, logsumexp};
}

SwaGrads swa_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window,
                      const torch::Tensor& logsumexp, const torch::Tensor& grad_out) {
  const auto qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous(), lc = logsumexp.contiguous(), doc = grad_out.contiguous();
  const int64_t heads = q.size(0) * q.size(1), steps = q.size(2), dk = q.size(3), dv = v.size(3);
  auto dq = torch::zeros_like(qc), dk_grad = torch::zeros_like(kc), dv_grad = torch::zeros_like(vc);
  AT_DISPATCH_FLOATING_TYPES(qc.scalar_type(), "swa_backward", [&] {
    using T = scalar_t;
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dk)));
    for_each_head(heads, [&](int64_t bh) {
      std::vector<T> keys_transposed(dk * steps), values_transposed(dv * steps), weights(std::min(window, steps)),
          weight_grads(std::min(window, steps));
      swa_backward_head<T>(qc.data_ptr<T>() + bh * steps * dk, kc.data_ptr<T>() + bh * steps * dk, vc.data_ptr<T>() + bh * steps * dv,
                           lc.data_ptr<T>() + bh * steps, doc.data_ptr<T>() + bh * steps * dv, dq.data_ptr<T>() + bh * steps * dk,
                           dk_grad.data_ptr<T>() + bh * steps * dk, dv_grad.data_ptr<T>() + bh * steps * dv, steps, dk, dv, window,
                           scale, keys_transposed.data(), values_transposed.data(), weights.data(), weight_grads.data());
    });
  });
  return {dq, dk_grad, dv_grad};
}

}  // namespace asiarch::kernels::cpu
