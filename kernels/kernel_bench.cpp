#include "kernels/kernel_bench.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>

#include "kernels/recurrence_cpu.h"
#include "kernels/recurrences.h"

namespace asiarch::kernel_bench {
namespace {

// A kernel in its three forms on the same inputs: fused, chunkwise and the op-by-op reference.
struct Kernel {
  std::string name;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&)> fast, chunkwise, reference;
};

std::vector<Kernel> kernels_of(int64_t window) {
  namespace k = asiarch::kernels;
  using Inputs = std::vector<torch::Tensor>;
  auto decay = [](const char* name) {
    return Kernel{name, [](const Inputs& x) { return k::decay_attn(x[0], x[1], x[2], x[3]); },
                  [](const Inputs& x) { return k::chunkwise::decay_attn(x[0], x[1], x[2], x[3]); },
                  [](const Inputs& x) { return k::reference::decay_attn(x[0], x[1], x[2], x[3]); }};
  };
  return {
      {"linear_attn", [](const Inputs& x) { return k::linear_attn(x[0], x[1], x[2]); },
       [](const Inputs& x) { return k::chunkwise::linear_attn(x[0], x[1], x[2]); },
       [](const Inputs& x) { return k::reference::linear_attn(x[0], x[1], x[2]); }},
      decay("decay_attn_scalar"),
      decay("decay_attn_vector"),
      {"delta_rule", [](const Inputs& x) { return k::delta_rule(x[0], x[1], x[2], x[3]); },
       [](const Inputs& x) { return k::chunkwise::delta_rule(x[0], x[1], x[2], x[3]); },
       [](const Inputs& x) { return k::reference::delta_rule(x[0], x[1], x[2], x[3]); }},
      {"gated_delta_rule", [](const Inputs& x) { return k::gated_delta_rule(x[0], x[1], x[2], x[3], x[4]); },
       [](const Inputs& x) { return k::chunkwise::gated_delta_rule(x[0], x[1], x[2], x[3], x[4]); },
       [](const Inputs& x) { return k::reference::gated_delta_rule(x[0], x[1], x[2], x[3], x[4]); }},
      {"swa", [window](const Inputs& x) { return k::swa(x[0], x[1], x[2], window); },
       [window](const Inputs& x) { return k::chunkwise::swa(x[0], x[1], x[2], window); },
       [window](const Inputs& x) { return k::reference::swa(x[0], x[1], x[2], window); }},
  };
}

// float32 inputs of `kernel` in the ranges models produce (L2-normalised keys for the delta
// rules, beta in (0, 1), log decays <= 0), as leaves that require grad.
std::vector<torch::Tensor> inputs_for(const std::string& kernel, const Options& options, int64_t head_size) {
  const std::vector<int64_t> heads_shape = {options.batch, options.heads, options.length, head_size};
  const std::vector<int64_t> gate_shape = {options.batch, options.heads, options.length};
  const bool delta = kernel == "delta_rule" || kernel == "gated_delta_rule";
  auto q = torch::randn(heads_shape) / std::sqrt(static_cast<double>(head_size));
  auto k = torch::randn(heads_shape);
  k = delta ? k / k.norm(2, -1, true) : k / std::sqrt(static_cast<double>(head_size));
  std::vector<torch::Tensor> inputs = {q, k, torch::randn(heads_shape)};
  if (kernel == "decay_attn_scalar" || kernel == "decay_attn_vector")
    inputs.push_back(torch::log_sigmoid(torch::randn(kernel == "decay_attn_vector" ? heads_shape : gate_shape) + 2.0));
  if (delta) inputs.push_back(torch::sigmoid(torch::randn(gate_shape)));
  if (kernel == "gated_delta_rule") inputs.push_back(torch::log_sigmoid(torch::randn(gate_shape) + 2.0));
  // Drawn on the CPU, so every device measures the same numbers.
  for (auto& x : inputs) x = x.to(torch::Device(options.device)).requires_grad_(true);
  return inputs;
}

// Seconds of `body`; on a GPU, until its queued work has finished.
double seconds_of(const std::function<void()>& body, const torch::Device& device) {
  const auto start = std::chrono::steady_clock::now();
  body();
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// Rounds of one reference repetition followed by fused, then chunkwise repetitions for about as
// long each, until min_seconds have passed and there were three rounds: every form sees the same
// machine load.
Result measure(const Kernel& kernel, const Options& options, int64_t head_size) {
  torch::manual_seed(1);
  const auto inputs = inputs_for(kernel.name, options, head_size);
  const torch::Device device(options.device);
  const auto upstream = torch::randn({options.batch, options.heads, options.length, head_size}).to(device);
  auto forward_backward = [&](const auto& fn) {
    return [&] { torch::autograd::grad({fn(inputs)}, inputs, {upstream}); };
  };
  const auto fast = forward_backward(kernel.fast);
  const auto chunkwise = forward_backward(kernel.chunkwise);
  const auto reference = forward_backward(kernel.reference);
  fast();
  chunkwise();
  reference();
  std::vector<double> fast_seconds, chunkwise_seconds, reference_seconds;
  // Repetitions of `body` for at least `budget` seconds; their total.
  auto repeat = [&device](const std::function<void()>& body, std::vector<double>& seconds, double budget) {
    double total = 0;
    do {
      seconds.push_back(seconds_of(body, device));
      total += seconds.back();
    } while (total < budget);
    return total;
  };
  double elapsed = 0;
  while (elapsed < options.min_seconds || reference_seconds.size() < 3) {
    const double reference_round = seconds_of(reference, device);
    reference_seconds.push_back(reference_round);
    elapsed += reference_round + repeat(fast, fast_seconds, reference_round) + repeat(chunkwise, chunkwise_seconds, reference_round);
  }
  const double tokens = static_cast<double>(options.batch * options.length);
  Result result{kernel.name, head_size, tokens / median(fast_seconds), tokens / median(chunkwise_seconds), tokens / median(reference_seconds),
                0};
  result.speedup = result.tokens_per_second / result.reference_tokens_per_second;
  return result;
}

// The value of `key` in libtorch's build configuration ("BLAS_INFO=open, ...").
std::string build_setting(const std::string& key) {
  const std::string config = at::show_config();
  const size_t at = config.find(key + "=");
  if (at == std::string::npos) return "unknown";
  const size_t start = at + key.size() + 1;
  return config.substr(start, config.find_first_of(",\n", start) - start);
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

std::vector<Result> run(const Options& options) {
  const int threads_before = at::get_num_threads();
  at::set_num_threads(options.threads);
  std::vector<Result> results;
  for (const auto& kernel : kernels_of(options.window))
    for (const int64_t head_size : options.head_sizes) results.push_back(measure(kernel, options, head_size));
  at::set_num_threads(threads_before);
  return results;
}

Environment environment(int threads) {
  return {threads, build_setting("BLAS_INFO"), cpu_model(), kernels::cpu::instruction_set()};
}

}  // namespace asiarch::kernel_bench
