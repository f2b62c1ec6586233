#pragma once
// Where the loop's input events come from (docs/ARCHITECTURE.md, "Input events"): a live job's
// result and the language model's reply. When only an input can move the campaign on, the loop
// asks its sources in a fixed order (the recorded log first, so that replay and resume never
// train or call the model again) and logs the first input one has; when none has one, it starts
// the sources' background work and waits until a result is posted back to its thread.
//
// Three sources: the recorded log of the sink (replay, resume); the training threads, which run
// a LiveTrainer per job (train_live_job in this process, or remote_trainer handing the job to an
// `asiarch worker`); and the model, called through an LlmClient on a worker thread.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "actors/gpu_slot.h"
#include "actors/llm.h"
#include "campaign/loop.h"

namespace asiarch {

// A job a live gpu-slot holds: dispatched, its result not logged yet.
struct LiveJob {
  uint64_t dispatch_vtime_ns = 0;
  std::string dispatch_bytes;  // the canonical dispatch event
  bool started = false;        // a source is producing its result
};

// The llmRequest the loop is blocked on.
struct PendingLlm {
  uint64_t vtime_ns = 0;
  std::string request_bytes;  // the canonical llmRequest event
  bool started = false;       // a source is producing its reply
};

// What the loop waits for: the reply to `llm` when it is set (nothing else is taken meanwhile),
// else a result of one of `jobs`.
struct InputNeed {
  PendingLlm* llm = nullptr;
  std::map<uint32_t, LiveJob>* jobs = nullptr;  // by slot
  uint64_t next_seq = 0;                        // the seq the input will be logged at
  uint64_t now_ns = 0;                          // the loop's virtual time
};

// An input event to log: a trainResult from `from` (gpu-slot-N), or the model's reply (from
// `llm`, timed at its request). `payload_bytes` is a canonical Payload.
struct Input {
  uint64_t vtime_ns = 0;
  std::string from;
  std::string payload_bytes;
};

// Hands a background result to the loop's thread: `key` names what it answers within its source
// (a slot), `ok` false when the work failed (then `answer` says why and the campaign fails).
using PostInput = std::function<void(uint32_t key, bool ok, std::string answer)>;

class InputSource {
 public:
  virtual ~InputSource() = default;
  // An input for `need` that is ready now, or nullopt.
  virtual std::optional<Input> take(const InputNeed& need) = 0;
  // Starts producing what `need` waits for, each result posted through `post` from a worker
  // thread. False when this source cannot produce it (no trainer, no client, or it never does).
  virtual bool start(const InputNeed& need, const PostInput& post) = 0;
  // A result `post` brought to the loop's thread.
  virtual void arrived(uint32_t key, std::string answer) = 0;
};

// The recorded log's next event, when it is an input (a recorded log must hold the reply where
// the loop is blocked on the model, or the campaign diverges from it).
class RecordedInputs : public InputSource {
 public:
  explicit RecordedInputs(const EventSink& sink) : sink_(sink) {}
  std::optional<Input> take(const InputNeed& need) override;
  bool start(const InputNeed&, const PostInput&) override { return false; }
  void arrived(uint32_t, std::string) override {}

 private:
  const EventSink& sink_;
};

// Live jobs, each trained on its own thread; a result is timed at its dispatch plus its measured
// duration. Results wait while the loop is blocked on the model. The destructor waits for the
// jobs still running (they are told that nobody waits for them): a worker thread must not outlive
// the loop it reports to.
class TrainingThreads : public InputSource {
 public:
  explicit TrainingThreads(const LiveTrainer& trainer) : trainer_(trainer) {}
  ~TrainingThreads() override;
  std::optional<Input> take(const InputNeed& need) override;
  bool start(const InputNeed& need, const PostInput& post) override;
  void arrived(uint32_t slot, std::string answer) override;

 private:
  const LiveTrainer& trainer_;
  std::atomic<bool> cancelled_{false};
  std::vector<std::thread> workers_;
  std::deque<std::pair<uint32_t, std::string>> arrivals_;  // (slot, canonical trainResult Payload), as they arrived
};

// The model's reply to the pending request, from the client on a worker thread, one call at a
// time. The destructor waits for a call in flight (bounded by [llm] timeout_s and retries).
class ModelReplies : public InputSource {
 public:
  explicit ModelReplies(const LlmClient& client) : client_(client) {}
  ~ModelReplies() override;
  std::optional<Input> take(const InputNeed& need) override;
  bool start(const InputNeed& need, const PostInput& post) override;
  void arrived(uint32_t, std::string answer) override { reply_ = std::move(answer); }

 private:
  const LlmClient& client_;
  std::thread worker_;
  std::optional<std::string> reply_;  // canonical Payload (llmReply), not taken yet
};

// What the exception in flight says, for a failure message: every handler of the loop and every
// worker thread catches everything.
std::string describe_current_exception();

}  // namespace asiarch
