#pragma once
// The campaign's loop: the virtual clock, the event queue and the stop rule. It appends every
// message to the event sink (the log) when it is sent, then delivers messages one at a time in
// (virtual time, seq) order and waits until the receiving actor has handled it and handed back
// what it sends, so CAF's thread scheduling cannot change any outcome. docs/ARCHITECTURE.md,
// "The coordinator's loop", walks through it.
#include <optional>
#include <string>

#include "actors/gpu_slot.h"
#include "actors/llm.h"
#include "campaign/campaign.h"
#include "campaign/commit_policy.h"
#include "messages/codec.h"
#include "scenario/scenario.h"

namespace asiarch {

// Where the loop writes the log: the run store, a replay comparison, or memory.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void begin(const std::string& header_bytes) = 0;
  // Records event `seq` (canonical bytes, and the same decoded). False stops the campaign.
  virtual bool append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) = 0;
  // Makes what was appended durable, with the summary so far, when the CommitPolicy says.
  virtual void commit(const CampaignSummary&) {}
  virtual std::string digest_hex() const = 0;
  // The recorded event at `seq` when this sink compares with (or continues) a recorded log:
  // replay and resume take a live run's input events from here instead of training again.
  virtual std::optional<std::string> recorded_event(uint64_t) const { return std::nullopt; }
};

// The summary's accounting, one rule for the loop and for `asiarch check`: an event counts when
// it is logged (proposals, rejections, slot faults) or when it is delivered (GPU hours,
// experiments, breakthroughs).
void count_logged(CampaignSummary& summary, msg::Payload::Reader payload);
void count_delivered(CampaignSummary& summary, msg::Payload::Reader payload);

// Runs the campaign's loop over CAF actors, writing every event to `sink`. The chain starts
// from `header_bytes` (a replay passes the recorded header, which names the recording binary).
// In a live campaign the gpu-slots are not actors: a dispatched job's result is an input event,
// taken from the sink's recorded log while it has one, and otherwise from `trainer`, which
// runs each job on its own thread (no trainer: the loop stops when it needs a new input).
// An llmRequest blocks the loop until its reply is logged: the recorded reply when the sink has
// one, else `llm`'s answer (no client: the loop stops there); see actors/llm.h.
CampaignSummary run_loop(const Scenario& scenario, uint64_t seed, const std::string& header_bytes, EventSink& sink,
                         const ProgressFn& progress, const LiveTrainer& trainer = {}, const LlmClient& llm = {},
                         const CommitPolicy& commits = {});

}  // namespace asiarch
