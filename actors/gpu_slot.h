#pragma once
// A GPU slot runs one training job at a time. In simulation it does not train: the scenario's
// oracle (synthetic, or the surrogate of a recorded live run) gives the result and the cost model
// the duration in virtual GPU hours. The result and the slot's "idle again" note are both sent
// with that duration as their delay.
//
// Its interface (what it accepts and sends) is Role::GpuSlot in actors/interfaces.cpp.
// With slot faults armed it answers with slotAnswer or slotCrash instead, or with nothing (a hang).
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "actors/actor_state.h"
#include "oracles/synthetic_oracle.h"
#include "scenario/scenario.h"
#include "training/training.h"

namespace asiarch {

class SimulatedGpuSlotState : public ActorState {
 public:
  // What a simulated slot reads of a scenario, and no more.
  struct Settings {
    CostModel costs;
    FaultSpec faults;
    static Settings of(const Scenario& scenario);
  };
  // The oracle is shared by all slots: it is read-only after construction.
  SimulatedGpuSlotState(Settings settings, uint64_t seed, uint32_t slot, std::shared_ptr<const Oracle> oracle);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  // With slot faults armed ([faults]): the answer goes to the coordinator as slotAnswer bytes,
  // unless this attempt crashes (slotCrash part-way), hangs (no answer), is late (answers after
  // the dispatch's timeout) or answers garbage.
  void answer_with_faults(msg::Dispatch::Reader dispatch, msg::TrainResult::Builder result, uint64_t delay_ns, msg::OutboxWriter& out) const;
  Settings settings_;
  uint64_t seed_;
  uint32_t slot_;
  std::shared_ptr<const Oracle> oracle_;
};

// A live gpu-slot trains: the measured checks, then the fidelity's language-model and MQAR runs
// (training/training.h). Its results are input events of the log (docs/ARCHITECTURE.md, "Input
// events"), so this is not an actor state: the loop runs it on a worker thread per job.

// Turns a dispatch of a live campaign into its measured result: the canonical Payload bytes of
// a trainResult. Runs on a worker thread, one job per call; `cancelled` turns true when nobody
// waits for the result any more (the campaign ended). Local (train_live_job) or remote
// (remote/remote_workers.h).
using LiveTrainer = std::function<std::string(const std::string& dispatch_event_bytes, const std::atomic<bool>& cancelled)>;

// What a live job reads of a scenario, and no more.
struct LiveJobSettings {
  FidelitySection fidelity;
  ModelSection model;     // the parameter budget, scaled to each fidelity's width
  std::string reference;  // [campaign] reference: the baseline the budget is taken from
  TaskSection task;
  LiveSection live;
  static LiveJobSettings of(const Scenario& scenario);
};

// The experiment a live job runs: the scenario's tasks and fidelity, seeded by the campaign seed
// and the job id (so `asiarch retrain` runs the same job again).
training::ExperimentConfig live_experiment_config(const LiveJobSettings& settings, uint64_t seed, msg::Fidelity fidelity, uint64_t job_id);

// Trains the job of a dispatch event; returns the canonical Payload bytes of its trainResult.
// `cancelled` stops the job early when the campaign no longer waits for it. With a run
// directory, the trained models' weights are kept under kept_weights_prefix (an output, not
// part of the log: a failed write is logged and changes nothing else).
std::string train_live_job(const LiveJobSettings& settings, uint64_t seed, const std::string& dispatch_event_bytes,
                           const std::atomic<bool>& cancelled, const std::filesystem::path& run_dir = {});

// Where a live run keeps the weights of an architecture's job at a fidelity (at verify, of its
// first seed, replicate 0): this prefix with
// -lm.safetensors and -mqar.safetensors (training::weights_file), e.g.
// DIR/weights/arch-7-explore-lm.safetensors.
std::filesystem::path kept_weights_prefix(const std::filesystem::path& run_dir, uint64_t arch_id, msg::Fidelity fidelity);

// A trainResult's measured fields from an experiment's metrics (what retrain compares too).
void set_measured_result(msg::TrainResult::Builder result, const training::ExperimentMetrics& metrics);

}  // namespace asiarch
