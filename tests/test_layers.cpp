// The fused layers (kernels/layers.h) against their libtorch-op forms: forward and gradients in
// float32 against the float64 op form, float64 to rounding, finite differences, and bit-identity
// across thread counts. Assertions are REQUIREs: torch's glog headers define a CHECK macro.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/layers.h"
#include "tests/tensor_helpers.h"

namespace kernels = asiarch::kernels;

using namespace asiarch::testing;

namespace {

constexpr double kEpsilon = 1e-6;

// A layer under test: its inputs (float64), and the function of them in either form.
struct Layer {
  std::string name;
  std::vector<torch::Tensor> inputs;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&, bool reference)> run;
};

// With `silu`, the convolution followed by SiLU (kernels::depthwise_conv_silu).
Layer convolution(int64_t batch, int64_t length, int64_t channels, int64_t before, int64_t after, uint64_t seed, bool silu = false) {
  torch::manual_seed(seed);
  const auto f64 = torch::dtype(torch::kDouble);
  return {std::string(silu ? "depthwise_conv_silu" : "depthwise_conv") + " B=" + std::to_string(batch) + " T=" + std::to_string(length) +
              " n=" + std::to_string(channels) + " before=" + std::to_string(before) + " after=" + std::to_string(after),
          {torch::randn({batch, length, channels}, f64), torch::randn({channels, before + after + 1}, f64)},
          [before, after, silu](const std::vector<torch::Tensor>& x, bool reference) {
            if (reference) {
              const auto out = kernels::reference::depthwise_conv(x[0], x[1], before, after);
              return silu ? kernels::reference::silu(out) : out;
            }
            return silu ? kernels::depthwise_conv_silu(x[0], x[1], before, after) : kernels::depthwise_conv(x[0], x[1], before, after);
          }};
}

Layer rms_norm(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  const auto f64 = torch::dtype(torch::kDouble);
  const int64_t width = shape.back();
  return {"rms_norm width " + std::to_string(width) + " rows " + std::to_string(torch::randn(shape).numel() / width),
          {torch::randn(shape, f64) * 3.0, torch::randn({width}, f64) + 1.0},
          [](const std::vector<torch::Tensor>& x, bool reference) {
            return reference ? kernels::reference::rms_norm(x[0], x[1], kEpsilon) : kernels::rms_norm(x[0], x[1], kEpsilon);
          }};
}

Layer l2_norm(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  return {"l2_norm width " + std::to_string(shape.back()),
          {torch::randn(shape, torch::dtype(torch::kDouble))},
          [](const std::vector<torch::Tensor>& x, bool reference) {
            return reference ? kernels::reference::l2_norm(x[0], kEpsilon) : kernels::l2_norm(x[0], kEpsilon);
          }};
}

// Inputs of scale 4, so that the sigmoid's tails are reached.
Layer silu(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  return {"silu " + std::to_string(shape.back()),
          {torch::randn(shape, torch::dtype(torch::kDouble)) * 4.0},
          [](const std::vector<torch::Tensor>& x, bool reference) {
            return reference ? kernels::reference::silu(x[0]) : kernels::silu(x[0]);
          }};
}

// [gate | value], each of `shape`; the gate of scale 4.
Layer swiglu(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  const auto f64 = torch::dtype(torch::kDouble);
  return {"swiglu " + std::to_string(shape.back()),
          {torch::cat({torch::randn(shape, f64) * 4.0, torch::randn(shape, f64)}, -1)},
          [](const std::vector<torch::Tensor>& x, bool reference) {
            return reference ? kernels::reference::swiglu(x[0]) : kernels::swiglu(x[0]);
          }};
}

// x [..., in] W^T for W [out, in]; with `residual`, added onto a residual [..., out].
Layer linear(std::vector<int64_t> shape, int64_t out, uint64_t seed, bool residual = false) {
  torch::manual_seed(seed);
  const auto f64 = torch::dtype(torch::kDouble);
  std::vector<torch::Tensor> inputs = {torch::randn(shape, f64), torch::randn({out, shape.back()}, f64)};
  auto out_shape = shape;
  out_shape.back() = out;
  if (residual) inputs.push_back(torch::randn(out_shape, f64));
  return {std::string(residual ? "add_linear" : "linear") + " in " + std::to_string(shape.back()) + " out " + std::to_string(out), inputs,
          [residual](const std::vector<torch::Tensor>& x, bool reference) {
            if (reference) return residual ? x[2] + torch::linear(x[0], x[1]) : torch::linear(x[0], x[1]);
            if (!residual) return kernels::linear(x[0], x[1]);
            auto sum = x[2].clone();
            return kernels::add_linear_(sum, x[0], x[1]);
          }};
}

// x [..., in] W_i^T for weights [out_i, in] in one node (kernels::linears), the products joined
// along the last dimension.
Layer linears(std::vector<int64_t> shape, std::vector<int64_t> outs, uint64_t seed) {
  torch::manual_seed(seed);
  const auto f64 = torch::dtype(torch::kDouble);
  std::vector<torch::Tensor> inputs = {torch::randn(shape, f64)};
  for (int64_t out : outs) inputs.push_back(torch::randn({out, shape.back()}, f64));
  return {"linears in " + std::to_string(shape.back()), inputs, [](const std::vector<torch::Tensor>& x, bool reference) {
            const std::vector<torch::Tensor> weights(x.begin() + 1, x.end());
            std::vector<torch::Tensor> products;
            if (reference) {
              for (const auto& w : weights) products.push_back(torch::linear(x[0], w));
            } else products = kernels::linears(x[0], weights);
            return torch::cat(products, -1);
          }};
}

// Logits of scale 3 and targets with every fifth row ignored (-100).
Layer cross_entropy(int64_t rows, int64_t width, uint64_t seed) {
  torch::manual_seed(seed);
  auto targets = torch::randint(0, width, {rows}, torch::dtype(torch::kLong));
  targets.index_put_({torch::arange(0, rows, 5)}, -100);
  return {"cross_entropy rows " + std::to_string(rows) + " width " + std::to_string(width),
          {torch::randn({rows, width}, torch::dtype(torch::kDouble)) * 3.0},
          [targets](const std::vector<torch::Tensor>& x, bool reference) {
            return reference ? kernels::reference::cross_entropy(x[0], targets, -100) : kernels::cross_entropy(x[0], targets, -100);
          }};
}

std::vector<Layer> layers() {
  std::vector<Layer> out;
  // Lengths shorter than, equal to and longer than the taps; causal, centred and look-ahead.
  for (const int64_t length : {1, 3, 4, 37}) {
    out.push_back(convolution(2, length, 5, 3, 0, 1));
    out.push_back(convolution(3, length, 8, 2, 2, 2));
    out.push_back(convolution(1, length, 3, 0, 1, 3));
    out.push_back(convolution(2, length, 6, 3, 0, 28, true));
  }
  // Channel counts that fill the four register blocks of 16 and then one (80), and leave some
  // over (24 + 8 = 88 with more taps than the registers take): every path of the sums.
  out.push_back(convolution(2, 37, 80, 3, 0, 40));
  out.push_back(convolution(2, 37, 88, 3, 2, 41, true));
  out.push_back(convolution(1, 3, 80, 3, 0, 42));
  // Row counts that do and do not fill the blocks of the gain's gradient (64 rows).
  out.push_back(rms_norm({1, 7}, 4));
  out.push_back(rms_norm({2, 3, 64, 16}, 5));
  out.push_back(rms_norm({3, 45, 24}, 6));
  out.push_back(l2_norm({2, 4, 33, 16}, 11));
  out.push_back(l2_norm({5, 3}, 12));
  // Sizes below, at and above one parallel chunk of the activations (16,384 elements).
  out.push_back(silu({3, 7}, 15));
  out.push_back(silu({2, 100, 176}, 16));
  out.push_back(swiglu({1, 5}, 17));
  out.push_back(swiglu({2, 64, 128}, 18));
  out.push_back(linear({5, 7}, 3, 32));
  out.push_back(linear({2, 33, 64}, 48, 33));
  out.push_back(linear({2, 33, 64}, 48, 34, true));
  out.push_back(linears({2, 33, 64}, {48, 64, 4}, 36));
  // Widths below, at and above the 16 lanes of a row's maximum and sum.
  out.push_back(cross_entropy(7, 3, 23));
  out.push_back(cross_entropy(40, 16, 24));
  out.push_back(cross_entropy(300, 257, 25));
  return out;
}

Evaluation evaluate(const Layer& layer, const std::vector<torch::Tensor>& inputs, const torch::Tensor& upstream, bool reference) {
  return asiarch::testing::evaluate([&](const std::vector<torch::Tensor>& x) { return layer.run(x, reference); }, inputs, upstream);
}

void check_against_op_form(const Layer& layer, torch::ScalarType type, double tolerance) {
  INFO(layer.name << " " << c10::toString(type));
  const auto inputs = cast(layer.inputs, type);
  const auto upstream = torch::randn(layer.run(layer.inputs, true).sizes(), torch::dtype(torch::kDouble));
  const auto fused = evaluate(layer, inputs, upstream, false);
  const auto reference = evaluate(layer, layer.inputs, upstream, true);
  require_close(fused, reference, inputs, type, tolerance);
}

}  // namespace

TEST_CASE("fused layers match their op forms in float64 to rounding and in float32 to 1e-5", "[kernels][layers]") {
  for (const auto& layer : layers()) {
    check_against_op_form(layer, torch::kDouble, 1e-12);
    check_against_op_form(layer, torch::kFloat, 1e-5);
  }
}

TEST_CASE("fused layer gradients match central finite differences in float64", "[kernels][layers]") {
  for (const auto& layer : {convolution(2, 6, 3, 2, 1, 7), convolution(2, 6, 3, 3, 0, 29, true), rms_norm({3, 5}, 8), l2_norm({2, 6}, 13), silu({2, 5}, 19), swiglu({3, 4}, 20),
                          cross_entropy(6, 5, 26)}) {
    INFO(layer.name);
    const auto upstream = torch::randn(layer.run(layer.inputs, true).sizes(), torch::dtype(torch::kDouble));
    const auto analytic = evaluate(layer, layer.inputs, upstream, false).grads;
    const double step = 1e-6;
    for (size_t i = 0; i < layer.inputs.size(); ++i) {
      INFO("input " << i);
      auto numeric = torch::zeros_like(layer.inputs[i]);
      for (int64_t e = 0; e < layer.inputs[i].numel(); ++e) {
        auto loss_shifted = [&](double by) {
          std::vector<torch::Tensor> x = layer.inputs;
          x[i] = layer.inputs[i].clone();
          x[i].view(-1)[e] += by;
          return (layer.run(x, false) * upstream).sum().item<double>();
        };
        numeric.view(-1)[e] = (loss_shifted(step) - loss_shifted(-step)) / (2 * step);
      }
      REQUIRE(relative_error(analytic[i], numeric) < 1e-6);
    }
  }
}

TEST_CASE("fused layers are bit-identical across thread counts and take strided inputs", "[kernels][layers]") {
  const int threads = at::get_num_threads();
  for (const auto& layer : {convolution(4, 50, 16, 3, 0, 9), convolution(4, 50, 72, 3, 0, 43), convolution(4, 50, 16, 3, 0, 30, true), rms_norm({4, 2, 50, 32}, 10), l2_norm({4, 2, 50, 32}, 14),
                            silu({4, 50, 200}, 21), swiglu({4, 50, 200}, 22), cross_entropy(400, 64, 27)}) {
    INFO(layer.name);
    const auto inputs = cast(layer.inputs, torch::kFloat);
    const auto upstream = torch::randn(layer.run(layer.inputs, true).sizes());
    const auto first = evaluate(layer, inputs, upstream, false);
    at::set_num_threads(threads == 1 ? 2 : 1);
    const auto second = evaluate(layer, inputs, upstream, false);
    at::set_num_threads(threads);
    require_identical(first, second);
    // The same values behind transposed strides, with the upstream gradient in the input's
    // layout or not. Outputs and input gradients are the same bits; RMSNorm's gain gradient
    // adds rows in memory order, so it only has to agree to rounding.
    std::vector<torch::Tensor> strided = inputs;
    strided[0] = inputs[0].transpose(0, 1).contiguous().transpose(0, 1);
    REQUIRE_FALSE(strided[0].is_contiguous());
    std::vector<torch::Tensor> upstreams = {upstream};
    if (upstream.dim() >= 2) upstreams.push_back(upstream.transpose(0, 1).contiguous().transpose(0, 1));
    for (const auto& gradient : upstreams) {
      const auto from_strided = evaluate(layer, strided, gradient, false);
      REQUIRE(torch::equal(first.out, from_strided.out));
      REQUIRE(torch::equal(first.grads[0], from_strided.grads[0]));
      for (size_t i = 1; i < inputs.size(); ++i) {
        if (layer.name.rfind("rms_norm", 0) == 0) REQUIRE(relative_error(from_strided.grads[i], first.grads[i]) < 1e-6);
        else REQUIRE(torch::equal(first.grads[i], from_strided.grads[i]));
      }
    }
  }
}

TEST_CASE("the norms read the heads of split_heads where they lie and keep their layout", "[kernels][layers]") {
  torch::manual_seed(28);
  // [B, T, H, d] seen as [B, H, T, d], as split_heads gives it.
  const auto heads = torch::randn({2, 9, 3, 16}).transpose(1, 2);
  const auto gain = torch::rand({16}) + 0.5;
  for (const auto& out : {kernels::rms_norm(heads, gain, kEpsilon), kernels::l2_norm(heads, kEpsilon)}) {
    REQUIRE(out.strides() == heads.strides());
  }
  REQUIRE(torch::equal(kernels::rms_norm(heads, gain, kEpsilon), kernels::rms_norm(heads.contiguous(), gain, kEpsilon)));
}

TEST_CASE("fused layers reject mismatched shapes", "[kernels][layers]") {
  const auto a = torch::randn({2, 5, 4});
  REQUIRE_THROWS(kernels::depthwise_conv(a, torch::randn({3, 4}), 3, 0));
  REQUIRE_THROWS(kernels::depthwise_conv(a, torch::randn({4, 4}), 2, 0));
  REQUIRE_THROWS(kernels::depthwise_conv(torch::randn({5, 4}), torch::randn({4, 4}), 3, 0));
  REQUIRE_THROWS(kernels::rms_norm(a, torch::ones({5}), kEpsilon));
}

TEST_CASE("the linear maps give the same bits run to run and for any layout of x, and check their shapes", "[kernels][layers]") {
  torch::manual_seed(35);
  const auto x = torch::randn({4, 40, 24});
  const auto weight = torch::randn({56, 24});
  const auto residual = torch::randn({4, 40, 56});
  const auto upstream = torch::randn({4, 40, 56});
  const auto run = [](const std::vector<torch::Tensor>& v) {
    auto sum = v[2].clone();
    return kernels::add_linear_(sum, v[0], v[1]);
  };
  const auto first = asiarch::testing::evaluate(run, {x, weight, residual}, upstream);
  const auto again = asiarch::testing::evaluate(run, {x, weight, residual}, upstream);
  const auto strided = asiarch::testing::evaluate(run, {x.transpose(0, 1).contiguous().transpose(0, 1), weight, residual}, upstream);
  for (const auto& other : {again, strided}) require_identical(first, other);
  // The residual's gradient is the upstream one; only the grads asked for are computed.
  REQUIRE(torch::equal(first.grads[2], upstream));
  const auto leaf = weight.clone().requires_grad_(true);
  kernels::linear(x, leaf).sum().backward();
  REQUIRE(leaf.grad().defined());
  // Of products computed in one node, one that is never read gets no gradient, and x's gradient
  // is that of the others.
  const auto x_leaf = x.clone().requires_grad_(true);
  const std::vector<torch::Tensor> weights = {leaf, torch::randn({8, 24}).requires_grad_(true), torch::randn({3, 24}).requires_grad_(true)};
  const auto products = kernels::linears(x_leaf, weights);
  (products[0].sum() + products[2].sum()).backward();
  REQUIRE_FALSE(weights[1].grad().defined());
  REQUIRE(weights[2].grad().defined());
  const auto x_other = x.clone().requires_grad_(true);
  (torch::linear(x_other, weights[0]).sum() + torch::linear(x_other, weights[2]).sum()).backward();
  REQUIRE(torch::allclose(x_leaf.grad(), x_other.grad(), 1e-5, 1e-4));
  REQUIRE_THROWS(kernels::linear(x, torch::randn({56, 23})));
  REQUIRE_THROWS(kernels::linears(x, {weight, torch::randn({5, 23})}));
  REQUIRE_THROWS(kernels::linears(x, {}));
  auto wrong_residual = torch::randn({4, 40, 55});
  REQUIRE_THROWS(kernels::add_linear_(wrong_residual, x, weight));
}

TEST_CASE("the linear maps stay right past the shapes a thread keeps primitives for", "[kernels][layers]") {
  torch::manual_seed(38);
  const auto weight = torch::randn({5, 3});
  const auto first = kernels::linear(torch::ones({1, 3}), weight);
  // 300 shapes, more than the 256 kept, and then the first shape again.
  for (int64_t rows = 1; rows <= 300; ++rows) {
    const auto x = torch::randn({rows, 3});
    REQUIRE(torch::allclose(kernels::linear(x, weight), torch::linear(x, weight), 1e-5, 1e-5));
  }
  REQUIRE(torch::equal(kernels::linear(torch::ones({1, 3}), weight), first));
}

TEST_CASE("the embedding gives libtorch's bits forward and backward, and refuses a token outside the vocabulary", "[kernels][layers]") {
  torch::manual_seed(39);
  const auto weight = torch::randn({11, 24});
  // Repeated tokens, so that the backward adds several rows' gradients into one.
  const auto tokens = torch::randint(0, 11, {3, 40}, torch::dtype(torch::kLong));
  const auto upstream = torch::randn({3, 40, 24});
  const auto ours = asiarch::testing::evaluate([&](const std::vector<torch::Tensor>& v) { return kernels::embedding(v[0], tokens); },
                                               {weight}, upstream);
  const auto theirs = asiarch::testing::evaluate([&](const std::vector<torch::Tensor>& v) { return torch::embedding(v[0], tokens); },
                                                 {weight}, upstream);
  require_identical(ours, theirs);
  REQUIRE_THROWS(kernels::embedding(weight, torch::full({2}, 11, torch::dtype(torch::kLong))));
  REQUIRE_THROWS(kernels::embedding(weight, torch::full({2}, -1, torch::dtype(torch::kLong))));
}

TEST_CASE("pre_norm gives the bits of RMSNorm and a copy of its input, forward and backward", "[kernels][layers]") {
  torch::manual_seed(37);
  const auto h = torch::randn({3, 40, 24});
  const auto gain = torch::randn({24});
  const auto weight = torch::randn({24, 24});
  const auto upstream = torch::randn({3, 40, 24});
  // A residual block: h + normed W^T, with the residual pre_norm's copy or a clone of h.
  const auto fused = asiarch::testing::evaluate(
      [](const std::vector<torch::Tensor>& v) {
        auto [normed, residual] = kernels::pre_norm(v[0], v[1], kEpsilon);
        REQUIRE(torch::equal(residual, v[0]));
        return kernels::add_linear_(residual, normed, v[2]);
      },
      {h, gain, weight}, upstream);
  const auto separate = asiarch::testing::evaluate(
      [](const std::vector<torch::Tensor>& v) {
        auto residual = v[0].clone();
        return kernels::add_linear_(residual, kernels::rms_norm(v[0], v[1], kEpsilon), v[2]);
      },
      {h, gain, weight}, upstream);
  require_identical(fused, separate);
  // The copy is h's own: adding onto it leaves h as it was.
  const auto h_before = h.clone();
  auto [normed, residual] = kernels::pre_norm(h, gain, kEpsilon);
  kernels::add_linear_(residual, normed, weight);
  REQUIRE(torch::equal(h, h_before));
  REQUIRE_THROWS(kernels::pre_norm(h, torch::ones({5}), kEpsilon));
}

TEST_CASE("the convolution with SiLU gives the bits of the convolution and then SiLU", "[kernels][layers]") {
  torch::manual_seed(31);
  const auto a = torch::randn({3, 40, 24});
  const auto taps = torch::randn({24, 4});
  const auto upstream = torch::randn({3, 40, 24});
  const auto fused = asiarch::testing::evaluate(
      [](const std::vector<torch::Tensor>& x) { return kernels::depthwise_conv_silu(x[0], x[1], 3, 0); }, {a, taps}, upstream);
  const auto two = asiarch::testing::evaluate(
      [](const std::vector<torch::Tensor>& x) { return kernels::silu(kernels::depthwise_conv(x[0], x[1], 3, 0)); }, {a, taps}, upstream);
  require_identical(fused, two);
}

TEST_CASE("the float32 activations hold their accuracy and stay finite far into the sigmoid's tails", "[kernels][layers]") {
  // Every float32 from -200 to 200 in steps of 1/64: past +-87 the exp inside is clamped.
  const auto a = torch::arange(-200.0, 200.0, 1.0 / 64, torch::dtype(torch::kDouble));
  const auto b = torch::full_like(a, 0.75);
  const auto exact_silu = a * torch::sigmoid(a);
  const auto fused_silu = kernels::silu(a.to(torch::kFloat)).to(torch::kDouble);
  const auto fused_swiglu = kernels::swiglu(torch::cat({a, b}).to(torch::kFloat)).to(torch::kDouble);
  REQUIRE(torch::isfinite(fused_silu).all().item<bool>());
  // A few float32 roundings: 4e-7 relative, and a floor for the underflowing negative tail.
  const auto bound = exact_silu.abs() * 4e-7 + 1e-30;
  REQUIRE(((fused_silu - exact_silu).abs() <= bound).all().item<bool>());
  REQUIRE(((fused_swiglu - exact_silu * 0.75).abs() <= bound).all().item<bool>());
  // Float32 inputs beyond the clamp: the tails are 0 and the identity.
  const auto extreme = torch::tensor({-1e30f, -100.0f, 100.0f, 1e30f});
  REQUIRE(torch::equal(kernels::silu(extreme), torch::tensor({-0.0f, -0.0f, 100.0f, 1e30f})));
}

TEST_CASE("the fused cross-entropy rejects targets outside the vocabulary and gives NaN when every row is ignored", "[kernels][layers]") {
  const auto logits = torch::randn({3, 4});
  REQUIRE_THROWS(kernels::cross_entropy(logits, torch::tensor({0, 4, 1}), -100));
  REQUIRE_THROWS(kernels::cross_entropy(logits, torch::tensor({0, -1, 1}), -100));
  REQUIRE_THROWS(kernels::cross_entropy(logits, torch::tensor({0, 1}), -100));
  REQUIRE(std::isnan(kernels::cross_entropy(logits, torch::tensor({-100, -100, -100}), -100).item<double>()));
  // A NaN logit makes the loss NaN, which the trainer stops on.
  auto with_nan = logits.clone();
  with_nan[1][2] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE(std::isnan(kernels::cross_entropy(with_nan, torch::tensor({0, 1, 2}), -100).item<double>()));
}

TEST_CASE("norms of bfloat16 inputs are computed in float32 and returned in bfloat16", "[kernels][layers]") {
  torch::manual_seed(31);
  // Rows whose squares span many magnitudes, where a bfloat16 sum would lose the small ones.
  const auto a = (torch::randn({4, 7, 96}) * torch::logspace(-3, 3, 96)).to(torch::kBFloat16);
  const auto gain = torch::rand({96}) + 0.5;
  const auto rms = kernels::rms_norm(a, gain, 1e-6);
  REQUIRE(rms.scalar_type() == torch::kBFloat16);
  REQUIRE(torch::equal(rms, kernels::rms_norm(a.to(torch::kFloat), gain, 1e-6).to(torch::kBFloat16)));
  const auto l2 = kernels::l2_norm(a, 1e-6);
  REQUIRE(l2.scalar_type() == torch::kBFloat16);
  REQUIRE(torch::equal(l2, kernels::l2_norm(a.to(torch::kFloat), 1e-6).to(torch::kBFloat16)));
}
