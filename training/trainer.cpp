// Training a model built from a program on a task, the fidelity settings, and one experiment
// of a campaign (training/training.h).
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <numbers>
#include <thread>

#include "kernels/layers.h"
#include "kernels/optimizer.h"
#include "training/device.h"
#include "training/model.h"
#include "training/tasks.h"
#include "training/training.h"

namespace asiarch::training {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// A loss this many times the first step's, after warm-up, is a divergence.
constexpr double kDivergenceFactor = 3.0;
// The cosine decay ends at this fraction of the peak learning rate.
constexpr double kFinalLrFraction = 0.1;

// Linear warm-up to config.lr, then cosine decay (Loshchilov and Hutter, 2017) to a tenth of it.
double learning_rate(const TrainConfig& config, int64_t step) {
  if (step < config.warmup_steps) return config.lr * static_cast<double>(step + 1) / static_cast<double>(config.warmup_steps);
  const double progress = static_cast<double>(step - config.warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, config.steps - config.warmup_steps));
  return config.lr * (kFinalLrFraction + (1.0 - kFinalLrFraction) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

// The cross-entropy of logits [.., V] against targets [..], ignored targets left out: the sum
// (evaluation) or, with autograd through the fused kernel, the mean (the training loss).
torch::Tensor summed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                              torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnored).reduction(torch::kSum));
}

torch::Tensor mean_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  return kernels::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}), kIgnored);
}

// AdamW with weight decay on matrices only, not on gains, scales and temperatures.
kernels::ClippedAdamW make_optimizer(model::LanguageModel& net, const TrainConfig& config) {
  kernels::ClippedAdamW::Group matrices{{}, config.weight_decay}, others{{}, 0.0};
  for (const auto& p : net->parameters()) (p.dim() >= 2 ? matrices : others).parameters.push_back(p);
  return kernels::ClippedAdamW({matrices, others}, 0.9, 0.95, 1e-8);
}

std::string invalid_config(const TrainConfig& c) {
  if (c.steps < 1 || c.batch < 1 || c.layers < 1 || c.d_model < 1 || c.threads < 1 || c.warmup_steps < 0) {
    return "config: steps, batch, layers, d_model and threads must be positive, warmup_steps not negative";
  }
  if (!(c.lr > 0) || !std::isfinite(c.lr) || !(c.grad_clip > 0)) return "config: lr and grad_clip must be positive";
  if (c.dtype != "float32" && c.dtype != "bfloat16") return "config: dtype \"" + c.dtype + "\" is neither float32 nor bfloat16";
  return "";
}

struct Evaluation {
  double loss = 0;      // nats per counted token; with several groups, the mean over them
  double accuracy = 0;  // argmax equals the target, over counted tokens; the mean over groups
  std::vector<double> group_accuracy;
};

Evaluation evaluate(model::LanguageModel& net, const TaskData& task, int64_t batch, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  net->eval();
  const auto groups = static_cast<size_t>(task.eval_groups());
  std::vector<double> loss_sum(groups, 0.0);
  std::vector<int64_t> correct(groups, 0), counted(groups, 0);
  for (const Batch& b : task.eval_batches(batch)) {
    const auto g = static_cast<size_t>(b.group);
    const auto inputs = b.inputs.to(device), targets = b.targets.to(device);
    const auto logits = net->forward(inputs);
    loss_sum[g] += summed_cross_entropy(logits, targets).item<double>();
    const auto counts = targets.ne(kIgnored);
    correct[g] += logits.argmax(-1).eq(targets).logical_and(counts).sum().item<int64_t>();
    counted[g] += counts.sum().item<int64_t>();
  }
  Evaluation result;
  for (size_t g = 0; g < groups; ++g) {
    result.loss += loss_sum[g] / static_cast<double>(counted[g]) / static_cast<double>(groups);
    result.group_accuracy.push_back(static_cast<double>(correct[g]) / static_cast<double>(counted[g]));
    result.accuracy += result.group_accuracy.back() / static_cast<double>(groups);
  }
  return result;
}

// The metadata a weights file carries: enough to rebuild the model that reads it.
std::map<std::string, std::string> weights_metadata(const lang::Program& program, const TrainConfig& config) {
  return {{"format", "asiarch"},
          {"program", lang::print(program)},
          {"task", config.task == Task::Mqar ? "mqar" : "lm"},
          {"vocab", std::to_string(model_vocab(config))},
          {"d_model", std::to_string(config.d_model)},
          {"layers", std::to_string(config.layers)},
          {"seed", std::to_string(config.seed)}};
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

}  // namespace

TrainMetrics train_program(const lang::Program& program, const TrainConfig& config, const TrainProgress& progress) {
  const auto started = Clock::now();
  TrainMetrics metrics;
  auto fail = [&](msg::FailureKind kind, std::string failure, int64_t step = 0) {
    metrics.ok = false;
    metrics.failure = std::move(failure);
    metrics.failure_kind = kind;
    metrics.failed_step = static_cast<uint32_t>(step);
    metrics.seconds = seconds_since(started);
    return metrics;
  };
  using Kind = msg::FailureKind;
  if (std::string problem = invalid_config(config); !problem.empty()) return fail(Kind::MODEL, problem);
  const DeviceInfo where = device_info(config.device);
  if (!where.problem.empty()) return fail(Kind::MODEL, "device: " + where.problem);
  metrics.device_name = where.name;
  metrics.torch_version = where.torch_version;
  const torch::Device device = device::resolve(config.device);
  model::set_torch_threads(config.threads);
  torch::manual_seed(config.seed);

  std::unique_ptr<TaskData> task;
  try {
    task = make_task(config);
  } catch (const TaskError& e) {
    return fail(Kind::MODEL, std::string("task: ") + e.what());
  }

  model::MemoryScope memory;
  model::LanguageModel net{nullptr};
  try {
    model::ModelConfig shape{task->vocab(), config.d_model, config.layers, config.seed};
    shape.bfloat16_matmuls = config.dtype == "bfloat16";
    net = model::LanguageModel(program, shape);
  } catch (const std::exception& e) {
    return fail(Kind::MODEL, std::string("model: ") + model::error_text(e));
  }
  for (const auto& p : net->parameters()) metrics.params += p.numel();

  try {
    net->to(device);
    device::reset_peak_memory(device);
    kernels::ClippedAdamW optimizer = make_optimizer(net, config);
    net->train();
    double initial_loss = 0;
    int64_t tokens = 0;
    const auto training_started = Clock::now();
    for (int64_t step = 0; step < config.steps; ++step) {
      if (config.cancelled != nullptr && config.cancelled->load()) return fail(Kind::CANCELLED, "cancelled");
      const double rate = learning_rate(config, step);
      const Batch batch = task->train_batch(step, config.batch);
      tokens += batch.inputs.numel();
      // What is minimised: the cross-entropy and the program's auxiliary losses (penalty), if any.
      torch::Tensor loss = mean_cross_entropy(net->forward(batch.inputs.to(device)), batch.targets.to(device));
      if (net->auxiliary_loss().defined()) loss = loss + net->auxiliary_loss();
      const double value = loss.item<double>();
      if (!std::isfinite(value)) return fail(Kind::NUMERICAL, "nan_loss: step " + std::to_string(step + 1), step + 1);
      if (step == 0) initial_loss = value;
      if (step >= config.warmup_steps && value > kDivergenceFactor * initial_loss) {
        return fail(Kind::NUMERICAL,
                    "divergence: loss " + number(value) + " at step " + std::to_string(step + 1) + ", above " + number(kDivergenceFactor) +
                        "x the first step's " + number(initial_loss),
                    step + 1);
      }
      optimizer.zero_grad();
      loss.backward();
      const double norm = optimizer.gradient_norm();
      if (!std::isfinite(norm)) return fail(Kind::NUMERICAL, "nan_gradient: step " + std::to_string(step + 1), step + 1);
      optimizer.step(rate, norm, config.grad_clip);
      metrics.steps = step + 1;
      if (progress) progress(step + 1, config.steps, value);
    }
    const double training_seconds = seconds_since(training_started);
    metrics.peak_memory_bytes = device.is_cpu() ? memory.peak_bytes() : device::peak_memory(device);
    metrics.tokens_per_second = static_cast<double>(tokens) / training_seconds;

    const Evaluation held_out = evaluate(net, *task, config.batch, device);
    if (!std::isfinite(held_out.loss)) return fail(Kind::NUMERICAL, "nan_eval: the held-out loss is " + number(held_out.loss));
    metrics.loss = held_out.loss;
    if (config.task == Task::Mqar) {
      metrics.accuracy = held_out.accuracy;
      metrics.rung_accuracy = held_out.group_accuracy;
    } else metrics.bits_per_byte = held_out.loss / std::log(2.0);
  } catch (const std::exception& e) {
    return fail(Kind::MODEL, std::string("runtime: ") + model::error_text(e));
  }
  if (!config.weights_path.empty()) {
    try {
      safetensors::write_file(config.weights_path, model::parameter_tensors(*net), weights_metadata(program, config));
    } catch (const std::exception& e) {
      metrics.weights_error = model::error_text(e);
    }
  }
  metrics.ok = true;
  metrics.seconds = seconds_since(started);
  return metrics;
}

std::vector<TrainMetrics> train_programs(const std::vector<TrainRun>& runs, int jobs,
                                         const std::function<void(size_t index, const TrainMetrics& metrics)>& done) {
  std::vector<TrainMetrics> results(runs.size());
  std::atomic<size_t> next{0};
  std::mutex report;
  auto work = [&] {
    for (size_t i; (i = next++) < runs.size();) {
      results[i] = train_program(runs[i].program, runs[i].config);
      if (!done) continue;
      std::lock_guard lock(report);
      done(i, results[i]);
    }
  };
  std::vector<std::thread> workers;
  const size_t count = std::min(runs.size(), static_cast<size_t>(std::max(1, jobs)));
  for (size_t w = 0; w < count; ++w) workers.emplace_back(work);
  for (auto& worker : workers) worker.join();
  return results;
}

ExperimentMetrics run_experiment(const lang::Program& program, const ExperimentConfig& config,
                                 const std::function<void(const std::string& stage)>& progress) {
  const auto started = Clock::now();
  ExperimentMetrics metrics;
  auto stage = [&](const std::string& name) {
    if (progress) progress(name);
  };
  auto finish = [&](std::string failure, msg::FailureKind kind = msg::FailureKind::NONE, uint32_t step = 0) {
    metrics.ok = failure.empty();
    metrics.failure = std::move(failure);
    metrics.failure_kind = kind;
    metrics.failed_step = step;
    metrics.seconds = seconds_since(started);
    return metrics;
  };
  stage("checks");
  const std::vector<MeasuredCheck> checks = measure_checks(program, config.measure);
  if (!checks.empty() && !checks.back().passed) {
    return finish("check " + checks.back().check + ": " + checks.back().detail, checks.back().failure_kind);
  }

  TrainConfig lm = config.lm, mqar = config.mqar;
  if (config.cancelled != nullptr) lm.cancelled = mqar.cancelled = config.cancelled;
  if (!config.weights_prefix.empty()) {
    lm.weights_path = weights_file(config.weights_prefix, Task::Lm);
    mqar.weights_path = weights_file(config.weights_prefix, Task::Mqar);
  }
  stage("lm");
  const TrainMetrics language = train_program(program, lm);
  metrics.device_name = language.device_name;
  metrics.torch_version = language.torch_version;
  if (!language.weights_error.empty()) metrics.weights_errors.push_back(language.weights_error);
  if (!language.ok) return finish("lm " + language.failure, language.failure_kind, language.failed_step);
  metrics.loss = language.bits_per_byte;
  metrics.tokens_per_second = language.tokens_per_second;
  stage("mqar");
  const TrainMetrics recall = train_program(program, mqar);
  if (!recall.weights_error.empty()) metrics.weights_errors.push_back(recall.weights_error);
  if (!recall.ok) return finish("mqar " + recall.failure, recall.failure_kind, recall.failed_step);
  metrics.accuracy = recall.accuracy;
  metrics.peak_memory_bytes = std::max(language.peak_memory_bytes, recall.peak_memory_bytes);
  return finish("");
}

}  // namespace asiarch::training
