#pragma once
// Internal to torch_plugin/: the functions of training/, kernels/ and export/ that need libtorch,
// as one table. libasiarch_torch.so (module.cpp) fills it in; the asiarch binary (loader.cpp)
// loads that library the first time a command trains, measures or exports, so a command that
// does neither never loads libtorch and answers at once.
#include <functional>
#include <string>
#include <vector>

#include "export/pytorch_export.h"
#include "kernels/kernel_bench.h"
#include "training/training.h"

namespace asiarch::torch_plugin {

// Raised whenever a signature below changes, so that a stale library is refused by name.
inline constexpr int kApiVersion = 3;

struct Api {
  int version;
  training::TrainMetrics (*train_program)(const lang::Program&, const training::TrainConfig&, const training::TrainProgress&);
  std::vector<training::TrainMetrics> (*train_programs)(const std::vector<training::TrainRun>&, int,
                                                        const std::function<void(size_t, const training::TrainMetrics&)>&);
  std::vector<training::MeasuredCheck> (*measure_checks)(const lang::Program&, const training::MeasureConfig&);
  training::ExperimentMetrics (*run_experiment)(const lang::Program&, const training::ExperimentConfig&,
                                                const std::function<void(const std::string&)>&);
  std::string (*functional_hash)(const lang::Program&, const training::ProbeConfig&);
  training::DeviceInfo (*device_info)(const std::string&);
  std::vector<kernel_bench::Result> (*kernel_bench_run)(const kernel_bench::Options&);
  kernel_bench::Environment (*kernel_bench_environment)(int);
  std::string (*pytorch_module)(const exporting::PytorchExport&);
};

// The library's one exported symbol.
inline constexpr const char* kApiSymbol = "asiarch_torch_api";

}  // namespace asiarch::torch_plugin

extern "C" const asiarch::torch_plugin::Api* asiarch_torch_api();
