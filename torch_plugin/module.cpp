// libasiarch_torch.so: the torch side of asiarch behind the table of torch_api.h.
#include "torch_plugin/torch_api.h"

extern "C" __attribute__((visibility("default"))) const asiarch::torch_plugin::Api* asiarch_torch_api() {
  using namespace asiarch;
  static const torch_plugin::Api api{
      torch_plugin::kApiVersion,
      training::train_program,
      training::train_programs,
      training::measure_checks,
      training::run_experiment,
      training::functional_hash,
      training::device_info,
      kernel_bench::run,
      kernel_bench::environment,
      exporting::pytorch_module,
  };
  return &api;
}
