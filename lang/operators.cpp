// The operator table: one row per operator of lang/LANGUAGE.md with its typing rule, its
// arity and attributes, and its cost (parameters, FLOPs per token, state). Rules shared by
// several operators are written once below and named by the rows that use them.
#include <algorithm>
#include <initializer_list>
#include <map>

#include "lang/name_table.h"
#include "lang/operator_rules.h"
#include "lang/program_analysis.h"

namespace asiarch::lang {
namespace detail {
namespace {

std::string kind_pattern(Kind kind) {
  switch (kind) {
    case Kind::Seq: return "seq[n]";
    case Kind::Heads: return "heads[h, d]";
    case Kind::Scalars: return "scalars[h]";
  }
  return "";
}

std::string describe_arg(const Operands& in, size_t i) {
  return "argument " + std::to_string(i + 1) + " ('" + in.arg_name(i) + "')";
}

// How to turn a value of type `from` into one of kind `to`, as advice appended to a message.
std::string conversion_hint(const Type& from, Kind to, const std::string& name) {
  if (from.kind == Kind::Heads && to == Kind::Seq) return "; merge its heads first: merge_heads(" + name + ")";
  if (from.kind == Kind::Seq && to == Kind::Heads) return "; split it into heads first: split_heads(" + name + ", h=4)";
  if (from.kind == Kind::Seq && to == Kind::Scalars) {
    return "; make one channel per head with linear(" + name + ", out=H), then head_scalars of that";
  }
  if (to == Kind::Scalars) return "; make per-head scalars with head_scalars(linear(..., out=H)) or retnet_decay";
  return "; per-head scalars only combine with heads[h, d] through add, sub or mul";
}

const Type& arg_of_kind(const Operands& in, size_t i, std::initializer_list<Kind> kinds) {
  const Type& t = in.args[i];
  if (std::find(kinds.begin(), kinds.end(), t.kind) != kinds.end()) return t;
  std::string wanted;
  for (Kind k : kinds) wanted += (wanted.empty() ? "" : " or ") + kind_pattern(k);
  throw RuleError{describe_arg(in, i) + " must be " + wanted + ", got " + to_string(t) +
                  conversion_hint(t, *kinds.begin(), in.arg_name(i))};
}

// All arguments from `first` on must have one type; returns it.
const Type& same_type_from(const Operands& in, size_t first) {
  for (size_t i = first + 1; i < in.args.size(); ++i) {
    if (in.args[i] != in.args[first]) {
      throw RuleError{describe_arg(in, i) + " is " + to_string(in.args[i]) + " but " + describe_arg(in, first) +
                      " is " + to_string(in.args[first]) + "; these arguments must have one type: project or reshape them to match"};
    }
  }
  return in.args[first];
}

// ---- typing rules ----

Type same_as_argument(const Operands& in) { return in.args[0]; }

// seq[n] -> seq[N]; heads[h, d] -> heads[h, N] with one weight shared by every head.
Type linear_type(const Operands& in) {
  const Type& a = arg_of_kind(in, 0, {Kind::Seq, Kind::Heads});
  return Type{a.kind, a.heads, in.dim("out")};
}

Type split_heads_type(const Operands& in) {
  const int64_t n = arg_of_kind(in, 0, {Kind::Seq}).dim;
  const int64_t h = in.dim("h");
  if (n % h != 0) {
    throw RuleError{"seq[" + std::to_string(n) + "] does not split into " + std::to_string(h) + " heads (" + std::to_string(n) +
                    " is not divisible by " + std::to_string(h) + "); choose h that divides " + std::to_string(n) +
                    ", e.g. h=" + std::to_string(divisor_at_most(n, h))};
  }
  return Type{Kind::Heads, h, n / h};
}

Type merge_heads_type(const Operands& in) {
  const Type& a = arg_of_kind(in, 0, {Kind::Heads});
  return Type{Kind::Seq, 0, a.heads * a.dim};
}

Type head_scalars_type(const Operands& in) {
  return Type{Kind::Scalars, arg_of_kind(in, 0, {Kind::Seq}).dim, 0};
}

Type concat_type(const Operands& in) {
  const int64_t n = arg_of_kind(in, 0, {Kind::Seq}).dim;
  const int64_t m = arg_of_kind(in, 1, {Kind::Seq}).dim;
  return Type{Kind::Seq, 0, n + m};
}

// Whether `narrow` broadcasts over `wide`: per-head scalars over the vectors of those heads, or a
// seq[1] (a reduction over channels) over every channel.
bool broadcasts_over(const Type& narrow, const Type& wide) {
  if (narrow.kind == Kind::Scalars && wide.kind == Kind::Heads) return narrow.heads == wide.heads;
  return narrow.kind == Kind::Seq && wide.kind == Kind::Seq && narrow.dim == 1;
}

// add, sub, mul, div, max, min: one type, or a narrower value broadcast over a wider one (either
// order, so that the canonical form may sort the arguments of add and mul).
Type broadcast_type(const Operands& in) {
  const Type& a = in.args[0];
  const Type& b = in.args[1];
  if (a == b) return a;
  if (broadcasts_over(b, a)) return a;
  if (broadcasts_over(a, b)) return b;
  throw RuleError{"cannot combine " + to_string(a) + " ('" + in.arg_name(0) + "') with " + to_string(b) + " ('" +
                  in.arg_name(1) + "'); use two values of one type, heads[h, d] with scalars[h] of the same h, or seq[n] with seq[1]"};
}

// Reductions over the last dimension: seq[n] -> seq[1], heads[h, d] -> scalars[h].
Type reduction_type(const Operands& in) {
  const Type& a = arg_of_kind(in, 0, {Kind::Seq, Kind::Heads});
  return a.kind == Kind::Seq ? Type{Kind::Seq, 0, 1} : Type{Kind::Scalars, a.heads, 0};
}

// Statistics over heads, given to every head: heads[h, d] or scalars[h] -> same.
Type across_heads_type(const Operands& in) { return arg_of_kind(in, 0, {Kind::Heads, Kind::Scalars}); }

// weighted_paths: weights seq[k] over k paths seq[n] or heads[h, d] (shared by the heads), or
// heads[h, k] over k paths heads[h, d] (one weight per head and path).
Type weighted_paths_type(const Operands& in) {
  const Type& path = same_type_from(in, 1);
  const int64_t paths = static_cast<int64_t>(in.args.size()) - 1;
  if (path.kind == Kind::Scalars) {
    throw RuleError{describe_arg(in, 1) + " is " + to_string(path) + "; the paths must be seq[n] or heads[h, d]"};
  }
  const Type shared{Kind::Seq, 0, paths}, per_head{Kind::Heads, path.heads, paths};
  if (in.args[0] == shared || (path.kind == Kind::Heads && in.args[0] == per_head)) return path;
  throw RuleError{"the weights, " + describe_arg(in, 0) + ", must be " + to_string(shared) + ", one per path" +
                  (path.kind == Kind::Heads ? ", or " + to_string(per_head) + ", one per head and path" : std::string()) +
                  ", got " + to_string(in.args[0])};
}

// penalty(a, p, weight=W): a, unchanged; p is any value.
Type penalty_type(const Operands& in) { return in.args[0]; }

Type norm_type(const Operands& in) { return arg_of_kind(in, 0, {Kind::Seq, Kind::Heads}); }

Type gated_norm_type(const Operands& in) {
  arg_of_kind(in, 0, {Kind::Seq, Kind::Heads});
  return same_type_from(in, 0);
}

Type conv_type(const Operands& in) { return arg_of_kind(in, 0, {Kind::Seq}); }

Type fir_type(const Operands& in) { return arg_of_kind(in, 0, {Kind::Seq, Kind::Heads}); }

struct QkvShape {
  int64_t heads;
  int64_t dk;
  int64_t dv;
};

// q, k : heads[h, dk] and v : heads[h, dv], the first three arguments of every kernel.
QkvShape qkv_shape(const Operands& in) {
  const Type& q = arg_of_kind(in, 0, {Kind::Heads});
  const Type& k = arg_of_kind(in, 1, {Kind::Heads});
  const Type& v = arg_of_kind(in, 2, {Kind::Heads});
  if (k != q) {
    throw RuleError{"q ('" + in.arg_name(0) + "') is " + to_string(q) + " but k ('" + in.arg_name(1) + "') is " +
                    to_string(k) + "; queries and keys must have one type: project and split them alike"};
  }
  if (v.heads != q.heads) {
    throw RuleError{"v ('" + in.arg_name(2) + "') has " + std::to_string(v.heads) + " heads but q and k have " +
                    std::to_string(q.heads) + "; split q, k and v with the same h"};
  }
  return QkvShape{q.heads, q.dim, v.dim};
}

// Argument i must be scalars[h]: one value per head and token (beta, a scalar decay).
void expect_head_scalars(const Operands& in, size_t i, const std::string& role, int64_t heads) {
  const Type wanted{Kind::Scalars, heads, 0};
  if (in.args[i] != wanted) {
    throw RuleError{role + ", " + describe_arg(in, i) + ", must be " + to_string(wanted) + ", got " + to_string(in.args[i]) +
                    "; make it with head_scalars(linear(..., out=" + std::to_string(heads) + ")) on two lines"};
  }
}

Type kernel_output(const QkvShape& s) { return Type{Kind::Heads, s.heads, s.dv}; }

// A decay g is a log decay: exp(g) <= 1 keeps the state from growing, so g must be known <= 0.
void expect_log_decay(const Operands& in, size_t i) {
  if (is_at_most_zero(in.signs[i])) return;
  const std::string& g = in.arg_name(i);
  throw RuleError{"the decay g, " + describe_arg(in, i) + ", must be a log decay, <= 0, and nothing makes '" + g +
                  "' so; write logsigmoid(...), neg(softplus(...)), neg(exp(...)) or retnet_decay, or bound it with min(" + g +
                  ", 0.0)"};
}

Type attention_type(const Operands& in) { return kernel_output(qkv_shape(in)); }

Type decay_attn_type(const Operands& in) {
  const QkvShape s = qkv_shape(in);
  const Type& g = in.args[3];
  const Type scalar_decay{Kind::Scalars, s.heads, 0};
  const Type vector_decay{Kind::Heads, s.heads, s.dk};
  if (g != scalar_decay && g != vector_decay) {
    throw RuleError{"the decay g, " + describe_arg(in, 3) + ", must be " + to_string(scalar_decay) + " (one decay per head) or " +
                    to_string(vector_decay) + " (one per key channel, as q and k), got " + to_string(g) +
                    "; e.g. logsigmoid of head_scalars(linear(x, out=" + std::to_string(s.heads) + ")), on three lines"};
  }
  expect_log_decay(in, 3);
  return kernel_output(s);
}

Type delta_rule_type(const Operands& in) {
  const QkvShape s = qkv_shape(in);
  expect_head_scalars(in, 3, "the writing strength beta", s.heads);
  return kernel_output(s);
}

Type gated_delta_rule_type(const Operands& in) {
  const QkvShape s = qkv_shape(in);
  expect_head_scalars(in, 3, "the writing strength beta", s.heads);
  expect_head_scalars(in, 4, "the decay g", s.heads);
  expect_log_decay(in, 4);
  return kernel_output(s);
}

Type retnet_decay_type(const Operands& in) {
  arg_of_kind(in, 0, {Kind::Seq});
  return Type{Kind::Scalars, in.dim("h"), 0};
}

Type gated_fuse_type(const Operands& in) { return same_type_from(in, 0); }

Type route_type(const Operands& in) {
  const int64_t paths = static_cast<int64_t>(in.args.size()) - 1;
  const Type logits{Kind::Seq, 0, paths};
  if (in.args[0] != logits) {
    throw RuleError{"the logits, " + describe_arg(in, 0) + ", must be " + to_string(logits) + ", one per path, got " +
                    to_string(in.args[0]) + "; make them with linear(..., out=" + std::to_string(paths) + ")"};
  }
  return same_type_from(in, 1);
}

Type path_stats_type(const Operands& in) {
  same_type_from(in, 0);
  return Type{Kind::Seq, 0, 2 * static_cast<int64_t>(in.args.size())};
}

// Paths of per-head vectors, all of one type: the arguments from `first` on.
const Type& head_paths(const Operands& in, size_t first) {
  arg_of_kind(in, first, {Kind::Heads});
  return same_type_from(in, first);
}

// head_mean_abs: one statistic per path and head; head_mean_std: two.
template <int kStatistics>
Type head_stats_type(const Operands& in) {
  const Type& path = head_paths(in, 0);
  return Type{Kind::Seq, 0, kStatistics * static_cast<int64_t>(in.args.size()) * path.heads};
}

// sigmoid_fuse and head_route: gate logits heads[h, k], one per head and path, and k paths
// heads[h, d] of the same h.
Type head_gated_paths_type(const Operands& in) {
  const Type& path = head_paths(in, 1);
  const int64_t paths = static_cast<int64_t>(in.args.size()) - 1;
  const Type logits{Kind::Heads, path.heads, paths};
  if (in.args[0] != logits) {
    throw RuleError{"the gate logits, " + describe_arg(in, 0) + ", must be " + to_string(logits) + ", one per head and path, got " +
                    to_string(in.args[0]) + "; make them with split_heads(linear(..., out=" + std::to_string(paths * path.heads) +
                    "), h=" + std::to_string(path.heads) + ")"};
  }
  return path;
}

Type sigmoid_fuse_type(const Operands& in) {
  if (in.reals.at("floor") >= 1.0) {
    throw RuleError{"floor=" + format_attr_value(in.reals.at("floor")) + " leaves no room for the gate; write a floor below 1, e.g. floor=0.02"};
  }
  return head_gated_paths_type(in);
}

// ---- sign rules ----

Sign non_negative(const Operands&) { return Sign::NonNegative; }
Sign non_positive(const Operands&) { return Sign::NonPositive; }
Sign sign_of_first(const Operands& in) { return in.signs[0]; }

Sign flipped(Sign s) {
  return s == Sign::NonNegative ? Sign::NonPositive : s == Sign::NonPositive ? Sign::NonNegative : s;
}
Sign neg_sign(const Operands& in) { return flipped(in.signs[0]); }

// The sign the arguments first..end-1 share: that of a reshape, a concatenation, a sum or a
// convex combination of them.
Sign common_sign_of(const Operands& in, size_t first, size_t end) {
  bool at_least_zero = true;
  bool at_most_zero = true;
  for (size_t i = first; i < end; ++i) {
    at_least_zero = at_least_zero && is_at_least_zero(in.signs[i]);
    at_most_zero = at_most_zero && is_at_most_zero(in.signs[i]);
  }
  if (at_least_zero && at_most_zero) return Sign::Zero;
  return at_least_zero ? Sign::NonNegative : at_most_zero ? Sign::NonPositive : Sign::Any;
}
Sign common_sign(const Operands& in) { return common_sign_of(in, 0, in.signs.size()); }
Sign common_path_sign(const Operands& in) { return common_sign_of(in, 1, in.signs.size()); }
Sign gated_fuse_sign(const Operands& in) { return common_sign_of(in, 0, 2); }  // a and b; not the gate

Sign sub_sign(const Operands& in) {
  if (is_at_most_zero(in.signs[0]) && is_at_least_zero(in.signs[1])) return Sign::NonPositive;
  if (is_at_least_zero(in.signs[0]) && is_at_most_zero(in.signs[1])) return Sign::NonNegative;
  return Sign::Any;
}
Sign mul_sign(const Operands& in) {
  if (in.signs[0] == Sign::Zero || in.signs[1] == Sign::Zero) return Sign::Zero;
  if (in.signs[0] == Sign::Any || in.signs[1] == Sign::Any) return Sign::Any;
  return in.signs[0] == in.signs[1] ? Sign::NonNegative : Sign::NonPositive;
}
// The denominator of div is at least eps > 0, so the quotient has the numerator's sign.
Sign div_sign(const Operands& in) { return in.signs[0]; }
// max(a, b) >= 0 when either is; min(a, b) <= 0 when either is.
Sign max_sign(const Operands& in) {
  if (is_at_least_zero(in.signs[0]) || is_at_least_zero(in.signs[1])) return Sign::NonNegative;
  return common_sign(in);
}
Sign min_sign(const Operands& in) {
  if (is_at_most_zero(in.signs[0]) || is_at_most_zero(in.signs[1])) return Sign::NonPositive;
  return common_sign(in);
}

// ---- cost rules ----

Cost no_cost(const Operands&, const Type&, int64_t) { return {}; }

// Elementwise work on the result: kFlops FLOPs per element, no parameters, no state.
template <int kFlops>
Cost per_element(const Operands&, const Type& result, int64_t) {
  return Cost{0, static_cast<double>(kFlops) * static_cast<double>(elements(result)), 0};
}

// One [N, n] weight; on heads it is shared, so each head's vector pays for its own product.
Cost linear_cost(const Operands& in, const Type& result, int64_t) {
  const int64_t weights = in.args[0].dim * result.dim;
  return Cost{weights, 2.0 * static_cast<double>(elements(in.args[0]) * result.dim), 0};
}

// bias: one learned value per channel of the last dimension (per head for scalars).
Cost bias_cost(const Operands&, const Type& result, int64_t) {
  return Cost{result.kind == Kind::Scalars ? result.heads : result.dim, static_cast<double>(elements(result)), 0};
}

// Work per element of the first argument (reductions read every element once or a few times).
template <int kFlops>
Cost per_input_element(const Operands& in, const Type&, int64_t) {
  return Cost{0, static_cast<double>(kFlops) * static_cast<double>(elements(in.args[0])), 0};
}

// penalty: the mean of p (one FLOP per element) and the weight, once per token.
Cost penalty_cost(const Operands& in, const Type&, int64_t) {
  return Cost{0, static_cast<double>(elements(in.args[1])) + 1.0, 0};
}

// scale: one weight per channel of a seq, per head of heads and scalars.
Cost scale_cost(const Operands&, const Type& result, int64_t) {
  return Cost{result.kind == Kind::Seq ? result.dim : result.heads, static_cast<double>(elements(result)), 0};
}

// temperature: one for a seq, one per head of heads and scalars.
Cost temperature_cost(const Operands&, const Type& result, int64_t) {
  return Cost{result.kind == Kind::Seq ? 1 : result.heads, static_cast<double>(elements(result)), 0};
}

// RMSNorms: a gain over the last dimension.
template <int kFlops>
Cost rmsnorm_cost(const Operands&, const Type& result, int64_t) {
  return Cost{result.dim, static_cast<double>(kFlops) * static_cast<double>(elements(result)), 0};
}

// Depthwise convolutions: K taps per channel; a causal one keeps its last K-1 inputs as state.
template <bool kCausal>
Cost conv_cost(const Operands& in, const Type& result, int64_t) {
  const int64_t taps = result.dim * in.dim("k");
  return Cost{taps, 2.0 * static_cast<double>(taps), kCausal ? result.dim * (in.dim("k") - 1) : 0};
}

// State recurrences: an h x dk x dv state read and written once per token, kFlops per entry.
template <int kFlops>
Cost recurrence_cost(const Operands& in, const Type& result, int64_t) {
  const int64_t state = result.heads * in.args[0].dim * result.dim;
  return Cost{0, static_cast<double>(kFlops) * static_cast<double>(state), state};
}

// Softmax attention over `span` cached tokens of keys and values.
Cost cached_attention_cost(const Operands& in, const Type& result, int64_t span) {
  const int64_t cache = result.heads * span * (in.args[0].dim + result.dim);
  return Cost{0, 2.0 * static_cast<double>(cache), cache};
}

Cost swa_cost(const Operands& in, const Type& result, int64_t) {
  return cached_attention_cost(in, result, in.dim("window"));
}

// route: a softmax over k paths (about 3 FLOPs each) and a weighted sum of the paths.
Cost route_cost(const Operands& in, const Type& result, int64_t) {
  const auto paths = static_cast<double>(in.args.size() - 1);
  return Cost{0, 3.0 * paths + 2.0 * paths * static_cast<double>(elements(result)), 0};
}

// A causal FIR filter: K taps per channel, the last K-1 inputs kept as state.
Cost fir_cost(const Operands& in, const Type& result, int64_t) {
  const int64_t taps = elements(result) * in.dim("k");
  return Cost{taps, 2.0 * static_cast<double>(taps), elements(result) * (in.dim("k") - 1)};
}

// Statistics of each path per head: kFlops FLOPs per input element.
template <int kFlops>
Cost head_stats_cost(const Operands& in, const Type&, int64_t) {
  int64_t inputs = 0;
  for (const Type& t : in.args) inputs += elements(t);
  return Cost{0, static_cast<double>(kFlops) * static_cast<double>(inputs), 0};
}

// Gate weights from h*k logits (about kFlops FLOPs each) and the weighted sum of k paths.
template <int kFlops>
Cost head_gated_paths_cost(const Operands& in, const Type& result, int64_t) {
  const auto paths = static_cast<double>(in.args.size() - 1);
  return Cost{0, static_cast<double>(kFlops) * static_cast<double>(elements(in.args[0])) + 2.0 * paths * static_cast<double>(elements(result)), 0};
}

// path_stats: mean (1 FLOP per element) and standard deviation (3 per element) of each path.
Cost path_stats_cost(const Operands& in, const Type&, int64_t) {
  int64_t inputs = 0;
  for (const Type& t : in.args) inputs += elements(t);
  return Cost{0, 4.0 * static_cast<double>(inputs), 0};
}

// ---- the table ----

constexpr AttrKind kDim = AttrKind::Dimension;
constexpr AttrKind kReal = AttrKind::Real;
constexpr AttrKind kSignedReal = AttrKind::SignedReal;
constexpr AttrKind kNonNegativeReal = AttrKind::NonNegativeReal;

OperatorRules unary(std::string name, std::string meaning, SignRule sign = nullptr) {
  std::string usage = name + "(a)";
  OperatorRules rules{std::move(name), OpClass::Elementwise, std::move(usage), std::move(meaning), 1, 1, {}, same_as_argument, per_element<1>};
  rules.sign = sign;
  return rules;
}

// The elementwise operators of two arguments; either may be a number (`mul(a, 0.5)`).
OperatorRules binary(std::string name, std::string meaning, bool commutative, SignRule sign, std::vector<AttrSpec> attrs = {}) {
  std::string usage = name + "(a, b";
  for (const auto& attr : attrs) usage += ", " + attr.key + "=E";
  usage += ")";
  OperatorRules rules{std::move(name), OpClass::Binary, std::move(usage), std::move(meaning), 2, 2, std::move(attrs),
                      broadcast_type, per_element<1>, true, commutative};
  rules.takes_literals = true;
  rules.sign = sign;
  return rules;
}

OperatorRules with_sign(OperatorRules rules, SignRule sign) {
  rules.sign = sign;
  return rules;
}

// A token mixer: what each argument is for and what it keeps between tokens.
OperatorRules mixer(OperatorRules rules, std::vector<ArgRole> roles, Memory memory) {
  rules.roles = std::move(roles);
  rules.memory = memory;
  return rules;
}
constexpr ArgRole kQ = ArgRole::Query, kK = ArgRole::Key, kV = ArgRole::Value;

// The learned factors and offsets; `init=` sets where they start.
OperatorRules learned(std::string name, std::string usage, std::string meaning, AttrSpec init, CostRule cost, SignRule sign) {
  OperatorRules rules{std::move(name), OpClass::Learned, std::move(usage), std::move(meaning), 1, 1, {std::move(init)},
                      same_as_argument, cost};
  rules.sign = sign;
  return rules;
}

OperatorRules reduction(std::string name, std::string meaning, TypeRule type, CostRule cost, SignRule sign) {
  std::string usage = name + "(a)";
  OperatorRules rules{std::move(name), OpClass::Reduction, std::move(usage), std::move(meaning), 1, 1, {}, type, cost};
  rules.sign = sign;
  return rules;
}

std::vector<OperatorRules> build_table() {
  return {
      {"linear", OpClass::Projection, "linear(a, out=N)",
       "seq[n] -> seq[N], learned projection without bias (add one with bias); heads[h, d] -> heads[h, N], one weight shared by the heads",
       1, 1, {{"out", kDim}}, linear_type, linear_cost},
      with_sign({"split_heads", OpClass::Reshape, "split_heads(a, h=H)", "seq[n] -> heads[H, n/H]", 1, 1, {{"h", kDim}},
                 split_heads_type, no_cost}, sign_of_first),
      with_sign({"merge_heads", OpClass::Reshape, "merge_heads(a)", "heads[h, d] -> seq[h*d]", 1, 1, {}, merge_heads_type, no_cost},
                sign_of_first),
      with_sign({"head_scalars", OpClass::Reshape, "head_scalars(a)", "seq[h] -> scalars[h], one channel per head", 1, 1, {},
                 head_scalars_type, no_cost}, sign_of_first),
      with_sign({"concat", OpClass::Reshape, "concat(a, b)", "seq[n], seq[m] -> seq[n+m]", 2, 2, {}, concat_type, no_cost},
                common_sign),
      unary("silu", "a * sigmoid(a)"),
      unary("sigmoid", "1 / (1 + exp(-a))", non_negative),
      unary("softplus", "log(1 + exp(a))", non_negative),
      unary("logsigmoid", "log(sigmoid(a)) <= 0, a decay in log space", non_positive),
      unary("elu1", "elu(a) + 1 > 0, the linear-attention feature map", non_negative),
      unary("relu", "max(a, 0)", non_negative),
      unary("exp", "exp(a)", non_negative),
      unary("tanh", "tanh(a)"),
      unary("neg", "-a", neg_sign),
      unary("gelu", "a * Phi(a), the exact GELU (Phi the normal CDF, by erf)"),
      unary("abs", "|a|", non_negative),
      unary("log", "log(max(a, 1e-12)): guarded against zero and negative inputs"),
      unary("sqrt", "sqrt(max(a, 1e-12)): guarded against negative inputs", non_negative),
      binary("add", "a + b", true, common_sign),
      binary("sub", "a - b", false, sub_sign),
      binary("mul", "a * b", true, mul_sign),
      binary("div", "a / max(b, eps): for positive denominators (sums, norms); eps > 0 guards against zero", false, div_sign,
             {{"eps", kReal}}),
      binary("max", "elementwise maximum; with a number it clamps from below: max(a, 0.05)", true,
             max_sign),
      binary("min", "elementwise minimum; with a number it clamps from above: min(a, 0.0)", true,
             min_sign),
      learned("scale", "scale(a) or scale(a, init=V)", "learned factor per channel (seq) or per head (heads, scalars), starts at init > 0",
              {"init", kReal, 1.0}, scale_cost, sign_of_first),
      learned("temperature", "temperature(a) or temperature(a, init=V)",
              "divides by a learned positive temperature, one for seq, one per head for heads and scalars, starts at init",
              {"init", kReal, 1.0}, temperature_cost, sign_of_first),
      learned("sharpen", "sharpen(a) or sharpen(a, init=V)",
              "multiplies by softplus of a learned parameter, one for seq, one per head for heads and scalars, starts at init",
              {"init", kReal, 1.0}, temperature_cost, sign_of_first),
      learned("bias", "bias(a) or bias(a, init=V)",
              "adds a learned value per channel of the last dimension (shared by the heads; per head for scalars), starts at init",
              {"init", kSignedReal, 0.0}, bias_cost, nullptr),
      {"l2norm", OpClass::Norm, "l2norm(a)", "L2 normalisation over the last dimension (seq, heads)", 1, 1, {}, norm_type,
       per_element<3>},
      with_sign({"softmax", OpClass::Norm, "softmax(a)", "softmax over the last dimension (seq, heads)", 1, 1, {}, norm_type,
                 per_element<4>}, non_negative),
      {"rmsnorm", OpClass::Norm, "rmsnorm(a)", "RMSNorm with a learned gain over the last dimension (seq, heads)", 1, 1, {},
       norm_type, rmsnorm_cost<4>},
      {"gated_rmsnorm", OpClass::Norm, "gated_rmsnorm(a, g)", "rmsnorm(a) * silu(g), a and g of one type (seq, heads)", 2, 2,
       {}, gated_norm_type, rmsnorm_cost<6>},
      {"short_conv", OpClass::LocalMix, "short_conv(a, k=K)", "causal depthwise convolution over the last K tokens", 1, 1,
       {{"k", kDim}}, conv_type, conv_cost<true>},
      {"noncausal_conv", OpClass::LocalMix, "noncausal_conv(a, k=K)",
       "centred depthwise convolution, looks K/2 tokens ahead: not causal", 1, 1, {{"k", kDim}}, conv_type, conv_cost<false>,
       false},
      {"fir", OpClass::LocalMix, "fir(a, k=K) or fir(a, k=K, dirac=V, noise=S)",
       "causal depthwise FIR filter over the last K tokens (seq, heads); the current token's tap starts at dirac (1.0: the "
       "identity), every tap plus N(0, noise^2) (0.0)",
       1, 1, {{"k", kDim}, {"dirac", kSignedReal, 1.0}, {"noise", kNonNegativeReal, 0.0}}, fir_type, fir_cost},
      with_sign({"seq_mean", OpClass::LocalMix, "seq_mean(a)", "mean over the whole sequence at every position: not causal", 1, 1,
                 {}, same_as_argument, per_element<1>, false}, sign_of_first),
      mixer({"linear_attn", OpClass::Recurrence, "linear_attn(q, k, v)", "S_t = S_{t-1} + k_t v_t^T, o_t = S_t^T q_t", 3, 3, {},
             attention_type, recurrence_cost<4>},
            {kQ, kK, kV}, Memory::Matrix),
      mixer({"decay_attn", OpClass::Recurrence, "decay_attn(q, k, v, g)",
             "S_t = diag(exp g_t) S_{t-1} + k_t v_t^T, g scalars[h] or heads[h, dk] in log space", 4, 4, {}, decay_attn_type,
             recurrence_cost<4>},
            {kQ, kK, kV, ArgRole::Decay}, Memory::Matrix),
      mixer({"delta_rule", OpClass::Recurrence, "delta_rule(q, k, v, beta)",
             "S_t = S_{t-1} - beta_t k_t (k_t^T S_{t-1} - v_t^T), beta scalars[h] in (0, 1)", 4, 4, {}, delta_rule_type,
             recurrence_cost<6>},
            {kQ, kK, kV, ArgRole::Beta}, Memory::Matrix),
      mixer({"gated_delta_rule", OpClass::Recurrence, "gated_delta_rule(q, k, v, beta, g)",
             "S_t = exp(g_t) S_{t-1} - beta_t k_t (exp(g_t) k_t^T S_{t-1} - v_t^T), beta and g scalars[h]", 5, 5, {},
             gated_delta_rule_type, recurrence_cost<6>},
            {kQ, kK, kV, ArgRole::Beta, ArgRole::Decay}, Memory::Matrix),
      mixer({"swa", OpClass::Recurrence, "swa(q, k, v, window=W)", "softmax attention over the last W tokens", 3, 3,
             {{"window", kDim}}, attention_type, swa_cost},
            {kQ, kK, kV}, Memory::Window),
      mixer({"softmax_attn", OpClass::Recurrence, "softmax_attn(q, k, v)",
             "causal full softmax attention: quadratic, reference only", 3, 3, {}, attention_type, cached_attention_cost},
            {kQ, kK, kV}, Memory::Everything),
      with_sign({"retnet_decay", OpClass::Recurrence, "retnet_decay(a, h=H)",
                 "seq[n] -> scalars[H], the fixed RetNet log decays log(1 - 2^(-5-i))", 1, 1, {{"h", kDim}}, retnet_decay_type,
                 no_cost}, non_positive),
      with_sign({"gated_fuse", OpClass::Routing, "gated_fuse(a, b, g)", "sigmoid(g) * a + (1 - sigmoid(g)) * b, all of one type", 3,
                 3, {}, gated_fuse_type, per_element<4>}, gated_fuse_sign),
      with_sign({"route", OpClass::Routing, "route(logits, p1, ..., pk, temp=T)",
                 "per-token softmax over k >= 2 paths of one type, weights softmax(logits / temp), logits seq[k]", 3, kVariadic,
                 {{"temp", kReal}}, route_type, route_cost}, common_path_sign),
      {"path_stats", OpClass::Routing, "path_stats(p1, ..., pk)",
       "seq[2k]: per-token mean and standard deviation of each path over its channels", 1, kVariadic, {}, path_stats_type,
       path_stats_cost},
      {"head_mean_abs", OpClass::Routing, "head_mean_abs(p1, ..., pk)",
       "seq[k*h]: per token, path and head, the mean absolute value over the head's channels", 1, kVariadic, {},
       head_stats_type<1>, head_stats_cost<2>},
      {"head_mean_std", OpClass::Routing, "head_mean_std(p1, ..., pk)",
       "seq[2*k*h]: per token and path, the mean of each head's channels, then their standard deviation", 1, kVariadic, {},
       head_stats_type<2>, head_stats_cost<4>},
      with_sign({"sigmoid_fuse", OpClass::Routing, "sigmoid_fuse(g, p1, ..., pk, floor=F)",
                 "sum over paths of (F + (1 - F) * sigmoid(g_p)) * p, g heads[h, k] per head and path", 2, kVariadic,
                 {{"floor", kReal}}, sigmoid_fuse_type, head_gated_paths_cost<4>}, common_path_sign),
      with_sign({"head_route", OpClass::Routing, "head_route(g, p1, ..., pk)",
                 "per token and head, softmax over k >= 2 paths of the logits g heads[h, k]", 3, kVariadic, {},
                 head_gated_paths_type, head_gated_paths_cost<3>}, common_path_sign),
      {"weighted_paths", OpClass::Routing, "weighted_paths(w, p1, ..., pk)",
       "sum over paths of w_p * p, weights w seq[k] (one per path, shared by the heads) or heads[h, k] (per head and path)", 2, kVariadic, {},
       weighted_paths_type, head_gated_paths_cost<0>},
      reduction("reduce_sum", "sum over the last dimension: seq[n] -> seq[1], heads[h, d] -> scalars[h]", reduction_type,
                per_input_element<1>, sign_of_first),
      reduction("reduce_mean", "mean over the last dimension: seq[n] -> seq[1], heads[h, d] -> scalars[h]", reduction_type,
                per_input_element<1>, sign_of_first),
      reduction("reduce_max", "maximum over the last dimension: seq[n] -> seq[1], heads[h, d] -> scalars[h]", reduction_type,
                per_input_element<1>, sign_of_first),
      reduction("entropy", "-sum p log(max(p, 1e-12)) over the last dimension, of a distribution p (softmax)", reduction_type,
                per_input_element<3>, non_negative),
      reduction("heads_mean", "mean over the heads, given to every head: heads[h, d], scalars[h] -> same", across_heads_type,
                per_input_element<2>, sign_of_first),
      reduction("heads_std", "standard deviation over the heads, given to every head: heads[h, d], scalars[h] -> same",
                across_heads_type, per_input_element<4>, non_negative),
      with_sign({"penalty", OpClass::Auxiliary, "penalty(a, p, weight=W)",
                 "a unchanged; training adds W * mean(p) to the loss: an auxiliary loss", 2, 2, {{"weight", kReal}},
                 penalty_type, penalty_cost}, sign_of_first),
  };
}

}  // namespace

const std::vector<OperatorRules>& operator_rules() {
  static const std::vector<OperatorRules> table = build_table();
  return table;
}

// Every statement of every program is looked up here, several times: an index, built once.
template <typename Row>
const Row* find_by_name(const std::vector<Row>& rows, std::string_view name) {
  static const NameTable<const Row*> index = [&rows] {
    NameTable<const Row*> by_name(rows.size());
    for (const Row& row : rows) by_name.insert(row.name, &row);
    return by_name;
  }();
  const Row* const* row = index.find(name);
  return row ? *row : nullptr;
}

const OperatorRules* find_rules(std::string_view name) { return find_by_name(operator_rules(), name); }

bool is_default(const OperatorRules& rules, std::string_view key, double value) {
  return std::any_of(rules.attrs.begin(), rules.attrs.end(),
                     [&](const AttrSpec& spec) { return spec.key == key && spec.default_real == value; });
}

int64_t elements(const Type& t) {
  switch (t.kind) {
    case Kind::Seq: return t.dim;
    case Kind::Heads: return t.heads * t.dim;
    case Kind::Scalars: return t.heads;
  }
  return 0;
}

int64_t divisor_at_most(int64_t n, int64_t limit) {
  for (int64_t d = std::min(n, limit); d > 1; --d) {
    if (n % d == 0) return d;
  }
  return 1;
}

}  // namespace detail

const std::vector<OpInfo>& operators() {
  static const std::vector<OpInfo> infos = [] {
    std::vector<OpInfo> out;
    for (const auto& rules : detail::operator_rules()) {
      std::vector<std::string> keys;
      for (const auto& attr : rules.attrs) keys.push_back(attr.key);
      out.push_back(OpInfo{rules.name, rules.op_class, rules.causal, std::move(keys), rules.usage + ": " + rules.meaning,
                           rules.roles, rules.memory});
    }
    return out;
  }();
  return infos;
}

const OpInfo* find_operator(std::string_view name) { return detail::find_by_name(operators(), name); }

std::optional<size_t> argument_slot(std::string_view op, ArgRole role) {
  const OpInfo* info = find_operator(op);
  if (!info) return std::nullopt;
  for (size_t i = 0; i < info->roles.size(); ++i) {
    if (info->roles[i] == role) return i;
  }
  return std::nullopt;
}

bool is_subquadratic_mixer(std::string_view op) {
  const OpInfo* info = find_operator(op);
  return info && (info->memory == Memory::Matrix || info->memory == Memory::Window);
}

const std::vector<std::string>& subquadratic_mixers() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const OpInfo& info : operators()) {
      if (is_subquadratic_mixer(info.name)) out.push_back(info.name);
    }
    return out;
  }();
  return names;
}

std::string to_string(const Type& t) {
  switch (t.kind) {
    case Kind::Seq: return "seq[" + std::to_string(t.dim) + "]";
    case Kind::Heads: return "heads[" + std::to_string(t.heads) + ", " + std::to_string(t.dim) + "]";
    case Kind::Scalars: return "scalars[" + std::to_string(t.heads) + "]";
  }
  return "";
}

}  // namespace asiarch::lang
