// Functional hashing (training/training.h): the probe of a program's mixer.
#include <cmath>
#include <cstring>
#include <map>

#include "common/hex.h"
#include "common/rng.h"
#include "training/model.h"
#include "training/training.h"

namespace asiarch::training {
namespace {

// The canonical form with each statement named by its operator and ordinal (linear_0, silu_2,
// ...): the names that the mixer's weight streams are drawn from.
lang::Program probe_program(const lang::Program& program) {
  lang::Program out = lang::canonical(program);
  std::map<std::string, int> ordinal;
  std::map<std::string, std::string> renamed{{"x", "x"}};
  for (auto& s : out.body) {
    const std::string name = s.op + "_" + std::to_string(ordinal[s.op]++);
    renamed[s.name] = name;
    s.name = name;
    for (auto& arg : s.args) arg = renamed.at(arg);
  }
  out.result = renamed.at(out.result);
  out.name = "probe";
  return out;
}

}  // namespace

std::string functional_hash(const lang::Program& program, const ProbeConfig& config) {
  const lang::Program probe = probe_program(program);
  lang::check(probe, lang::ModelShape{config.d_model, config.context}, "probe");
  model::set_torch_threads(config.threads);
  torch::NoGradGuard no_grad;
  model::Mixer mixer(probe, config.d_model, config.seed, "probe", /*zero_output=*/false);
  mixer->to(torch::kDouble);
  Rng stream(config.seed, "probe/input");
  std::vector<double> values(static_cast<size_t>(config.batch * config.context * config.d_model));
  for (double& v : values) v = stream.normal();
  const torch::Tensor x = torch::from_blob(values.data(), {config.batch, config.context, config.d_model}, torch::kDouble).clone();
  const torch::Tensor y = mixer->forward(x).contiguous().to(torch::kDouble);
  const double* data = y.data_ptr<double>();
  const double scale = std::pow(10.0, config.decimals);
  std::vector<int64_t> rounded(static_cast<size_t>(y.numel()) + 3);
  rounded[0] = y.size(0);
  rounded[1] = y.size(1);
  rounded[2] = y.size(2);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double v = data[i];
    // Non-finite outputs hash by kind: a program that overflows on the probe equals only one
    // that overflows at the same places.
    rounded[static_cast<size_t>(i) + 3] = std::isfinite(v) && std::fabs(v * scale) < 9e18 ? std::llround(v * scale)
                                          : std::isnan(v)                                 ? INT64_MIN
                                          : v > 0                                         ? INT64_MAX
                                                                                          : INT64_MIN + 1;
  }
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(rounded.data()), rounded.size() * sizeof(int64_t)));
}


}  // namespace asiarch::training
