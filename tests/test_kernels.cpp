// The fused CPU recurrence kernels and the chunkwise forms (kernels/recurrences.h) against their
// libtorch-op references.
// Relative error, everywhere below: rel(a, b) = max|a - b| / max(max|b|, 1e-6), with b the
// float64 reference run on the very values a was computed from. Assertions are REQUIREs: torch's
// glog headers define a CHECK macro of their own.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <string>
#include <vector>

#include "kernels/recurrences.h"
#include "tests/tensor_helpers.h"

namespace kernels = asiarch::kernels;

using namespace asiarch::testing;

namespace {

enum class Kernel { Linear, ScalarDecay, VectorDecay, Delta, GatedDelta, Swa };

struct Case {
  Kernel kernel;
  int64_t window = 0;  // swa only
};

std::string name_of(const Case& c) {
  switch (c.kernel) {
    case Kernel::Linear: return "linear_attn";
    case Kernel::ScalarDecay: return "decay_attn (scalar)";
    case Kernel::VectorDecay: return "decay_attn (vector)";
    case Kernel::Delta: return "delta_rule";
    case Kernel::GatedDelta: return "gated_delta_rule";
    case Kernel::Swa: return "swa (window " + std::to_string(c.window) + ")";
  }
  return "";
}

const std::vector<Case> kRecurrences = {{Kernel::Linear}, {Kernel::ScalarDecay}, {Kernel::VectorDecay}, {Kernel::Delta},
                                        {Kernel::GatedDelta}};

struct Sizes {
  int64_t batch, heads, steps, dk, dv;
};

// Inputs in float64 with the ranges the models produce: keys L2-normalised for the delta rules,
// beta in (0, 1), log decays g = logsigmoid(...) <= 0. Order: q, k, v, then g or beta, g.
std::vector<torch::Tensor> make_inputs(const Case& c, const Sizes& s, uint64_t seed) {
  torch::manual_seed(seed);
  const auto f64 = torch::dtype(torch::kDouble);
  auto q = torch::randn({s.batch, s.heads, s.steps, s.dk}, f64) / std::sqrt(static_cast<double>(s.dk));
  auto k = torch::randn({s.batch, s.heads, s.steps, s.dk}, f64) / std::sqrt(static_cast<double>(s.dk));
  auto v = torch::randn({s.batch, s.heads, s.steps, s.dv}, f64);
  auto log_decay = [&](bool vector) {
    const auto shape = vector ? std::vector<int64_t>{s.batch, s.heads, s.steps, s.dk} : std::vector<int64_t>{s.batch, s.heads, s.steps};
    return torch::log_sigmoid(torch::randn(shape, f64) + 2.0);
  };
  auto beta = [&] { return torch::sigmoid(torch::randn({s.batch, s.heads, s.steps}, f64)); };
  switch (c.kernel) {
    case Kernel::Linear:
    case Kernel::Swa: return {q, k, v};
    case Kernel::ScalarDecay: return {q, k, v, log_decay(false)};
    case Kernel::VectorDecay: return {q, k, v, log_decay(true)};
    case Kernel::Delta: return {q, torch::nn::functional::normalize(k, torch::nn::functional::NormalizeFuncOptions().dim(-1)), v, beta()};
    case Kernel::GatedDelta: {
      auto b = beta();
      return {q, torch::nn::functional::normalize(k, torch::nn::functional::NormalizeFuncOptions().dim(-1)), v, b, log_decay(false)};
    }
  }
  return {};
}

// Which form of a recurrence runs: the fused CPU kernel (what kernels::linear_attn etc. run on
// CPU float tensors), the chunkwise form (what they run elsewhere), or the token-by-token
// reference.
enum class Form { Fused, Chunkwise, Reference };

// A chunk of 16 tokens: the lengths of kLengths are shorter than one, a whole number of them
// (at the benchmark's 512) and neither.
constexpr int64_t kTestChunk = 16;

torch::Tensor run(const Case& c, Form form, const std::vector<torch::Tensor>& x) {
  namespace chunk = kernels::chunkwise;
  namespace ref = kernels::reference;
  switch (c.kernel) {
    case Kernel::Linear:
      return form == Form::Fused ? kernels::linear_attn(x[0], x[1], x[2])
             : form == Form::Chunkwise ? chunk::linear_attn(x[0], x[1], x[2], kTestChunk) : ref::linear_attn(x[0], x[1], x[2]);
    case Kernel::ScalarDecay:
    case Kernel::VectorDecay:
      return form == Form::Fused ? kernels::decay_attn(x[0], x[1], x[2], x[3])
             : form == Form::Chunkwise ? chunk::decay_attn(x[0], x[1], x[2], x[3], kTestChunk) : ref::decay_attn(x[0], x[1], x[2], x[3]);
    case Kernel::Delta:
      return form == Form::Fused ? kernels::delta_rule(x[0], x[1], x[2], x[3])
             : form == Form::Chunkwise ? chunk::delta_rule(x[0], x[1], x[2], x[3], kTestChunk) : ref::delta_rule(x[0], x[1], x[2], x[3]);
    case Kernel::GatedDelta:
      return form == Form::Fused       ? kernels::gated_delta_rule(x[0], x[1], x[2], x[3], x[4])
             : form == Form::Chunkwise ? chunk::gated_delta_rule(x[0], x[1], x[2], x[3], x[4], kTestChunk)
                                       : ref::gated_delta_rule(x[0], x[1], x[2], x[3], x[4]);
    case Kernel::Swa:
      return form == Form::Fused ? kernels::swa(x[0], x[1], x[2], c.window)
             : form == Form::Chunkwise ? chunk::swa(x[0], x[1], x[2], c.window, kTestChunk) : ref::swa(x[0], x[1], x[2], c.window);
  }
  return {};
}

Evaluation evaluate(const Case& c, Form form, const std::vector<torch::Tensor>& inputs, const torch::Tensor& upstream) {
  return asiarch::testing::evaluate([&](const std::vector<torch::Tensor>& x) { return run(c, form, x); }, inputs, upstream);
}

// A form (the fused kernel unless said) in `type` on `device` against the float64 reference on
// the CPU, on the same values: forward and the gradients of every input.
void check_against_reference(const Case& c, const Sizes& s, torch::ScalarType type, double tolerance, uint64_t seed, Form form = Form::Fused,
                             const torch::Device& device = torch::kCPU) {
  INFO(name_of(c) << (form == Form::Chunkwise ? " (chunkwise)" : "") << " B=" << s.batch << " H=" << s.heads << " T=" << s.steps << " dk=" << s.dk << " dv=" << s.dv << " "
                  << c10::toString(type) << " on " << device);
  const auto inputs = cast(make_inputs(c, s, seed), type);
  const auto upstream = torch::randn({s.batch, s.heads, s.steps, s.dv}, torch::dtype(type));
  const auto fast = evaluate(c, form, on(inputs, device), upstream.to(device));
  const auto reference = evaluate(c, Form::Reference, cast(inputs, torch::kDouble), upstream.to(torch::kDouble));
  require_close(fast, reference, inputs, type, tolerance);
}

const std::vector<int64_t> kLengths = {1, 7, 33, 100};
const std::vector<std::pair<int64_t, int64_t>> kHeadSizes = {{12, 20}, {32, 16}};  // (dk, dv)

}  // namespace

TEST_CASE("float32 recurrences match the float64 reference, forward and backward", "[kernels]") {
  for (const auto& c : kRecurrences)
    for (const int64_t steps : kLengths)
      for (const auto& [dk, dv] : kHeadSizes) check_against_reference(c, {2, 3, steps, dk, dv}, torch::kFloat, 1e-4, 11);
}

TEST_CASE("float32 sliding-window attention matches the float64 reference, forward and backward", "[kernels]") {
  for (const int64_t steps : kLengths)
    for (const int64_t window : {int64_t{1}, int64_t{5}, steps + 10})
      for (const auto& [dk, dv] : kHeadSizes)
        check_against_reference({Kernel::Swa, window}, {2, 3, steps, dk, dv}, torch::kFloat, 1e-4, 12);
}

TEST_CASE("float64 kernels match the float64 reference to rounding", "[kernels]") {
  for (const auto& c : kRecurrences) check_against_reference(c, {2, 2, 40, 12, 20}, torch::kDouble, 1e-10, 13);
  check_against_reference({Kernel::Swa, 9}, {2, 2, 40, 12, 20}, torch::kDouble, 1e-10, 13);
}

TEST_CASE("chunkwise forms match the float64 reference to rounding in float64 and to 1e-4 in float32", "[kernels][chunkwise]") {
  // Lengths shorter than a chunk, of several chunks, and not a multiple of the chunk.
  for (const auto& c : kRecurrences) {
    for (const int64_t steps : kLengths) {
      check_against_reference(c, {2, 2, steps, 12, 20}, torch::kDouble, 1e-10, 14, Form::Chunkwise);
      check_against_reference(c, {2, 2, steps, 12, 20}, torch::kFloat, 1e-4, 15, Form::Chunkwise);
    }
  }
  for (const int64_t window : {int64_t{1}, int64_t{5}, int64_t{20}, int64_t{200}}) {
    check_against_reference({Kernel::Swa, window}, {2, 2, 100, 12, 20}, torch::kDouble, 1e-10, 16, Form::Chunkwise);
    check_against_reference({Kernel::Swa, window}, {2, 2, 37, 12, 20}, torch::kFloat, 1e-4, 17, Form::Chunkwise);
  }
}

TEST_CASE("half precision runs the chunkwise forms, computed in float32", "[kernels][chunkwise]") {
  const Sizes s{1, 2, 40, 8, 8};
  for (const auto& c : kRecurrences) {
    INFO(name_of(c));
    const auto inputs = make_inputs(c, s, 18);
    const auto half = run(c, Form::Fused, cast(inputs, torch::kBFloat16));
    REQUIRE(half.scalar_type() == torch::kBFloat16);
    // bfloat16 keeps 8 bits of mantissa: the inputs' rounding alone moves outputs by about 1%.
    REQUIRE(relative_error(half, run(c, Form::Reference, inputs)) < 5e-2);
  }
}

// Run by tools/gpu-check.sh (ctest -L cuda); CI has no GPU, so [cuda] tests are not in the default label.
TEST_CASE("on CUDA every recurrence matches the CPU float64 reference, forward and backward", "[kernels][cuda]") {
  if (!torch::cuda::is_available()) FAIL("this test needs a libtorch with CUDA and a GPU: see tools/gpu-check.sh");
  const torch::Device cuda(torch::kCUDA, 0);
  for (const auto& c : kRecurrences) {
    for (const int64_t steps : kLengths) {
      // What kernels:: runs on a GPU (the chunkwise form at its own chunk size), and the chunkwise
      // form at a chunk shorter than most lengths.
      check_against_reference(c, {2, 3, steps, 12, 20}, torch::kFloat, 1e-4, 21, Form::Fused, cuda);
      check_against_reference(c, {2, 2, steps, 12, 20}, torch::kFloat, 1e-4, 22, Form::Chunkwise, cuda);
      check_against_reference(c, {2, 2, steps, 12, 20}, torch::kDouble, 1e-10, 23, Form::Chunkwise, cuda);
    }
  }
  for (const int64_t window : {int64_t{1}, int64_t{5}, int64_t{200}}) {
    check_against_reference({Kernel::Swa, window}, {2, 2, 100, 12, 20}, torch::kFloat, 1e-4, 24, Form::Fused, cuda);
    check_against_reference({Kernel::Swa, window}, {2, 2, 37, 12, 20}, torch::kDouble, 1e-10, 25, Form::Chunkwise, cuda);
  }
}

TEST_CASE("kernel gradients match central finite differences in float64", "[kernels]") {
  // T = 35 crosses a checkpoint of the delta rules (every 32 tokens); dk != dv.
  const Sizes s{1, 2, 35, 3, 5};
  std::vector<Case> cases = kRecurrences;
  cases.push_back({Kernel::Swa, 4});
  for (const auto& c : cases) {
    INFO(name_of(c));
    const auto inputs = make_inputs(c, s, 21);
    const auto upstream = torch::randn({s.batch, s.heads, s.steps, s.dv}, torch::dtype(torch::kDouble));
    const auto analytic = evaluate(c, Form::Fused, inputs, upstream).grads;
    auto loss = [&](const std::vector<torch::Tensor>& x) { return (run(c, Form::Fused, x) * upstream).sum().item<double>(); };
    const double step = 1e-6;
    for (size_t i = 0; i < inputs.size(); ++i) {
      INFO("input " << i);
      auto numeric = torch::zeros_like(inputs[i]);
      auto flat = numeric.view(-1);
      for (int64_t e = 0; e < inputs[i].numel(); ++e) {
        auto shifted = [&](double by) {
          std::vector<torch::Tensor> x = inputs;
          x[i] = inputs[i].clone();
          x[i].view(-1)[e] += by;
          return loss(x);
        };
        flat[e] = (shifted(step) - shifted(-step)) / (2 * step);
      }
      REQUIRE(relative_error(analytic[i], numeric) < 1e-6);
    }
  }
}

TEST_CASE("kernels are bit-identical run to run, across thread counts and without autograd", "[kernels]") {
  const Sizes s{2, 3, 37, 16, 24};
  std::vector<Case> cases = kRecurrences;
  cases.push_back({Kernel::Swa, 8});
  const int threads = at::get_num_threads();
  for (const auto& c : cases) {
    INFO(name_of(c));
    const auto inputs = cast(make_inputs(c, s, 31), torch::kFloat);
    const auto upstream = torch::randn({s.batch, s.heads, s.steps, s.dv});
    const auto first = evaluate(c, Form::Fused, inputs, upstream);
    at::set_num_threads(threads == 1 ? 2 : 1);
    const auto second = evaluate(c, Form::Fused, inputs, upstream);
    at::set_num_threads(threads);
    require_identical(first, second);
    torch::NoGradGuard no_grad;
    REQUIRE(torch::equal(run(c, Form::Fused, inputs), first.out));
  }
}

TEST_CASE("kernels take non-contiguous inputs and inputs of other dtypes", "[kernels]") {
  std::vector<Case> cases = kRecurrences;
  cases.push_back({Kernel::Swa, 6});
  // dv = 8 is padded to a strip; the delta rules read and write dv = 16 in place.
  for (const Sizes& s : {Sizes{2, 3, 21, 16, 8}, Sizes{2, 3, 21, 12, 16}}) {
    for (const auto& c : cases) {
      INFO(name_of(c) << " dk=" << s.dk << " dv=" << s.dv);
      const auto inputs = cast(make_inputs(c, s, 41), torch::kFloat);
      // The same values behind [B, T, H, d] strides, as split_heads gives them, and an upstream
      // gradient in that layout too, as merge_heads gives it.
      std::vector<torch::Tensor> strided;
      for (const auto& x : inputs) strided.push_back(x.transpose(1, 2).contiguous().transpose(1, 2));
      REQUIRE_FALSE(strided[0].is_contiguous());
      const auto upstream = torch::randn({s.batch, s.heads, s.steps, s.dv});
      const auto plain = evaluate(c, Form::Fused, inputs, upstream);
      const auto from_strided = evaluate(c, Form::Fused, strided, upstream.transpose(1, 2).contiguous().transpose(1, 2));
      require_identical(plain, from_strided);
      const bool in_place = (c.kernel == Kernel::Delta || c.kernel == Kernel::GatedDelta) && s.dv % 16 == 0;
      if (in_place) {
        // Output and gradients keep the [B, T, H, d] layout: merge_heads and split_heads' backward copy nothing.
        REQUIRE(from_strided.out.transpose(1, 2).is_contiguous());
        for (size_t i = 0; i < 3; ++i) REQUIRE(from_strided.grads[i].transpose(1, 2).is_contiguous());
      }
      // Every input other than q in float64: computed in q's dtype, gradients in each input's own.
      std::vector<torch::Tensor> mixed = inputs;
      for (size_t i = 1; i < mixed.size(); ++i) mixed[i] = mixed[i].to(torch::kDouble);
      const auto from_mixed = evaluate(c, Form::Fused, mixed, upstream);
      REQUIRE(torch::equal(plain.out, from_mixed.out));
      REQUIRE(from_mixed.grads[1].scalar_type() == torch::kDouble);
    }
  }
}

TEST_CASE("kernels reject inputs of the wrong shape", "[kernels]") {
  const auto q = torch::randn({1, 2, 5, 4});
  REQUIRE_THROWS(kernels::linear_attn(q, torch::randn({1, 2, 5, 3}), torch::randn({1, 2, 5, 4})));
  REQUIRE_THROWS(kernels::linear_attn(q, q, torch::randn({1, 2, 6, 4})));
  REQUIRE_THROWS(kernels::decay_attn(q, q, q, torch::zeros({1, 2, 5, 3})));
  REQUIRE_THROWS(kernels::gated_delta_rule(q, q, q, torch::zeros({1, 2, 5}), torch::zeros({1, 2, 5, 4})));
  REQUIRE_THROWS(kernels::swa(q, q, q, 0));
}

TEST_CASE("kernels match the reference at benchmark head sizes", "[kernels][slow]") {
  std::vector<Case> cases = kRecurrences;
  cases.push_back({Kernel::Swa, 64});
  for (const auto& c : cases) check_against_reference(c, {1, 2, 512, 64, 64}, torch::kFloat, 1e-4, 51);
}
