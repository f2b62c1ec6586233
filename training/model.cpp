// Model assembly: the mixer a program describes, operator by operator (lang/LANGUAGE.md),
// and the fixed model around it (docs/ARCHITECTURE.md); the memory counter.
#include "training/model.h"

#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "common/rng.h"
#include "lang/program_analysis.h"
#include "kernels/layers.h"
#include "kernels/recurrences.h"

namespace asiarch::model {
std::string error_text(const std::exception& e) {
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&e)) return torch_error->what_without_backtrace();
  return e.what();
}

void set_torch_threads(int threads) {
  static std::once_flag interop;
  // libtorch accepts the inter-op count once, before any inter-op work.
  std::call_once(interop, [] {
    try {
      torch::set_num_interop_threads(1);
    } catch (const c10::Error&) {
    }
  });
  torch::set_num_threads(threads);
}

// ---- memory ----

struct MemoryScope::Counter {
  std::atomic<int64_t> live{0};
  std::atomic<int64_t> peak{0};

  void add(int64_t bytes) {
    const int64_t now = live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t seen = peak.load(std::memory_order_relaxed);
    while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  void remove(int64_t bytes) { live.fetch_sub(bytes, std::memory_order_relaxed); }
};

namespace {

// The counter of this thread's innermost scope; allocations outside any scope are not wrapped.
thread_local std::shared_ptr<MemoryScope::Counter> current_counter;

// A counted block: the inner allocator's block, its size and the counter to give it back to
// (which may be freed on another thread, or after its scope ended).
struct CountedBlock {
  c10::DataPtr inner;
  int64_t bytes;
  std::shared_ptr<MemoryScope::Counter> counter;
};

// Counted blocks by data pointer. A block's context is its data pointer, as c10's raw interface
// requires (Allocator::raw_allocate, which oneDNN's bfloat16 kernels use); the bookkeeping lives
// here instead.
std::mutex counted_mutex;
std::unordered_map<void*, CountedBlock> counted_blocks;
c10::DeleterFnPtr inner_raw_deleter = nullptr;

void release_counted(void* pointer) {
  std::unique_lock lock(counted_mutex);
  auto block = counted_blocks.find(pointer);
  if (block == counted_blocks.end()) {
    // Allocated outside any scope: the inner allocator's own block.
    lock.unlock();
    inner_raw_deleter(pointer);
    return;
  }
  block->second.counter->remove(block->second.bytes);
  c10::DataPtr inner = std::move(block->second.inner);
  counted_blocks.erase(block);
  lock.unlock();  // the inner block is freed after the lock
}

// Wraps c10's CPU allocator, whose blocks have their data pointer as context and free_cpu as
// raw deleter; counted blocks keep both, so the raw interface works on either.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}

  c10::DataPtr allocate(size_t bytes) const override {
    c10::DataPtr data = inner_->allocate(bytes);
    if (!current_counter || data.get() == nullptr) return data;
    const auto size = static_cast<int64_t>(bytes);
    current_counter->add(size);
    void* pointer = data.get();
    const c10::Device device = data.device();
    {
      std::lock_guard lock(counted_mutex);
      counted_blocks.emplace(pointer, CountedBlock{std::move(data), size, current_counter});
    }
    return {pointer, pointer, &release_counted, device};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release_counted; }

 private:
  c10::Allocator* inner_;
};

void install_counting_allocator() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    c10::Allocator* inner = c10::GetCPUAllocator();
    inner_raw_deleter = inner->raw_deleter();
    TORCH_CHECK(inner_raw_deleter != nullptr, "the CPU allocator offers no raw deleter to count memory with");
    static CountingAllocator counting(inner);
    c10::SetCPUAllocator(&counting, /*priority=*/100);
  });
}

}  // namespace

MemoryScope::MemoryScope() : counter_(std::make_shared<Counter>()), outer_(current_counter) {
  install_counting_allocator();
  current_counter = counter_;
}

MemoryScope::~MemoryScope() { current_counter = outer_; }

uint64_t MemoryScope::live_bytes() const { return static_cast<uint64_t>(counter_->live.load()); }
uint64_t MemoryScope::peak_bytes() const { return static_cast<uint64_t>(counter_->peak.load()); }

// ---- parameters ----

namespace {

using lang::Kind;
using lang::Type;

constexpr double kNormEpsilon = 1e-6;
constexpr double kGuardFloor = 1e-12;  // log and sqrt read max(a, this): finite values and gradients

torch::Tensor rms_norm(const torch::Tensor& a, const torch::Tensor& gain) { return kernels::rms_norm(a, gain, kNormEpsilon); }

std::vector<float> normal_values(Rng& stream, int64_t count, double std) {
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = static_cast<float>(std * stream.normal());
  return values;
}

std::vector<float> uniform_values(Rng& stream, int64_t count, double bound) {
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = static_cast<float>(bound * (2.0 * stream.uniform() - 1.0));
  return values;
}

// `count` values spaced evenly in log space from `low` to `high`.
std::vector<float> log_spaced(int64_t count, double low, double high) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const double at = count > 1 ? static_cast<double>(i) / static_cast<double>(count - 1) : 0.0;
    values[static_cast<size_t>(i)] = static_cast<float>(std::exp(std::log(low) + at * (std::log(high) - std::log(low))));
  }
  return values;
}

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Registers a parameter on `owner` with the given initial values. Weights are drawn from a
// stream named by the parameter's full path, so they do not depend on the order of building.
class ParameterMaker {
 public:
  ParameterMaker(torch::nn::Module& owner, std::string path, uint64_t seed) : owner_(owner), path_(std::move(path)), seed_(seed) {}

  Rng stream(const std::string& name) const { return Rng(seed_, path_ + "." + name); }

  torch::Tensor make(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& values) {
    auto tensor = torch::from_blob(const_cast<float*>(values.data()), shape, torch::kFloat32).clone();
    return owner_.register_parameter(name, tensor);
  }
  torch::Tensor ones(const std::string& name, const std::vector<int64_t>& shape) {
    return make(name, shape, std::vector<float>(static_cast<size_t>(product(shape)), 1.0f));
  }
  torch::Tensor normal(const std::string& name, const std::vector<int64_t>& shape, double std) {
    if (std == 0.0) return make(name, shape, std::vector<float>(static_cast<size_t>(product(shape)), 0.0f));
    Rng s = stream(name);
    return make(name, shape, normal_values(s, product(shape), std));
  }
  // A [out, in] projection: Xavier normal (Glorot and Bengio, 2010), or zeros for one that ends
  // a residual branch in training (see LanguageModelImpl::Block).
  torch::Tensor projection(const std::string& name, int64_t out, int64_t in, bool zero = false) {
    return normal(name, {out, in}, zero ? 0.0 : std::sqrt(2.0 / static_cast<double>(in + out)));
  }

 private:
  torch::nn::Module& owner_;
  std::string path_;
  uint64_t seed_;
};

}  // namespace

// ---- the mixer ----

using Values = std::vector<torch::Tensor>;
using Operation = std::function<torch::Tensor(const Values& args)>;

struct MixerImpl::Node {
  std::vector<int> args;          // indices into the values: earlier nodes, lang::detail::kInput for x, kLiteral for a number
  Operation run;
  std::vector<size_t> last_uses;  // values no later node reads: released after this one
  double penalty_weight = 0.0;    // penalty(a, p, weight=W): W, and mean(p) joins the auxiliary loss
  torch::Tensor projection;       // a linear's weight [out, in]; undefined for other operators
  // A linear whose input later linears read as well computes their products with its own
  // (share_input_linears): those nodes, in order; each of them then has `made_by_sibling`.
  std::vector<size_t> siblings;
  bool made_by_sibling = false;
};

namespace {

// A per-head or per-channel parameter [h] (or [n]) shaped to broadcast over a value of type t.
torch::Tensor per_head(const torch::Tensor& parameter, const Type& t) {
  switch (t.kind) {
    case Kind::Seq: return parameter;
    case Kind::Heads: return parameter.view({-1, 1, 1});
    case Kind::Scalars: return parameter.view({-1, 1});
  }
  return parameter;
}

// scalars[h] [B, h, T] as a factor of heads[h, d] [B, h, T, d]; other values as they are.
torch::Tensor broadcastable(const torch::Tensor& value, const Type& type, const Type& result) {
  return type.kind == Kind::Scalars && result.kind == Kind::Heads ? value.unsqueeze(-1) : value;
}

// A causal depthwise FIR filter over time of a seq [B, T, n] or heads [B, h, T, d] value with
// taps [channels, K], channels n or h*d (head-major).
torch::Tensor fir_filter(const torch::Tensor& a, const torch::Tensor& taps, const Type& t) {
  if (t.kind == Kind::Seq) return kernels::depthwise_conv(a, taps, taps.size(1) - 1, 0);
  const auto by_token = a.transpose(1, 2).reshape({a.size(0), a.size(2), t.heads * t.dim});
  const auto filtered = kernels::depthwise_conv(by_token, taps, taps.size(1) - 1, 0);
  return filtered.view({a.size(0), a.size(2), t.heads, t.dim}).transpose(1, 2);
}

// Per-head statistics of heads [B, h, T, d] paths over each head's channels, as seq [B, T, .]:
// per path its h mean absolute values (head_mean_abs), or its h means then h standard
// deviations (head_mean_std).
torch::Tensor head_statistics(const Values& paths, bool mean_and_std) {
  std::vector<torch::Tensor> stats;
  for (const auto& p : paths) {
    if (!mean_and_std) {
      stats.push_back(p.abs().mean(-1).transpose(1, 2));
      continue;
    }
    auto [variance, mean] = torch::var_mean(p, {-1}, /*unbiased=*/false, /*keepdim=*/false);
    stats.push_back(mean.transpose(1, 2));
    // The epsilon keeps the gradient finite where a head is constant over its channels.
    stats.push_back(torch::sqrt(variance + kNormEpsilon).transpose(1, 2));
  }
  return torch::cat(stats, -1);
}

// sum_p weights[..., p] * paths[p], weights [B, h, T, k] over heads [B, h, T, d] paths (the
// arguments after the logits).
torch::Tensor weighted_paths(const torch::Tensor& weights, const Values& a) {
  torch::Tensor out = a[1] * weights.select(-1, 0).unsqueeze(-1);
  for (size_t i = 2; i < a.size(); ++i) out = out + a[i] * weights.select(-1, static_cast<int64_t>(i - 1)).unsqueeze(-1);
  return out;
}

// The time dimension of a value of type t.
int64_t time_dim(const Type& t) { return t.kind == Kind::Seq ? 1 : 2; }

// Per-token mean and standard deviation of a path over all its channels: two [B, T] tensors.
std::pair<torch::Tensor, torch::Tensor> token_stats(const torch::Tensor& path, const Type& t) {
  std::vector<int64_t> channels;
  switch (t.kind) {
    case Kind::Seq: channels = {2}; break;
    case Kind::Heads: channels = {1, 3}; break;
    case Kind::Scalars: channels = {1}; break;
  }
  auto [variance, mean] = torch::var_mean(path, channels, /*unbiased=*/false, /*keepdim=*/false);
  // The epsilon keeps the gradient finite where a path is constant over its channels.
  return {mean, torch::sqrt(variance + kNormEpsilon)};
}

// A route weight [B, T] shaped to scale a path of type t.
torch::Tensor route_weight(const torch::Tensor& weight, const Type& t) {
  switch (t.kind) {
    case Kind::Seq: return weight.unsqueeze(-1);
    case Kind::Heads: return weight.unsqueeze(1).unsqueeze(-1);
    case Kind::Scalars: return weight.unsqueeze(1);
  }
  return weight;
}

// Adds an auxiliary-loss term to a running sum that starts undefined (no term yet).
void add_term(torch::Tensor& sum, const torch::Tensor& term) { sum = sum.defined() ? sum + term : term; }

Operation unary(torch::Tensor (*f)(const torch::Tensor&)) {
  return [f](const Values& a) { return f(a[0]); };
}

// The statements whose value, through ops that only rescale or reshape it, becomes the decay g
// of a recurrence. Their learned magnitudes start so that decays are slow (see the `scale` and
// `temperature` cases of build_operation).
std::vector<bool> decay_paths(const lang::detail::CheckedProgram& checked) {
  const auto& statements = checked.statements;
  std::vector<bool> on_path(statements.size(), false);
  auto mark = [&](int arg) {
    if (arg >= 0) on_path[static_cast<size_t>(arg)] = true;
  };
  for (size_t i = statements.size(); i-- > 0;) {
    if (!checked.graph.live[i]) continue;
    const std::string& op = statements[i].rules->name;
    const auto& args = checked.graph.args[i];
    if (op == "decay_attn") mark(args[3]);
    if (op == "gated_delta_rule") mark(args[4]);
    const bool passes_on = statements[i].rules->op_class == lang::OpClass::Elementwise ||
                           statements[i].rules->op_class == lang::OpClass::Learned || op == "split_heads" ||
                           op == "head_scalars";
    if (on_path[i] && passes_on) mark(args[0]);
  }
  return on_path;
}

// A linear map; with `bfloat16`, its matrix product runs in bfloat16 and returns bfloat16. The
// weight stays float32 (autograd casts its gradient back), so the optimiser updates full precision.
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, bool bfloat16) {
  if (!bfloat16) return kernels::linear(x, weight);
  return torch::linear(x.to(torch::kBFloat16), weight.to(torch::kBFloat16));
}

// residual + project(x, weight): in float32 the product is added onto the residual in place
// (kernels::add_linear_), so the residual must be pre_norm's copy.
torch::Tensor add_projection(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& weight, bool bfloat16) {
  if (bfloat16) return residual + project(x, weight, bfloat16);
  return kernels::add_linear_(residual, x, weight);
}

// The tokens before and after the current one that a convolution of `taps` reads.
std::pair<int64_t, int64_t> conv_reach(const std::string& op, int64_t taps) {
  const int64_t after = op == "short_conv" ? 0 : taps / 2;
  return {taps - 1 - after, after};
}

// How a statement's parameters start, beyond its operator.
struct InitRole {
  bool on_decay_path = false;    // see decay_paths()
  bool zero_projection = false;  // a linear that ends the residual branch, in training
};

// The operation of one checked statement; its parameters are registered on `params`' owner.
Operation build_operation(const lang::detail::CheckedStatement& s, const InitRole& role, const std::function<ParameterMaker&()>& params,
                          bool bfloat16_matmuls) {
  const std::string& op = s.rules->name;
  const lang::OpClass op_class = s.rules->op_class;
  const std::vector<Type>& in = s.operands.args;
  const Type out = s.type;
  const bool on_decay_path = role.on_decay_path;

  if (op == "linear") {
    torch::Tensor weight = params().projection("weight", out.dim, in[0].dim, role.zero_projection);
    return [weight, bfloat16_matmuls](const Values& a) { return project(a[0], weight, bfloat16_matmuls); };
  }
  if (op == "split_heads") {
    const int64_t heads = out.heads, width = out.dim;
    return [heads, width](const Values& a) { return a[0].view({a[0].size(0), a[0].size(1), heads, width}).transpose(1, 2); };
  }
  if (op == "merge_heads") {
    const int64_t width = out.dim;
    return [width](const Values& a) { return a[0].transpose(1, 2).reshape({a[0].size(0), a[0].size(2), width}); };
  }
  if (op == "head_scalars") return [](const Values& a) { return a[0].transpose(1, 2); };
  if (op == "concat") return [](const Values& a) { return torch::cat({a[0], a[1]}, -1); };

  if (op == "silu") return unary(kernels::silu);
  if (op == "sigmoid") return unary(torch::sigmoid);
  if (op == "softplus") return [](const Values& a) { return torch::softplus(a[0]); };
  if (op == "logsigmoid") return unary(torch::log_sigmoid);
  if (op == "elu1") return [](const Values& a) { return torch::elu(a[0]) + 1.0; };
  if (op == "relu") return unary(torch::relu);
  if (op == "exp") return unary(torch::exp);
  if (op == "tanh") return unary(torch::tanh);
  if (op == "neg") return unary(torch::neg);
  // The exact GELU by its formula: torch::gelu's CPU kernel frees memory past the allocator
  // that MemoryScope counts through.
  if (op == "gelu") return [](const Values& a) { return 0.5 * a[0] * (1.0 + torch::erf(a[0] * M_SQRT1_2)); };
  if (op == "abs") return unary(torch::abs);
  if (op == "log") return [](const Values& a) { return torch::log(torch::clamp_min(a[0], kGuardFloor)); };
  if (op == "sqrt") return [](const Values& a) { return torch::sqrt(torch::clamp_min(a[0], kGuardFloor)); };

  if (op_class == lang::OpClass::Binary) {
    using Combine = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;
    Combine combine;
    if (op == "add") combine = [](const torch::Tensor& x, const torch::Tensor& y) { return x + y; };
    if (op == "sub") combine = [](const torch::Tensor& x, const torch::Tensor& y) { return x - y; };
    if (op == "mul") combine = [](const torch::Tensor& x, const torch::Tensor& y) { return x * y; };
    if (op == "max") combine = [](const torch::Tensor& x, const torch::Tensor& y) { return torch::maximum(x, y); };
    if (op == "min") combine = [](const torch::Tensor& x, const torch::Tensor& y) { return torch::minimum(x, y); };
    if (op == "div") {
      const double eps = s.operands.real("eps");
      combine = [eps](const torch::Tensor& x, const torch::Tensor& y) { return x / torch::clamp_min(y, eps); };
    }
    const Type left = in[0], right = in[1];
    const std::optional<double> left_number = s.operands.literals[0], right_number = s.operands.literals[1];
    // A number is a 0-dimensional tensor of the other operand's type.
    return [combine, left, right, out, left_number, right_number](const Values& a) {
      const torch::Tensor x = left_number ? torch::scalar_tensor(*left_number, a[1].options()) : broadcastable(a[0], left, out);
      const torch::Tensor y = right_number ? torch::scalar_tensor(*right_number, a[0].options()) : broadcastable(a[1], right, out);
      return combine(x, y);
    };
  }
  // The learned factors and offsets start at init=; for scale and temperature on a decay path,
  // the default init gives the decay's own start instead. Written or not, a default is the
  // default: the canonical form does not tell them apart.
  const double init = s.operands.reals.has("init") ? s.operands.real("init") : 0.0;
  const bool default_init = lang::detail::is_default(*s.rules, "init", init);
  if (op == "scale") {
    const int64_t count = out.kind == Kind::Seq ? out.dim : out.heads;
    // On a decay path the scale plays Mamba2's A (Dao and Gu, 2024): per head (or channel) it
    // starts spread over [1/256, 1/16], so that for inputs of order one the decays exp(g) start
    // between about 0.94 and 0.996, slow and multi-scale like RetNet's.
    torch::Tensor weight = on_decay_path && default_init
                               ? params().make("weight", {count}, log_spaced(count, 1.0 / 256.0, 1.0 / 16.0))
                               : params().make("weight", {count}, std::vector<float>(static_cast<size_t>(count), static_cast<float>(init)));
    return [weight, out](const Values& a) { return a[0] * per_head(weight, out); };
  }
  if (op == "temperature") {
    const int64_t count = out.kind == Kind::Seq ? 1 : out.heads;
    // Learned in log space, so it stays positive. On a decay path it starts at GLA's fixed
    // tau = 16 (Yang et al., 2023).
    const float start = on_decay_path && default_init ? std::log(16.0f) : static_cast<float>(std::log(init));
    torch::Tensor log_temperature =
        params().make("log_temperature", {count}, std::vector<float>(static_cast<size_t>(count), start));
    return [log_temperature, out](const Values& a) { return a[0] * per_head(torch::exp(-log_temperature), out); };
  }

  if (op == "sharpen") {
    const int64_t count = out.kind == Kind::Seq ? 1 : out.heads;
    // Starts at softplus(log(exp(init) - 1)) = init (1 by default: the logits as they are).
    const auto start = static_cast<float>(std::log(std::expm1(init)));
    torch::Tensor raw = params().make("raw_scale", {count}, std::vector<float>(static_cast<size_t>(count), start));
    return [raw, out](const Values& a) { return a[0] * per_head(torch::softplus(raw), out); };
  }
  if (op == "bias") {
    // One value per channel of the last dimension (shared by the heads), per head for scalars.
    const int64_t count = out.kind == Kind::Scalars ? out.heads : out.dim;
    torch::Tensor bias = params().make("bias", {count}, std::vector<float>(static_cast<size_t>(count), static_cast<float>(init)));
    const bool per_head_scalars = out.kind == Kind::Scalars;
    return [bias, per_head_scalars](const Values& a) { return a[0] + (per_head_scalars ? bias.view({-1, 1}) : bias); };
  }
  if (op == "softmax") return [](const Values& a) { return torch::softmax(a[0], -1); };

  if (op == "l2norm") {
    return [](const Values& a) { return kernels::l2_norm(a[0], kNormEpsilon); };
  }
  if (op == "rmsnorm") {
    torch::Tensor gain = params().ones("gain", {out.dim});
    return [gain](const Values& a) { return rms_norm(a[0], gain); };
  }
  if (op == "gated_rmsnorm") {
    torch::Tensor gain = params().ones("gain", {out.dim});
    return [gain](const Values& a) { return rms_norm(a[0], gain) * kernels::silu(a[1]); };
  }

  if (op == "short_conv" || op == "noncausal_conv") {
    const int64_t taps = s.operands.dim("k");
    // PyTorch's Conv1d default for a depthwise kernel, U(-1/sqrt(K), 1/sqrt(K)), which the
    // short convolutions of Mamba2 and flash-linear-attention keep.
    Rng stream = params().stream("taps");
    torch::Tensor weight = params().make("taps", {out.dim, taps}, uniform_values(stream, out.dim * taps, 1.0 / std::sqrt(static_cast<double>(taps))));
    const auto [before, after] = conv_reach(op, taps);
    return [weight, before = before, after = after](const Values& a) { return kernels::depthwise_conv(a[0], weight, before, after); };
  }
  if (op == "fir") {
    const int64_t taps = s.operands.dim("k");
    const int64_t channels = lang::detail::elements(out);
    // By default the identity: the last tap (the current token) 1, the others 0, so the filter
    // starts as a copy of its input and learns what to look back at (FusionGatedFIRNet,
    // arXiv:2507.18074). ASI-Arch's mixers also start it as the identity plus N(0, 0.01^2 to
    // 0.03^2) noise, or as N(0, 0.02^2) alone (dirac=0.0): `dirac` and `noise` say which.
    const double dirac = s.operands.real("dirac"), noise = s.operands.real("noise");
    std::vector<float> start(static_cast<size_t>(channels * taps), 0.0f);
    if (noise > 0.0) {
      Rng stream = params().stream("taps");
      start = normal_values(stream, channels * taps, noise);
    }
    for (int64_t c = 0; c < channels; ++c) start[static_cast<size_t>(c * taps + taps - 1)] += static_cast<float>(dirac);
    torch::Tensor weight = params().make("taps", {channels, taps}, start);
    return [weight, out](const Values& a) { return fir_filter(a[0], weight, out); };
  }
  if (op == "seq_mean") {
    const int64_t dim = time_dim(out);
    return [dim](const Values& a) { return a[0].mean(dim, /*keepdim=*/true).expand_as(a[0]); };
  }

  // The kernels take their inputs in any layout (kernels/recurrences.h).
  if (op == "linear_attn") return [](const Values& a) { return kernels::linear_attn(a[0], a[1], a[2]); };
  if (op == "decay_attn") return [](const Values& a) { return kernels::decay_attn(a[0], a[1], a[2], a[3]); };
  if (op == "delta_rule") return [](const Values& a) { return kernels::delta_rule(a[0], a[1], a[2], a[3]); };
  if (op == "gated_delta_rule") return [](const Values& a) { return kernels::gated_delta_rule(a[0], a[1], a[2], a[3], a[4]); };
  if (op == "swa") {
    const int64_t window = s.operands.dim("window");
    return [window](const Values& a) { return kernels::swa(a[0], a[1], a[2], window); };
  }
  if (op == "softmax_attn") return [](const Values& a) { return kernels::softmax_attn(a[0], a[1], a[2]); };
  if (op == "retnet_decay") {
    // RetNet's fixed multi-scale decays gamma_i = 1 - 2^(-5-i) (Sun et al., 2023), in log space.
    std::vector<float> decays(static_cast<size_t>(out.heads));
    for (size_t i = 0; i < decays.size(); ++i) decays[i] = static_cast<float>(std::log1p(-std::exp2(-5.0 - static_cast<double>(i))));
    const auto table = torch::tensor(decays).view({1, -1, 1});
    // On the CPU .to() is the table itself; on a GPU, a copy of a few floats.
    return [table](const Values& a) { return table.to(a[0].device()).expand({a[0].size(0), -1, a[0].size(1)}); };
  }

  if (op == "gated_fuse") {
    // sigmoid(g) * a + (1 - sigmoid(g)) * b
    return [](const Values& a) { return torch::lerp(a[1], a[0], torch::sigmoid(a[2])); };
  }
  if (op == "route") {
    const double temperature = s.operands.reals.at("temp");
    const Type path = in[1];
    return [temperature, path](const Values& a) {
      const auto weights = torch::softmax(a[0] / temperature, -1);
      torch::Tensor out = a[1] * route_weight(weights.select(-1, 0), path);
      for (size_t i = 2; i < a.size(); ++i) out = out + a[i] * route_weight(weights.select(-1, static_cast<int64_t>(i - 1)), path);
      return out;
    };
  }
  if (op == "path_stats") {
    const Type path = in[0];
    return [path](const Values& a) {
      std::vector<torch::Tensor> stats;
      for (const auto& p : a) {
        auto [mean, deviation] = token_stats(p, path);
        stats.push_back(mean);
        stats.push_back(deviation);
      }
      return torch::stack(stats, -1);
    };
  }
  if (op == "head_mean_abs" || op == "head_mean_std") {
    const bool mean_and_std = op == "head_mean_std";
    return [mean_and_std](const Values& a) { return head_statistics(a, mean_and_std); };
  }
  if (op == "sigmoid_fuse") {
    const double floor = s.operands.reals.at("floor");
    return [floor](const Values& a) { return weighted_paths(floor + (1.0 - floor) * torch::sigmoid(a[0]), a); };
  }
  if (op == "head_route") return [](const Values& a) { return weighted_paths(torch::softmax(a[0], -1), a); };
  if (op == "weighted_paths") {
    // seq[k] weights over heads paths are shared by the heads: [B, T, k] -> [B, 1, T, k].
    return [](const Values& a) { return weighted_paths(a[0].dim() < a[1].dim() ? a[0].unsqueeze(1) : a[0], a); };
  }
  if (op == "penalty") return [](const Values& a) { return a[0]; };  // its term: MixerImpl::forward

  // Reductions over the last dimension: seq [B, T, n] -> [B, T, 1], heads [B, h, T, d] -> [B, h, T].
  const bool keep_dim = !in.empty() && in[0].kind == Kind::Seq;
  if (op == "reduce_sum") return [keep_dim](const Values& a) { return a[0].sum(-1, keep_dim); };
  if (op == "reduce_mean") return [keep_dim](const Values& a) { return a[0].mean(-1, keep_dim); };
  if (op == "reduce_max") return [keep_dim](const Values& a) { return a[0].amax(-1, keep_dim); };
  if (op == "entropy") {
    return [keep_dim](const Values& a) { return -(a[0] * torch::log(torch::clamp_min(a[0], kGuardFloor))).sum(-1, keep_dim); };
  }
  // Statistics over the heads (dimension 1 of heads and scalars), given to every head.
  if (op == "heads_mean") return [](const Values& a) { return a[0].mean(1, /*keepdim=*/true).expand_as(a[0]); };
  if (op == "heads_std") {
    return [](const Values& a) {
      // The epsilon keeps the gradient finite where the heads agree.
      return torch::sqrt(a[0].var(1, /*unbiased=*/false, /*keepdim=*/true) + kNormEpsilon).expand_as(a[0]);
    };
  }
  throw std::logic_error("model: no module for operator '" + op + "'");
}

}  // namespace

MixerImpl::MixerImpl(const lang::Program& program, int64_t d_model, uint64_t seed, const std::string& prefix, bool zero_output,
                     bool bfloat16_matmuls) {
  // The context length only matters for cost figures, not for types.
  const lang::detail::CheckedProgram checked = lang::detail::check_program(program, lang::ModelShape{d_model, 1}, program.name);
  const std::vector<bool> decay = decay_paths(checked);
  std::vector<int> node_of(checked.statements.size(), -1);
  std::vector<std::string> names, ops;  // of each node
  for (size_t i = 0; i < checked.statements.size(); ++i) {
    if (!checked.graph.live[i]) continue;
    const std::string& name = program.body[i].name;
    std::optional<ParameterMaker> maker;
    const std::function<ParameterMaker&()> params = [&]() -> ParameterMaker& {
      if (!maker) maker.emplace(*register_module(name, std::make_shared<torch::nn::Module>(name)), prefix + "." + name, seed);
      return *maker;
    };
    auto node = std::make_shared<Node>();
    for (int arg : checked.graph.args[i]) node->args.push_back(arg < 0 ? arg : node_of[static_cast<size_t>(arg)]);
    const InitRole role{decay[i], zero_output && static_cast<int>(i) == checked.graph.result};
    node->run = build_operation(checked.statements[i], role, params, bfloat16_matmuls);
    if (checked.statements[i].rules->op_class == lang::OpClass::Auxiliary) node->penalty_weight = checked.statements[i].operands.real("weight");
    node_of[i] = static_cast<int>(nodes_.size());
    nodes_.push_back(std::move(node));
    names.push_back(name);
    ops.push_back(checked.statements[i].rules->name);
    if (ops.back() == "linear") nodes_.back()->projection = *named_parameters().find(name + ".weight");
  }
  bfloat16_matmuls_ = bfloat16_matmuls;
  const int result = checked.graph.result == lang::detail::kInput ? lang::detail::kInput : node_of[static_cast<size_t>(checked.graph.result)];
  result_ = result == lang::detail::kInput ? nodes_.size() : static_cast<size_t>(result);
  std::vector<int> readers(nodes_.size(), 0);  // of each node's value
  for (const auto& node : nodes_) {
    for (int arg : node->args) {
      if (arg >= 0) ++readers[static_cast<size_t>(arg)];
    }
  }
  fuse_conv_silu(names, ops, readers);
  // A returned linear map that no statement reads can take the residual into its product.
  result_is_added_onto_ = result_ < nodes_.size() && nodes_[result_]->projection.defined() && readers[result_] == 0;
  if (!bfloat16_matmuls) share_input_linears();
  // Release each value after its last reader, so a forward holds only what is still needed.
  std::vector<size_t> last_reader(nodes_.size(), 0);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (int arg : nodes_[i]->args) {
      if (arg >= 0) last_reader[static_cast<size_t>(arg)] = i;
    }
  }
  for (size_t v = 0; v < nodes_.size(); ++v) {
    if (v != result_ && last_reader[v] > v) nodes_[last_reader[v]]->last_uses.push_back(v);
  }
}

// A short convolution whose one reader is a SiLU (DeltaNet's and Mamba-2's q, k and v) runs as
// one kernel, kernels::depthwise_conv_silu, with the same bits; the SiLU then passes its input on.
void MixerImpl::fuse_conv_silu(const std::vector<std::string>& names, const std::vector<std::string>& ops,
                               const std::vector<int>& readers) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (ops[i] != "silu" || nodes_[i]->args[0] < 0) continue;
    const auto conv = static_cast<size_t>(nodes_[i]->args[0]);
    if ((ops[conv] != "short_conv" && ops[conv] != "noncausal_conv") || readers[conv] != 1 || conv == result_) continue;
    const torch::Tensor taps = *named_parameters().find(names[conv] + ".taps");
    const auto [before, after] = conv_reach(ops[conv], taps.size(1));
    nodes_[conv]->run = [taps, before = before, after = after](const Values& a) {
      return kernels::depthwise_conv_silu(a[0], taps, before, after);
    };
    nodes_[i]->run = [](const Values& a) { return a[0]; };
  }
}

// Linears that read the same value (DeltaNet's q, k, v and beta read x) run as one node,
// kernels::linears, whose backward adds their gradients of the input inside the products instead
// of leaving autograd an addition per further linear. A returned linear that takes the residual
// runs on its own.
void MixerImpl::share_input_linears() {
  std::map<int, size_t> first_reader;  // of each value that linears read
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& node = *nodes_[i];
    if (!node.projection.defined() || node.args[0] == lang::detail::kLiteral || (result_is_added_onto_ && i == result_)) continue;
    const auto [first, inserted] = first_reader.emplace(node.args[0], i);
    if (inserted) continue;
    nodes_[first->second]->siblings.push_back(i);
    node.made_by_sibling = true;
  }
}

torch::Tensor MixerImpl::forward(const torch::Tensor& x) { return run(x, nullptr); }

torch::Tensor MixerImpl::forward_onto(torch::Tensor& residual, const torch::Tensor& x) { return run(x, &residual); }

// The mixer's value, or with a residual residual + value: when the returned statement is a linear
// map, its product is added onto the residual in the same call.
torch::Tensor MixerImpl::run(const torch::Tensor& x, torch::Tensor* residual) {
  auxiliary_loss_ = torch::Tensor();
  if (result_ == nodes_.size()) return residual != nullptr ? *residual + x : x;  // `return x`: the identity
  const bool onto_residual = residual != nullptr && result_is_added_onto_;
  Values values(nodes_.size());
  Values args;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& node = *nodes_[i];
    // A number's place stays empty: its operation holds the number.
    for (int arg : node.args) {
      args.push_back(arg == lang::detail::kInput ? x : arg == lang::detail::kLiteral ? torch::Tensor() : values[static_cast<size_t>(arg)]);
    }
    if (!node.siblings.empty()) {
      std::vector<torch::Tensor> weights = {node.projection};
      for (size_t sibling : node.siblings) weights.push_back(nodes_[sibling]->projection);
      const std::vector<torch::Tensor> products = kernels::linears(args[0], weights);
      values[i] = products[0];
      for (size_t j = 0; j < node.siblings.size(); ++j) values[node.siblings[j]] = products[j + 1];
    } else if (!node.made_by_sibling) {
      values[i] = onto_residual && i == result_ ? add_projection(*residual, args[0], node.projection, bfloat16_matmuls_) : node.run(args);
    }
    if (node.penalty_weight != 0.0) add_term(auxiliary_loss_, node.penalty_weight * args[1].mean());
    args.clear();
    for (size_t done : node.last_uses) values[done] = torch::Tensor();
  }
  return residual != nullptr && !onto_residual ? *residual + values[result_] : values[result_];
}

// ---- the fixed model ----

int64_t mlp_hidden_width(int64_t d_model) { return (8 * d_model / 3 + 7) / 8 * 8; }

// The projections that end the residual branches (the mixer's returned linear, the MLP's down
// projection) start at zero in training, as in ReZero (Bachlechner et al., 2020) and
// modded-nanogpt: every block starts as the identity, so the token embeddings reach the head
// undisturbed. Measured on the MQAR explore setting (with 0.02-normal projections elsewhere),
// DeltaNet passed the recall plateau with them in three runs of three, with GPT-2's
// 0.02 / sqrt(2 * layers) in one of three.
struct LanguageModelImpl::Block : torch::nn::Module {
  Block(const lang::Program& program, const ModelConfig& config, const std::string& name) {
    ParameterMaker params(*this, name, config.seed);
    const int64_t d = config.d_model, hidden = mlp_hidden_width(d);
    mixer_gain = params.ones("mixer_gain", {d});
    mixer = register_module("mixer", Mixer(program, d, config.seed, name + ".mixer", config.zero_residual_projections, config.bfloat16_matmuls));
    bfloat16 = config.bfloat16_matmuls;
    mlp_gain = params.ones("mlp_gain", {d});
    mlp_gate = params.projection("mlp_gate", hidden, d);
    mlp_up = params.projection("mlp_up", hidden, d);
    mlp_down = params.projection("mlp_down", d, hidden, config.zero_residual_projections);
  }

  torch::Tensor forward(torch::Tensor h) {
    auto [mixer_input, mixer_residual] = kernels::pre_norm(h, mixer_gain, kNormEpsilon);
    h = mixer->forward_onto(mixer_residual, mixer_input);
    auto [normed, mlp_residual] = kernels::pre_norm(h, mlp_gain, kNormEpsilon);
    // The gate and the value are one matrix product; kernels::swiglu takes [gate | value].
    const auto gate_value = project(normed, torch::cat({mlp_gate, mlp_up}), bfloat16);
    return add_projection(mlp_residual, kernels::swiglu(gate_value), mlp_down, bfloat16);
  }

  torch::Tensor mixer_gain, mlp_gain, mlp_gate, mlp_up, mlp_down;
  bool bfloat16 = false;
  Mixer mixer{nullptr};
};

LanguageModelImpl::LanguageModelImpl(const lang::Program& program, const ModelConfig& config) {
  ParameterMaker params(*this, "model", config.seed);
  embedding_ = params.normal("embedding", {config.vocab, config.d_model}, 0.02);
  for (int64_t i = 0; i < config.layers; ++i) {
    const std::string name = "block" + std::to_string(i);
    blocks_.push_back(register_module(name, std::make_shared<Block>(program, config, name)));
  }
  final_gain_ = params.ones("final_gain", {config.d_model});
}

torch::Tensor LanguageModelImpl::forward(const torch::Tensor& tokens) {
  torch::Tensor h = kernels::embedding(embedding_, tokens);
  auxiliary_loss_ = torch::Tensor();
  for (const auto& block : blocks_) {
    h = block->forward(h);
    if (block->mixer->auxiliary_loss().defined()) add_term(auxiliary_loss_, block->mixer->auxiliary_loss());
  }
  return kernels::linear(rms_norm(h, final_gain_), embedding_);
}

std::vector<safetensors::TensorBytes> parameter_tensors(const torch::nn::Module& module) {
  std::vector<safetensors::TensorBytes> out;
  for (const auto& item : module.named_parameters()) {
    const torch::Tensor value = item.value().detach().to(torch::kCPU).contiguous();
    safetensors::TensorBytes t;
    t.name = item.key();
    if (value.scalar_type() == torch::kFloat32) t.dtype = safetensors::DType::F32;
    else if (value.scalar_type() == torch::kFloat64) t.dtype = safetensors::DType::F64;
    else throw std::invalid_argument("parameter " + t.name + " is neither float32 nor float64");
    t.shape = value.sizes().vec();
    t.data.assign(static_cast<const char*>(value.data_ptr()), value.nbytes());
    out.push_back(std::move(t));
  }
  return out;
}

void load_parameters(torch::nn::Module& module, const std::vector<safetensors::TensorBytes>& tensors) {
  std::map<std::string, const safetensors::TensorBytes*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t;
  torch::NoGradGuard no_grad;
  auto parameters = module.named_parameters();
  for (auto& item : parameters) {
    const auto it = by_name.find(item.key());
    if (it == by_name.end()) throw std::invalid_argument("no tensor for the parameter " + item.key());
    const safetensors::TensorBytes& t = *it->second;
    if (t.shape != item.value().sizes().vec()) throw std::invalid_argument("the tensor " + t.name + " does not have its parameter's shape");
    const auto dtype = t.dtype == safetensors::DType::F32 ? torch::kFloat32 : t.dtype == safetensors::DType::F64 ? torch::kFloat64 : torch::kInt64;
    const auto values = torch::from_blob(const_cast<char*>(t.data.data()), t.shape, dtype);
    item.value().copy_(values);
    by_name.erase(it);
  }
  if (!by_name.empty()) throw std::invalid_argument("the tensor " + by_name.begin()->first + " is no parameter of the model");
}

int64_t LanguageModelImpl::mixer_params() const {
  int64_t count = 0;
  for (const auto& p : blocks_.front()->mixer->parameters()) count += p.numel();
  return count;
}

}  // namespace asiarch::model
