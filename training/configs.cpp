// The fidelities' training settings and the names of kept weights (training/training.h):
// torch-free, so that scenarios, the actors and every command can use them without libtorch.
#include "training/training.h"

namespace asiarch::training {

int64_t model_vocab(const TrainConfig& config) { return config.task == Task::Mqar ? config.mqar.vocab : kByteVocab; }

std::string weights_file(const std::string& prefix, Task task) {
  return prefix + (task == Task::Mqar ? "-mqar" : "-lm") + ".safetensors";
}

TrainConfig explore_config(Task task) {
  TrainConfig config;
  config.task = task;
  if (task == Task::Lm) {
    config.steps = 400;
    config.batch = 8;
    config.warmup_steps = 20;
  }
  return config;
}

MqarTask verify_task(const MqarTask& explore) {
  MqarTask task = explore;
  task.vocab *= 2;
  task.seq_len *= 2;
  for (int64_t& kv : task.kv_pairs) kv *= 2;
  return task;
}

LmTask verify_task(const LmTask& explore) {
  LmTask task = explore;
  task.seq_len *= 2;
  return task;
}

TrainConfig verify_config(Task task) {
  TrainConfig config = explore_config(task);
  config.d_model *= 2;
  config.steps = config.steps * 5 / 2;
  config.warmup_steps = config.warmup_steps * 5 / 2;
  config.mqar = verify_task(config.mqar);
  config.lm = verify_task(config.lm);
  return config;
}

std::string slot_device(const std::string& device, uint32_t slot, int cuda_devices) {
  if (device != "cuda" || cuda_devices <= 0) return device;
  return "cuda:" + std::to_string(slot % static_cast<uint32_t>(cuda_devices));
}

}  // namespace asiarch::training
