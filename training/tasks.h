#pragma once
// Internal to training/: the training tasks behind one interface. A task makes training batches
// from (seed, step) and a fixed evaluation set, all deterministic; the trainer does the rest.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "training/training.h"

namespace asiarch::training {

// Targets at positions that count neither for the loss nor for the metrics (cross_entropy's
// ignore_index; Zoology's -100).
inline constexpr int64_t kIgnored = -100;

struct Batch {
  torch::Tensor inputs;   // [B, T] int64 tokens
  torch::Tensor targets;  // [B, T] int64: the next token, or kIgnored
  int64_t group = 0;      // held-out batches: which of the task's eval_groups() it belongs to
};

// A task that cannot be set up (bad sizes, a missing corpus); what() says what to do.
class TaskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TaskData {
 public:
  virtual ~TaskData() = default;
  virtual int64_t vocab() const = 0;
  // The training batch of one step: the same (seed, step) always gives the same batch.
  virtual Batch train_batch(int64_t step, int64_t batch) const = 0;
  // The held-out set, in batches of at most `batch` sequences; the same for every seed.
  virtual std::vector<Batch> eval_batches(int64_t batch) const = 0;
  // The held-out set's parts that are scored separately (MQAR: one per rung of the ladder); the
  // task's metrics are the means over them.
  virtual int64_t eval_groups() const { return 1; }
};

// The task of config.task (MqarTask or LmTask). Throws TaskError.
std::unique_ptr<TaskData> make_task(const TrainConfig& config);

// `examples` MQAR sequences of `kv_pairs` pairs and mqar_rung_length(task, kv_pairs) tokens drawn from the stream of (seed, purpose, index)
// (Arora et al., 2023, arXiv:2312.04927, Zoology's multiquery_ar): keys from [1, vocab/2),
// values from [vocab/2, vocab), the pairs at the start, each key queried once at a later even
// offset drawn by a power law that favours short gaps, other positions random tokens; the target
// at a query is its key's value.
Batch mqar_examples(const MqarTask& task, int64_t kv_pairs, uint64_t seed, const std::string& purpose, uint64_t index,
                    int64_t examples);

// The bytes of a corpus file (gzip, dictzip or plain), read once per process and path.
// Throws TaskError naming the path when it cannot be read.
std::shared_ptr<const std::string> corpus_bytes(const std::string& path);

}  // namespace asiarch::training
