// Devices a model trains on (training.h, DeviceInfo; training/device.h).
#include "training/device.h"

#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "training/training.h"

// Set by CMake when the libtorch found has CUDA (its TorchConfig lists c10_cuda).
#if ASIARCH_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace asiarch::training {
#if ASIARCH_TORCH_CUDA
namespace {

// cuBLAS is deterministic only with a fixed workspace (NVIDIA's cuBLAS docs, "Results
// reproducibility"; PyTorch's torch.use_deterministic_algorithms). It must be set before the
// first cuBLAS handle is made, so it is set once, on the first CUDA query; a value the user set
// is kept.
void make_cuda_deterministic() {
  static std::once_flag once;
  std::call_once(once, [] {
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  });
}

}  // namespace
#endif

DeviceInfo device_info(const std::string& name) {
  DeviceInfo info;
  info.device = name;
  info.torch_version = TORCH_VERSION;
#if ASIARCH_TORCH_CUDA
  info.cuda_built = true;
  info.cuda_devices = static_cast<int>(torch::cuda::device_count());
#endif
  std::optional<torch::Device> device;
  try {
    device.emplace(name);
  } catch (const std::exception&) {
    info.problem = "\"" + name + "\" is not a device: write cpu, cuda (the first GPU) or cuda:N";
    return info;
  }
  if (device->is_cpu()) {
    if (device->has_index()) info.problem = "write cpu, not " + name + ": training on the CPU has no device index";
    else info.name = "cpu";
    return info;
  }
  if (!device->is_cuda()) {
    info.problem = "\"" + name + "\" is not a device asiarch trains on: write cpu, cuda or cuda:N";
    return info;
  }
  if (!info.cuda_built) {
    info.problem = "this asiarch is built against a libtorch without CUDA (torch " + info.torch_version +
                   ", CPU only); build it against a CUDA libtorch: make build TORCH_DIR=$(python3 -c 'import torch; "
                   "print(torch.utils.cmake_prefix_path)')/Torch (README, \"Training on GPUs\")";
    return info;
  }
  const int index = device->has_index() ? device->index() : 0;
  if (info.cuda_devices == 0) {
    info.problem = "no CUDA GPU is visible to this process (libtorch counts 0): check nvidia-smi and CUDA_VISIBLE_DEVICES";
  } else if (index >= info.cuda_devices) {
    info.problem = name + " does not exist: this process sees " + std::to_string(info.cuda_devices) + " GPU" +
                   (info.cuda_devices == 1 ? " (cuda:0)" : "s (cuda:0 to cuda:" + std::to_string(info.cuda_devices - 1) + ")");
  }
#if ASIARCH_TORCH_CUDA
  if (info.problem.empty()) {
    make_cuda_deterministic();
    info.name = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(index))->name;
  }
#endif
  return info;
}

namespace device {

torch::Device resolve(const std::string& name) {
  const DeviceInfo info = device_info(name);
  if (!info.problem.empty()) throw std::invalid_argument(info.problem);
  torch::Device device(name);
  if (device.is_cuda() && !device.has_index()) device.set_index(0);
  return device;
}

void reset_peak_memory([[maybe_unused]] const torch::Device& device) {
#if ASIARCH_TORCH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
}

uint64_t peak_memory([[maybe_unused]] const torch::Device& device) {
#if ASIARCH_TORCH_CUDA
  // allocated_bytes[0]: the aggregate over the allocator's pools.
  if (device.is_cuda()) return static_cast<uint64_t>(c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).allocated_bytes[0].peak);
#endif
  return 0;
}

}  // namespace device
}  // namespace asiarch::training
