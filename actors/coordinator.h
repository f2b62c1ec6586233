#pragma once
// The coordinator actor: schedules jobs onto free GPU slots and, with [faults], supervises them.
// The campaign's loop, which delivers every actor's messages, is campaign/loop.h.
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <capnp/message.h>

#include "actors/actor_state.h"
#include "oracles/synthetic_oracle.h"
#include "scenario/scenario.h"

namespace asiarch {

// The coordinator's own part of the loop: scheduling jobs onto free GPU slots.
// A trainJob waits until a slot is free. Its interface (what it accepts and sends) is
// Role::Coordinator in actors/interfaces.cpp.
//
// With slot faults armed ([faults], FaultSpec::slot_faults_armed) it also supervises the slots:
// each dispatch starts a jobTimeout timer; a slot answers with slotAnswer, whose bytes are
// checked before the analyst gets them as a trainResult (garbage fails the job); a slotCrash or
// a timeout re-queues the job (up to job_retries, then it fails) and restarts the slot after
// slot_restart_gpu_hours (slotRestart); an answer to a dispatch that was timed out is ignored.
// Every such decision is logged as a slotFault, a note to itself.
class CoordinatorState : public ActorState {
 public:
  // What the coordinator reads of a scenario, and no more.
  struct Settings {
    uint32_t gpu_slots = 4;
    FaultSpec faults;  // all 0: no supervision
    CostModel costs;   // for timeouts in multiples of a job's cost
    static Settings of(const Scenario& scenario);
  };
  explicit CoordinatorState(Settings settings);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  using JobCopy = std::unique_ptr<capnp::MallocMessageBuilder>;  // root: TrainJob
  struct Waiting {
    JobCopy job;
    uint32_t attempt;
  };
  struct Running {
    JobCopy job;
    uint32_t attempt;
    uint64_t since_ns;  // virtual time of the dispatch
  };
  void enqueue(Waiting waiting, bool first, uint64_t now_ns, msg::OutboxWriter& out);
  void slot_available(uint32_t slot, uint64_t now_ns, msg::OutboxWriter& out);
  void dispatch(uint32_t slot, Waiting waiting, uint64_t now_ns, msg::OutboxWriter& out);
  uint64_t timeout_ns(msg::TrainJob::Reader job) const;
  // The Running entry of `slot` when it runs (job_id, attempt); nullptr otherwise.
  Running* running(uint32_t slot, uint64_t job_id, uint32_t attempt);
  void on_answer(msg::SlotAnswer::Reader answer, uint64_t now_ns, msg::OutboxWriter& out);
  // A crash or timeout: the job leaves the slot, which restarts; the job is re-queued or fails.
  void lose_job(uint32_t slot, msg::FaultKind kind, const std::string& detail, uint64_t now_ns, msg::OutboxWriter& out);
  void fail_job(const Running& run, uint32_t slot, msg::FailureKind kind, const std::string& failure, uint64_t now_ns,
                msg::OutboxWriter& out);

  Settings settings_;
  bool supervising_;                // slot faults are armed
  std::set<uint32_t> free_slots_;   // lowest index first
  std::deque<Waiting> waiting_jobs_;
  std::map<uint32_t, Running> running_;  // by slot; kept only when slot faults are armed
};

// The problem with a slot's or a remote worker's answer (a TrainResult's canonical bytes) to the
// dispatch of job `job_id` on `slot`, or "" when it is a valid result: bytes that do not decode,
// another job or slot, an unknown status, or non-finite or out-of-range metrics of an ok result.
std::string slot_answer_problem(std::string_view result_bytes, uint64_t job_id, uint32_t slot);


}  // namespace asiarch
