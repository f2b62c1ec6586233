#pragma once
// What the tests of the torch side (kernels/) share: casting lists of tensors, and the relative
// error rel(a, b) = max|a - b| / max(max|b|, 1e-6), computed in float64 with b the reference.
#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace asiarch::testing {

inline std::vector<torch::Tensor> cast(const std::vector<torch::Tensor>& xs, torch::ScalarType type) {
  std::vector<torch::Tensor> out;
  for (const auto& x : xs) out.push_back(x.to(type));
  return out;
}

inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor reference = b.detach().to(torch::kDouble);
  const double scale = std::max(reference.abs().max().item<double>(), 1e-6);
  return (a.detach().to(torch::kDouble) - reference).abs().max().item<double>() / scale;
}

}  // namespace asiarch::testing
