// The torch-side functions of training.h, kernel_bench.h and pytorch_export.h as the asiarch
// binary sees them: each loads libasiarch_torch.so on first use (torch_api.h) and calls its
// implementation there. Linked instead of those libraries, never beside them.
#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "torch_plugin/torch_api.h"

namespace asiarch {
namespace {

// Where the library is: ASIARCH_TORCH_LIBRARY, or next to the running binary.
std::filesystem::path library_path() {
  if (const char* path = std::getenv("ASIARCH_TORCH_LIBRARY"); path && *path) return path;
  std::error_code error;
  const std::filesystem::path binary = std::filesystem::read_symlink("/proc/self/exe", error);
  return (error ? std::filesystem::current_path() : binary.parent_path()) / "libasiarch_torch.so";
}

const torch_plugin::Api& api() {
  static const torch_plugin::Api* loaded = [] {
    const std::filesystem::path path = library_path();
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      throw std::runtime_error("this needs libtorch, and its half of asiarch could not be loaded: " + std::string(dlerror()) +
                               "; build it with `make build` (it is written next to the asiarch binary), or set "
                               "ASIARCH_TORCH_LIBRARY to its path");
    }
    auto entry = reinterpret_cast<const torch_plugin::Api* (*)()>(dlsym(handle, torch_plugin::kApiSymbol));
    if (!entry) throw std::runtime_error(path.string() + " is not asiarch's torch library: it has no " + torch_plugin::kApiSymbol);
    const torch_plugin::Api* table = entry();
    if (table->version != torch_plugin::kApiVersion) {
      throw std::runtime_error(path.string() + " was built from another version of asiarch (interface " +
                               std::to_string(table->version) + ", this binary needs " +
                               std::to_string(torch_plugin::kApiVersion) + "); rebuild with `make build`");
    }
    return table;
  }();
  return *loaded;
}

}  // namespace

namespace training {

TrainMetrics train_program(const lang::Program& program, const TrainConfig& config, const TrainProgress& progress) {
  return api().train_program(program, config, progress);
}

std::vector<TrainMetrics> train_programs(const std::vector<TrainRun>& runs, int jobs,
                                         const std::function<void(size_t index, const TrainMetrics& metrics)>& done) {
  return api().train_programs(runs, jobs, done);
}

std::vector<MeasuredCheck> measure_checks(const lang::Program& program, const MeasureConfig& config) {
  return api().measure_checks(program, config);
}

ExperimentMetrics run_experiment(const lang::Program& program, const ExperimentConfig& config,
                                 const std::function<void(const std::string& stage)>& progress) {
  return api().run_experiment(program, config, progress);
}

std::string functional_hash(const lang::Program& program, const ProbeConfig& config) { return api().functional_hash(program, config); }

DeviceInfo device_info(const std::string& device) { return api().device_info(device); }

}  // namespace training

namespace kernel_bench {

std::vector<Result> run(const Options& options) { return api().kernel_bench_run(options); }
Environment environment(int threads) { return api().kernel_bench_environment(threads); }

}  // namespace kernel_bench

namespace exporting {

std::string pytorch_module(const PytorchExport& model) { return api().pytorch_module(model); }

}  // namespace exporting
}  // namespace asiarch
