#pragma once
// Training and measuring models built from programs: the torch-free face of training/ for the
// actors and tools. Everything here is seeded and deterministic at a fixed thread count; wall
// clock figures (seconds, tokens per second) are measurements, never inputs to a decision.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lang/program.h"
#include "messages/asiarch.capnp.h"

namespace asiarch::training {

// Multi-query associative recall as Zoology defines it (Arora et al., 2023, arXiv:2312.04927):
// key-value pairs, then queries of those keys at random later positions; accuracy counts only
// the query positions. Difficulty is a ladder of key-value counts at one width, as in Zoology's
// figures: rung r holds kv_pairs[r] pairs in sequences of seq_len * kv_pairs[r] / max(kv_pairs)
// tokens (the largest rung is seq_len long; every rung is as dense in queries). Training steps
// go through the rungs in turn, each rung has its own test set, and the metric is the mean
// accuracy over the rungs, so that architectures separate by how many associations their state
// holds. The short rungs are also where a model first learns to recall: on long sequences alone
// a small DeltaNet often never leaves the plateau (README, "Recall that measures capacity").
struct MqarTask {
  int64_t vocab = 64;
  int64_t seq_len = 64;
  std::vector<int64_t> kv_pairs = {4, 8, 16};  // the ladder's rungs
  int64_t test_examples = 256;                 // per rung
  bool operator==(const MqarTask&) const = default;
};

// The length of a rung's sequences: seq_len * kv_pairs / max(kv_pairs), rounded down to even.
int64_t mqar_rung_length(const MqarTask& task, int64_t kv_pairs);

// The default corpus: the GCIDE dictionary text of Debian's dict-gcide.
inline constexpr const char* kDefaultCorpus = "/usr/share/dictd/gcide.dict.dz";

// Byte-level language modelling on a text file with a fixed held-out split; the metric is bits
// per byte on the held-out part.
struct LmTask {
  std::string corpus;  // empty: kDefaultCorpus
  int64_t seq_len = 128;
  int64_t eval_bytes = 32768;  // held out: the corpus's last bytes
  bool operator==(const LmTask&) const = default;
};

enum class Task { Mqar, Lm };

// The byte-level LM's vocabulary: every byte value.
inline constexpr int64_t kByteVocab = 256;

struct TrainConfig {
  Task task = Task::Mqar;
  MqarTask mqar;
  LmTask lm;
  // The fixed model around the mixer (docs/ARCHITECTURE.md, "The model around a mixer").
  int64_t d_model = 64;
  int64_t layers = 2;
  // AdamW with linear warm-up and cosine decay, gradient clipping.
  int64_t steps = 1000;
  int64_t batch = 16;
  double lr = 3e-3;
  int64_t warmup_steps = 50;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  int threads = 1;  // torch intra-op threads: results are bit-identical only at a fixed count
  uint64_t seed = 1;
  // Where it trains: "cpu", "cuda" (the first GPU) or "cuda:N" (device_info below). Weights are
  // drawn on the CPU and then moved, so every device starts from the same model.
  std::string device = "cpu";
  // "float32", or "bfloat16": mixed precision, the blocks' matrix products in bfloat16 and the
  // weights, recurrent states, norms and loss in float32 (for GPUs; on a CPU it is slower).
  std::string dtype = "float32";
  // When set and true, training stops at the next step with ok = false, failure "cancelled".
  const std::atomic<bool>* cancelled = nullptr;
  // When not empty, a run that trained writes the model's parameters there (safetensors, see
  // training/safetensors.h), with the program and the model's sizes as metadata. The weights are
  // an output only: writing them changes no metric, and a failed write is reported in
  // TrainMetrics::weights_error, not as a failed run.
  std::string weights_path;
  bool operator==(const TrainConfig&) const = default;
};

struct TrainMetrics {
  bool ok = false;
  std::string failure;        // named reason when !ok, e.g. "nan_loss: at step 12", "model: ..."
  msg::FailureKind failure_kind = msg::FailureKind::NONE;  // what the actors act on
  uint32_t failed_step = 0;   // the step of a numerical failure, counted from 1; 0 when none
  double loss = 0;            // held-out cross-entropy, nats per token
  double accuracy = 0;        // MQAR: accuracy at query positions, the mean over the ladder's rungs
  std::vector<double> rung_accuracy;  // MQAR: accuracy at each rung of MqarTask::kv_pairs
  double bits_per_byte = 0;   // LM: held-out bits per byte
  double tokens_per_second = 0;
  uint64_t peak_memory_bytes = 0;  // peak bytes of tensors alive during training (on CUDA: the CUDA allocator's peak)
  double seconds = 0;
  std::string device_name;    // where it trained: "cpu" or the GPU's model (DeviceInfo::name)
  std::string torch_version;  // of the libtorch that trained it
  int64_t steps = 0;          // optimiser steps taken
  int64_t params = 0;         // parameters of the whole model
  std::string weights_error;  // why config.weights_path could not be written; empty when it was (or not asked)
};

// ---- devices (training/device.cpp) ----
// What training on a device ("cpu", "cuda", "cuda:N") would run on. CUDA needs an asiarch built
// against a libtorch with CUDA (README, "Training on GPUs") and a visible GPU.
struct DeviceInfo {
  std::string device;         // as asked
  std::string name;           // "cpu", or the GPU's model, e.g. "NVIDIA H100 80GB HBM3"; empty with a problem
  std::string torch_version;  // of the libtorch that would train
  bool cuda_built = false;    // this libtorch has CUDA
  int cuda_devices = 0;       // GPUs this process sees
  std::string problem;        // why nothing can train there, and what to do; empty when it can
};
DeviceInfo device_info(const std::string& device);

// The device gpu-slot `slot` trains on: "cuda" spreads the slots over the visible GPUs
// (cuda:(slot mod cuda_devices)); any other device is used as given.
std::string slot_device(const std::string& device, uint32_t slot, int cuda_devices);

// The vocabulary of the model a config trains: 256 bytes for LM, the MQAR task's vocab.
int64_t model_vocab(const TrainConfig& config);

using TrainProgress = std::function<void(int64_t step, int64_t steps, double loss)>;

// Builds the model for a type-checked program and trains it. Never throws for a program that
// fails to build or train: the metrics say why (ok = false).
TrainMetrics train_program(const lang::Program& program, const TrainConfig& config, const TrainProgress& progress = {});

// Many independent trainings on `jobs` threads at once (each at its config's torch thread count;
// results do not depend on `jobs`, since every run is seeded and its thread count fixed). The
// results come back in the order of `runs`; `done` is called as each run ends (index, metrics),
// from the thread that ran it, one call at a time.
struct TrainRun {
  lang::Program program;
  TrainConfig config;
};
std::vector<TrainMetrics> train_programs(const std::vector<TrainRun>& runs, int jobs,
                                         const std::function<void(size_t index, const TrainMetrics& metrics)>& done = {});

// The settings of the two fidelities (docs/ARCHITECTURE.md, "Two fidelities") for one task. The
// defaults of MqarTask, LmTask and TrainConfig are the explore setting, tuned on a 2-core CPU (one
// thread): about half a minute per experiment, and on MQAR softmax attention and DeltaNet reach
// near-perfect recall while linear attention stays well below. The LM run takes fewer, smaller
// batches of longer sequences. Verify is twice as wide and 2.5x as long, on the tasks of
// verify_task.
TrainConfig explore_config(Task task);
TrainConfig verify_config(Task task);
// A task at the verify fidelity from its explore form: MQAR with twice the vocabulary, sequence
// length and key-value pairs at every rung (a model twice as wide has twice the state per head,
// so the ladder keeps its pressure); LM on sequences twice as long.
MqarTask verify_task(const MqarTask& explore);
LmTask verify_task(const LmTask& explore);

// The checks by measurement that a program passes before it may train.
struct MeasureConfig {
  int64_t d_model = 64;
  int64_t context = 256;      // T; the complexity check also runs 4T
  int64_t param_target = 0;   // mixer parameters at d_model; 0: no budget check
  double param_tolerance = 0.5;
  int threads = 1;
  uint64_t seed = 1;
};

struct MeasuredCheck {
  std::string check;   // causality, complexity, parameters, finite
  bool passed = false;
  std::string detail;  // what was measured
  msg::FailureKind failure_kind = msg::FailureKind::NONE;  // set when it failed
};

// Runs every check in the order above and stops at the first failure (so the last entry is the
// failed one when any failed). A program that does not build at d_model fails a first check
// named `model`.
std::vector<MeasuredCheck> measure_checks(const lang::Program& program, const MeasureConfig& config);

// One experiment of a campaign at one fidelity: the measured checks, a language-model run for
// the loss and an MQAR run for the accuracy.
struct ExperimentConfig {
  MeasureConfig measure;
  TrainConfig lm = explore_config(Task::Lm);
  TrainConfig mqar = explore_config(Task::Mqar);
  const std::atomic<bool>* cancelled = nullptr;  // passed on to both training runs
  // When not empty, both runs keep their weights: PREFIX-lm.safetensors, PREFIX-mqar.safetensors.
  std::string weights_prefix;
};

// The file an experiment keeps a task's weights in, for a weights_prefix.
std::string weights_file(const std::string& prefix, Task task);

struct ExperimentMetrics {
  bool ok = false;
  std::string failure;         // "check causality: ...", "lm nan_loss: ...", ...
  msg::FailureKind failure_kind = msg::FailureKind::NONE;
  uint32_t failed_step = 0;    // as in TrainMetrics
  double loss = 0;             // LM held-out bits per byte
  double accuracy = 0;         // MQAR accuracy
  double tokens_per_second = 0;  // of the LM run
  uint64_t peak_memory_bytes = 0;
  double seconds = 0;          // the whole experiment
  std::string device_name;     // as in TrainMetrics, of the runs that trained
  std::string torch_version;
  std::vector<std::string> weights_errors;  // the runs' TrainMetrics::weights_error, where not empty
};

ExperimentMetrics run_experiment(const lang::Program& program, const ExperimentConfig& config,
                                 const std::function<void(const std::string& stage)>& progress = {});

// ---- functional duplicates (training/functional_probe.cpp) ----
// Two programs that compute the same function need one training, as in AutoML-Zero (Real et al.,
// 2020, arXiv:2003.03384, "functional equivalence checking"): the mixer runs on a fixed probe
// batch with weights drawn from a fixed seed, and its rounded outputs are hashed.

// The probe: the mixer alone (its output projection random, not zero), in float64 so that
// rewrites that differ only in rounding (silu(a) and a * sigmoid(a)) give the same digits.
struct ProbeConfig {
  int64_t d_model = 64;
  int64_t context = 24;  // tokens per probe sequence
  int64_t batch = 2;
  uint64_t seed = 1;
  int threads = 1;       // torch intra-op threads (as for training: fixed, so results are too)
  int decimals = 6;      // outputs are rounded to this many decimals before hashing
};

// SHA-256 (64 hex chars) of the probe's rounded outputs. Weights are named by each operator's
// ordinal in the canonical form (linear_0, linear_1, ...), so that rewrites which add or remove
// only parameter-free statements keep every weight. Throws lang::ProgramError when the program
// does not type-check at config.d_model.
std::string functional_hash(const lang::Program& program, const ProbeConfig& config);

}  // namespace asiarch::training
