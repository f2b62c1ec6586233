#pragma once
// The coordinator owns a campaign: the virtual clock, the event queue, the GPU slots and the
// stop rule. It appends every message to the event sink (the log) when it is sent, then delivers
// messages one at a time in (virtual time, seq) order and waits until the receiving actor has
// handled it and handed back what it sends. CAF's thread scheduling cannot change any outcome.
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <capnp/message.h>

#include "actors/actor_state.h"
#include "actors/campaign.h"
#include "actors/event_queue.h"
#include "actors/llm.h"
#include "actors/scenario.h"

namespace asiarch {

// Where the coordinator writes the log: the run store, a replay comparison, or memory.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void begin(const std::string& header_bytes) = 0;
  // Records event `seq` (canonical bytes, and the same decoded). False stops the campaign.
  virtual bool append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) = 0;
  // Makes what was appended durable, with the summary so far: once the header is written, every
  // 4,096 events, after each logged input a live run depends on (a training result, an LLM
  // reply), and once at the end.
  virtual void commit(const CampaignSummary&) {}
  virtual std::string digest_hex() const = 0;
  // The recorded event at `seq` when this sink compares with (or continues) a recorded log:
  // replay and resume take a live run's input events from here instead of training again.
  virtual std::optional<std::string> recorded_event(uint64_t) const { return std::nullopt; }
};

// Turns a dispatch of a live campaign into its measured result: the canonical Payload bytes of
// a trainResult. Runs on a worker thread, one job per call; `cancelled` turns true when nobody
// waits for the result any more (the campaign ended).
using LiveTrainer = std::function<std::string(const std::string& dispatch_event_bytes, const std::atomic<bool>& cancelled)>;

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
  explicit CoordinatorState(uint32_t gpu_slots);  // no faults
  explicit CoordinatorState(const Scenario& scenario);
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
  void fail_job(const Running& run, uint32_t slot, const std::string& failure, uint64_t now_ns, msg::OutboxWriter& out);

  std::optional<Scenario> faulty_;  // set when slot faults are armed
  std::set<uint32_t> free_slots_;   // lowest index first
  std::deque<Waiting> waiting_jobs_;
  std::map<uint32_t, Running> running_;  // by slot; kept only when slot faults are armed
};

// The problem with a slot's or a remote worker's answer (a TrainResult's canonical bytes) to the
// dispatch of job `job_id` on `slot`, or "" when it is a valid result: bytes that do not decode,
// another job or slot, an unknown status, or non-finite or out-of-range metrics of an ok result.
std::string slot_answer_problem(std::string_view result_bytes, uint64_t job_id, uint32_t slot);

// "crash", "timeout", "late", "garbage": the schema's names, as the summary counts them.
std::string fault_kind_name(msg::FaultKind kind);

// The summary's accounting, one rule for the loop and for `asiarch check`: an event counts when
// it is logged (proposals, rejections, slot faults) or when it is delivered (GPU hours,
// experiments, breakthroughs).
void count_logged(CampaignSummary& summary, msg::Payload::Reader payload);
void count_delivered(CampaignSummary& summary, msg::Payload::Reader payload);

// The canonical RunHeader of a campaign: h_0 of its chain is the SHA-256 of these bytes.
std::string run_header_bytes(const Scenario& scenario, uint64_t seed);

// Runs the campaign's loop over CAF actors, writing every event to `sink`. The chain starts
// from `header_bytes` (a replay passes the recorded header, which names the recording binary).
// In a live campaign the gpu-slots are not actors: a dispatched job's result is an input event,
// taken from the sink's recorded log while it has one, and otherwise from `trainer`, which
// runs each job on its own thread (no trainer: the loop stops when it needs a new input).
// An llmRequest blocks the loop until its reply is logged: the recorded reply when the sink has
// one, else `llm`'s answer (no client: the loop stops there); see actors/llm.h.
CampaignSummary run_loop(const Scenario& scenario, uint64_t seed, const std::string& header_bytes, EventSink& sink,
                         const ProgressFn& progress, const LiveTrainer& trainer = {}, const LlmClient& llm = {});

}  // namespace asiarch
