#pragma once
// What the tests of the torch side (kernels/) share: casting lists of tensors, the relative
// error rel(a, b) = max|a - b| / max(max|b|, 1e-6) computed in float64 with b the reference, and
// evaluating a function's output with the gradients of all its inputs. Assertions are REQUIREs:
// torch's glog headers define a CHECK macro of their own.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <vector>

namespace asiarch::testing {

inline std::vector<torch::Tensor> cast(const std::vector<torch::Tensor>& xs, torch::ScalarType type) {
  std::vector<torch::Tensor> out;
  for (const auto& x : xs) out.push_back(x.to(type));
  return out;
}

// The same tensors on `device`.
inline std::vector<torch::Tensor> on(const std::vector<torch::Tensor>& xs, const torch::Device& device) {
  std::vector<torch::Tensor> out;
  for (const auto& x : xs) out.push_back(x.to(device));
  return out;
}

// Compared on the CPU, wherever `a` was computed.
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor reference = b.detach().to(torch::kCPU, torch::kDouble);
  const double scale = std::max(reference.abs().max().item<double>(), 1e-6);
  return (a.detach().to(torch::kCPU, torch::kDouble) - reference).abs().max().item<double>() / scale;
}

struct Evaluation {
  torch::Tensor out;
  std::vector<torch::Tensor> grads;  // of every input, for the loss sum(out * upstream)
};

// `function` run on leaf copies of `inputs`.
inline Evaluation evaluate(const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& function,
                           const std::vector<torch::Tensor>& inputs, const torch::Tensor& upstream) {
  std::vector<torch::Tensor> leaves;
  for (const auto& x : inputs) leaves.push_back(x.detach().clone().requires_grad_(true));
  const torch::Tensor out = function(leaves);
  return {out.detach(), torch::autograd::grad({out}, leaves, {upstream.to(out.scalar_type())})};
}

// `tested` (computed in `type` from `inputs`) is within `tolerance` of `reference`: the output
// and the gradient of every input.
inline void require_close(const Evaluation& tested, const Evaluation& reference, const std::vector<torch::Tensor>& inputs,
                          torch::ScalarType type, double tolerance) {
  REQUIRE(tested.out.scalar_type() == type);
  REQUIRE(relative_error(tested.out, reference.out) < tolerance);
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("gradient of input " << i);
    REQUIRE(tested.grads[i].sizes() == inputs[i].sizes());
    REQUIRE(relative_error(tested.grads[i], reference.grads[i]) < tolerance);
  }
}

// `a` and `b` are the same bits: the output and the gradient of every input.
inline void require_identical(const Evaluation& a, const Evaluation& b) {
  REQUIRE(torch::equal(a.out, b.out));
  REQUIRE(a.grads.size() == b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) {
    INFO("gradient of input " << i);
    REQUIRE(torch::equal(a.grads[i], b.grads[i]));
  }
}

}  // namespace asiarch::testing
