// The checks by measurement (training/training.h): a probe model built from the program is run
// and measured, so these hold for the module as built, not only for the static figures.
#include <chrono>
#include <cmath>

#include "common/rng.h"
#include "training/model.h"
#include "training/training.h"

namespace asiarch::training {
namespace {

constexpr int64_t kProbeVocab = 256;
// Outputs at positions <= p may move by at most this much (relative to the largest output)
// when tokens after p change: the kernels compute the past exactly, this is headroom only.
constexpr double kCausalTolerance = 1e-5;
// Peak memory of a mixer forward at 4T over that at T: 4 for the linear baselines, about 14 for
// softmax attention (16 in the limit).
constexpr double kMemoryRatioLimit = 8.0;

std::string number(double value, const char* format = "%.3g") {
  char text[48];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::string megabytes(uint64_t bytes) { return number(static_cast<double>(bytes) / 1e6, "%.2f") + " MB"; }

torch::Tensor random_tokens(Rng& stream, int64_t rows, int64_t length) {
  std::vector<int64_t> tokens(static_cast<size_t>(rows * length));
  for (auto& t : tokens) t = static_cast<int64_t>(stream.below(kProbeVocab));
  return torch::from_blob(tokens.data(), {rows, length}, torch::kInt64).clone();
}

MeasuredCheck causality(model::LanguageModel& net, const MeasureConfig& config) {
  torch::NoGradGuard no_grad;
  const int64_t length = config.context;
  Rng stream(config.seed, "causality probe");
  const auto tokens = random_tokens(stream, 2, length);
  const auto reference = net->forward(tokens);
  // NaN and Inf outputs are the finite check's to report: here they only count where they change.
  const double tolerance = kCausalTolerance * std::max(1.0, reference.abs().nan_to_num(0, 0, 0).max().item<double>());
  std::string positions;
  for (const int64_t p : {int64_t{0}, length / 4, length / 2, length - 2}) {
    // Every token after p replaced by a different one.
    auto changed = tokens.clone();
    auto future = changed.narrow(1, p + 1, length - p - 1);
    future.add_(random_tokens(stream, 2, length - p - 1).remainder(kProbeVocab - 1) + 1).remainder_(kProbeVocab);
    const auto past = reference.narrow(1, 0, p + 1), now = net->forward(changed).narrow(1, 0, p + 1);
    const auto same = now.eq(past).logical_or(now.isnan().logical_and(past.isnan()));
    const double moved = torch::where(same, torch::zeros_like(past), (now - past).abs().nan_to_num(INFINITY)).max().item<double>();
    if (!(moved <= tolerance)) {
      return {"causality", false,
              "the output at positions up to " + std::to_string(p) + " moved by " + number(moved) + " when only the tokens after position " +
                  std::to_string(p) + " changed: the mixer looks at future tokens"};
    }
    positions += (positions.empty() ? "" : ", ") + std::to_string(p);
  }
  return {"causality", true, "outputs up to p unchanged when the tokens after p change (T=" + std::to_string(length) + ", p = " + positions + ")"};
}

struct ForwardCost {
  uint64_t peak_bytes = 0;
  double seconds = 0;  // best of two
};

// A forward of the mixer alone on one sequence of random features: the embedding, MLP and head
// around it cost the same for every program and would dilute the ratio.
ForwardCost forward_cost(model::Mixer& mixer, int64_t length, const MeasureConfig& config) {
  torch::NoGradGuard no_grad;
  Rng stream(config.seed, "complexity probe", static_cast<uint64_t>(length));
  std::vector<float> values(static_cast<size_t>(length * config.d_model));
  for (float& v : values) v = static_cast<float>(stream.normal());
  const auto x = torch::from_blob(values.data(), {1, length, config.d_model}, torch::kFloat32).clone();
  ForwardCost cost;
  cost.seconds = 1e300;
  for (int run = 0; run < 2; ++run) {
    model::MemoryScope memory;
    const auto start = std::chrono::steady_clock::now();
    mixer->forward(x);
    cost.seconds = std::min(cost.seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    cost.peak_bytes = memory.peak_bytes();
  }
  return cost;
}

// Decided on memory, which the counting allocator measures exactly; time is reported only, as
// it is noisy on shared CPUs.
MeasuredCheck complexity(model::Mixer& mixer, const MeasureConfig& config) {
  const ForwardCost at_t = forward_cost(mixer, config.context, config);
  const ForwardCost at_4t = forward_cost(mixer, 4 * config.context, config);
  const double memory_ratio = static_cast<double>(at_4t.peak_bytes) / static_cast<double>(std::max<uint64_t>(1, at_t.peak_bytes));
  const std::string detail = "peak memory of a mixer forward grows " + number(memory_ratio) + "x from T=" + std::to_string(config.context) +
                             " to 4T (" + megabytes(at_t.peak_bytes) + " to " + megabytes(at_4t.peak_bytes) + ", limit " +
                             number(kMemoryRatioLimit) + "x); time grows " + number(at_4t.seconds / at_t.seconds) + "x";
  return {"complexity", memory_ratio < kMemoryRatioLimit, memory_ratio < kMemoryRatioLimit ? detail : detail + ": quadratic in the context"};
}

// The engineer's multiplicative band: as far below the target as above it.
MeasuredCheck parameters(int64_t params, const MeasureConfig& config) {
  if (config.param_target == 0) return {"parameters", true, std::to_string(params) + " mixer parameters per layer, no budget"};
  const double high = static_cast<double>(config.param_target) * (1.0 + config.param_tolerance);
  const double low = static_cast<double>(config.param_target) / (1.0 + config.param_tolerance);
  const bool inside = static_cast<double>(params) >= low && static_cast<double>(params) <= high;
  return {"parameters", inside,
          std::to_string(params) + " mixer parameters per layer, " + (inside ? "inside" : "outside") + " the budget " +
              std::to_string(std::llround(low)) + " to " + std::to_string(std::llround(high))};
}

MeasuredCheck finite(model::LanguageModel& net, const MeasureConfig& config) {
  Rng stream(config.seed, "finite probe");
  const auto tokens = random_tokens(stream, 2, config.context + 1);
  const auto inputs = tokens.narrow(1, 0, config.context), targets = tokens.narrow(1, 1, config.context);
  net->zero_grad();
  const auto logits = net->forward(inputs);
  const auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, kProbeVocab}), targets.reshape({-1}));
  if (!logits.isfinite().all().item<bool>()) return {"finite", false, "the outputs have NaN or Inf entries"};
  const double value = loss.item<double>();
  if (!std::isfinite(value)) return {"finite", false, "the loss is " + number(value)};
  loss.backward();
  for (const auto& item : net->named_parameters()) {
    const auto& grad = item.value().grad();
    if (grad.defined() && !grad.isfinite().all().item<bool>()) return {"finite", false, "the gradient of " + item.key() + " has NaN or Inf entries"};
  }
  return {"finite", true, "outputs, loss (" + number(value) + ") and gradients finite"};
}

}  // namespace

std::vector<MeasuredCheck> measure_checks(const lang::Program& program, const MeasureConfig& config) {
  model::set_torch_threads(config.threads);
  std::vector<MeasuredCheck> results;
  model::LanguageModel net{nullptr};
  model::Mixer mixer{nullptr};
  try {
    net = model::LanguageModel(program, model::ModelConfig{kProbeVocab, config.d_model, 1, config.seed, /*zero_residual_projections=*/false});
    mixer = model::Mixer(program, config.d_model, config.seed, "probe");
  } catch (const std::exception& e) {
    return {{"model", false, model::error_text(e), msg::FailureKind::MODEL}};
  }
  struct Check {
    const char* name;
    msg::FailureKind failure_kind;
    std::function<MeasuredCheck()> run;
  };
  const Check checks[] = {
      {"causality", msg::FailureKind::CAUSALITY, [&] { return causality(net, config); }},
      {"complexity", msg::FailureKind::COMPLEXITY, [&] { return complexity(mixer, config); }},
      {"parameters", msg::FailureKind::PARAMETERS, [&] { return parameters(net->mixer_params(), config); }},
      {"finite", msg::FailureKind::NUMERICAL, [&] { return finite(net, config); }},
  };
  for (const Check& check : checks) {
    try {
      results.push_back(check.run());
    } catch (const std::exception& e) {
      results.push_back({check.name, false, std::string("the probe failed: ") + model::error_text(e)});
    }
    if (!results.back().passed) {
      results.back().failure_kind = check.failure_kind;
      break;
    }
  }
  return results;
}

}  // namespace asiarch::training
