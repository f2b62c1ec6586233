// The fused AdamW with gradient clipping (kernels/optimizer.h) against libtorch's AdamW and
// clip_grad_norm_, which it replaces in training. Assertions are REQUIREs: torch's glog headers
// define a CHECK macro of their own.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "kernels/optimizer.h"
#include "tests/tensor_helpers.h"

namespace kernels = asiarch::kernels;

using asiarch::testing::relative_error;

namespace {

constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEpsilon = 1e-8, kDecay = 0.1;

// Parameters like a model's: matrices (decayed) and vectors (not), each in its own group; the
// last vector gets no gradient.
std::vector<torch::Tensor> make_parameters(torch::ScalarType type) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> out;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{7, 5}, {3, 9}, {5}, {4}}) {
    out.push_back(torch::randn(shape, torch::dtype(type)).requires_grad_(true));
  }
  return out;
}

// Gradients of step s: large enough at some steps for the clipping to act, small at others.
void set_gradients(const std::vector<torch::Tensor>& parameters, int step) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i + 1 < parameters.size(); ++i) {
    parameters[i].mutable_grad() = torch::randn(parameters[i].sizes(), parameters[i].options()) * (step % 2 == 0 ? 5.0 : 0.01);
  }
}

// Runs `steps` steps with the fused optimizer and with libtorch's, on copies of the same values.
struct Trajectories {
  std::vector<torch::Tensor> fused, reference;
  std::vector<double> fused_norms, reference_norms;
};

Trajectories run_both(torch::ScalarType type, int steps, double max_norm) {
  Trajectories t;
  t.fused = make_parameters(type);
  t.reference = make_parameters(type);
  kernels::ClippedAdamW fused({{{t.fused[0], t.fused[1]}, kDecay}, {{t.fused[2], t.fused[3]}, 0.0}}, kBeta1, kBeta2, kEpsilon);
  auto options = [](double decay) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.01).betas({kBeta1, kBeta2}).eps(kEpsilon).weight_decay(decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{t.reference[0], t.reference[1]}, options(kDecay));
  groups.emplace_back(std::vector<torch::Tensor>{t.reference[2], t.reference[3]}, options(0.0));
  torch::optim::AdamW reference(groups, torch::optim::AdamWOptions(0.01));
  for (int step = 0; step < steps; ++step) {
    const double lr = 0.01 * (1.0 + 0.1 * step);
    set_gradients(t.fused, step);
    const double norm = fused.gradient_norm();
    fused.step(lr, norm, max_norm);
    t.fused_norms.push_back(norm);
    set_gradients(t.reference, step);
    std::vector<torch::Tensor> with_grads(t.reference.begin(), t.reference.end() - 1);
    t.reference_norms.push_back(torch::nn::utils::clip_grad_norm_(with_grads, max_norm));
    for (auto& group : reference.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    reference.step();
  }
  return t;
}

}  // namespace

TEST_CASE("fused AdamW with clipping follows libtorch's AdamW and clip_grad_norm_", "[kernels][optimizer]") {
  for (const auto& [type, tolerance] : {std::pair{torch::kDouble, 1e-12}, std::pair{torch::kFloat, 1e-5}}) {
    for (const double max_norm : {1.0, 1e9}) {
      INFO(c10::toString(type) << " max_norm " << max_norm);
      const Trajectories t = run_both(type, 6, max_norm);
      for (size_t i = 0; i < t.fused_norms.size(); ++i) REQUIRE(std::abs(t.fused_norms[i] - t.reference_norms[i]) < tolerance * t.reference_norms[i]);
      for (size_t i = 0; i < t.fused.size(); ++i) {
        INFO("parameter " << i);
        REQUIRE(relative_error(t.fused[i], t.reference[i]) < tolerance);
      }
      // The parameter without a gradient is left as it was.
      REQUIRE(torch::equal(t.fused.back(), make_parameters(type).back()));
    }
  }
}

TEST_CASE("fused AdamW is bit-identical across thread counts and reports a non-finite norm", "[kernels][optimizer]") {
  const int threads = at::get_num_threads();
  const Trajectories first = run_both(torch::kFloat, 4, 1.0);
  at::set_num_threads(threads == 1 ? 2 : 1);
  const Trajectories second = run_both(torch::kFloat, 4, 1.0);
  at::set_num_threads(threads);
  for (size_t i = 0; i < first.fused.size(); ++i) REQUIRE(torch::equal(first.fused[i], second.fused[i]));
  REQUIRE(first.fused_norms == second.fused_norms);

  auto parameters = make_parameters(torch::kFloat);
  kernels::ClippedAdamW optimizer({{parameters, 0.0}}, kBeta1, kBeta2, kEpsilon);
  set_gradients(parameters, 0);
  parameters[1].mutable_grad()[0][0] = std::nan("");
  REQUIRE_FALSE(std::isfinite(optimizer.gradient_norm()));
  optimizer.zero_grad();
  for (const auto& p : parameters) REQUIRE_FALSE(p.grad().defined());
}
