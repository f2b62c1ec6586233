#pragma once
// Internal to training/: the torch device a config names, and the CUDA allocator's figures.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace asiarch::training::device {

// The device of `name` with its index ("cuda" is cuda:0). Throws std::invalid_argument with
// DeviceInfo::problem when nothing can train there. On CUDA it also turns on deterministic
// algorithms, so that a GPU, like the CPU, gives the same numbers for the same seed.
torch::Device resolve(const std::string& name);

// The CUDA caching allocator's peak of allocated bytes on `device` since reset_peak_memory; 0 on
// the CPU (where model::MemoryScope counts). Slots sharing a GPU share these figures.
void reset_peak_memory(const torch::Device& device);
uint64_t peak_memory(const torch::Device& device);

}  // namespace asiarch::training::device
