// The invariant checker over a run's event log (log_check.h). One walk over the events in seq
// order feeds every invariant; the first violation ends the walk.
#include "campaign/log_check.h"

#include <kj/exception.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "actors/actor_state.h"
#include "actors/coordinator.h"
#include "actors/interfaces.h"
#include "actors/llm.h"
#include "campaign/event_queue.h"
#include "campaign/lineage_projection.h"
#include "campaign/run_recorder.h"
#include "messages/codec.h"
#include "storage/committed_head.h"
#include "storage/run_store.h"

namespace asiarch {
namespace {

using Found = std::optional<LogViolation>;

constexpr const char* kChain = "chain";
constexpr const char* kRoutes = "routes";
constexpr const char* kTime = "time";
constexpr const char* kJobs = "jobs";
constexpr const char* kPool = "pool";
constexpr const char* kSummary = "summary";
constexpr const char* kLlm = "llm";
constexpr const char* kTables = "tables";
constexpr const char* kMeta = "meta";
constexpr const char* kHead = "head";

std::string str(uint64_t value) { return std::to_string(value); }

std::string event_name(uint64_t seq, msg::Event::Reader event) {
  return "event " + str(seq) + " (" + msg::kind_name(event.getPayload().which()) + ")";
}


// chain: h_0 against the header, then each stored link against the stored link before it and
// the stored event, then the event's own decoding.
class ChainCheck {
 public:
  ChainCheck(const storage::RunStore& store, const std::string& header_bytes) : store_(store) {
    const std::optional<storage::Digest> h0 = store.chain_link(0);
    if (!h0) {
      problem_at_start_ = LogViolation{0, kChain, "the chain table has no h_0: the chain was never begun or its first row was removed"};
    } else if (*h0 != storage::sha256(header_bytes)) {
      problem_at_start_ = LogViolation{0, kChain, "h_0 is not the SHA-256 of the run header: the header or the chain table was changed"};
    } else {
      previous_ = *h0;
    }
  }

  const Found& problem_at_start() const { return problem_at_start_; }
  // The last link checked: the log's digest once the walk is over.
  const storage::Digest& head() const { return previous_; }
  uint64_t last_seq() const { return next_seq_ - 1; }

  Found link(uint64_t key, std::string_view canonical_event) {
    const uint64_t seq = next_seq_++;
    if (key == 0) return LogViolation{seq, kChain, "the events table holds a key 0; event keys start at 1"};
    if (key != seq) {
      return LogViolation{seq, kChain, "event " + str(seq) + " is missing: the events table goes from seq " + str(seq - 1) + " to " + str(key)};
    }
    const std::optional<storage::Digest> stored = store_.chain_link(seq);
    if (!stored) return LogViolation{seq, kChain, "event " + str(seq) + " has no chain link h_" + str(seq)};
    if (*stored != storage::chain_next(previous_, seq, canonical_event)) {
      return LogViolation{seq, kChain, "the chain link h_" + str(seq) + " is not SHA-256(h_" + str(seq - 1) + " || be64(" + str(seq) +
                                           ") || event " + str(seq) + "): event " + str(seq) + " or its chain link was changed"};
    }
    previous_ = *stored;
    return std::nullopt;
  }

  // The event must decode in full (totalSize() follows every pointer, so a malformed message
  // throws here rather than in a later check) and name its own seq.
  static Found decodes(uint64_t seq, msg::CanonicalView<msg::Event>& view) {
    try {
      auto event = view.root();
      event.totalSize();
      if (event.getSeq() != seq) return LogViolation{seq, kChain, "event " + str(seq) + " says it is seq " + str(event.getSeq())};
    } catch (const kj::Exception& e) {
      return LogViolation{seq, kChain, "event " + str(seq) + " does not decode as an Event: " + e.getDescription().cStr()};
    }
    return std::nullopt;
  }

 private:
  const storage::RunStore& store_;
  Found problem_at_start_;
  storage::Digest previous_{};
  uint64_t next_seq_ = 1;
};

// time: the coordinator delivers queued events one at a time in (vtime, seq) order, and logs what
// the receiver sends in answer right after that delivery. The log does not say which delivery an
// event answers, so this check replays the queue: an event answers the delivery in progress when
// its sender is that delivery's receiver; otherwise that delivery is over and the next queued
// event is delivered, until one fits. The coordinator's stop follows the delivery it comes after,
// at its vtime.
//
// An actor may answer with nothing; then the answers of a later delivery to the same actor are
// attributed to the silent one (the log reads the same either way). That never reports a false
// violation. The later delivery was already queued, as nothing was logged between the two, and it
// precedes everything it sends in (vtime, seq) order (a larger seq, due no earlier), so answers
// queued early are never delivered before it: the replayed queue still delivers in the
// coordinator's order. And each such answer is due no earlier than its real delivery, which is
// delivered no earlier than the silent one it is checked against.
class TimeCheck {
 public:
  // The coordinator's accounting of the deliveries so far (count_delivered) and the virtual time
  // of the one being handled now: what a summary written at this point says of them.
  const CampaignSummary& delivered() const { return delivered_; }

  Found on_event(uint64_t seq, msg::Event::Reader event, std::string_view canonical_event) {
    const std::string from = event.getFrom().cStr();
    // The model's reply answers the delivery of its request to `llm`, like a derived event.
    if (event.getInput() && from != actor_name::kLlm) return on_input(seq, event, canonical_event);
    const bool stop = event.getPayload().which() == msg::Payload::STOP && from == actor_name::kCoordinator;
    while (from != current_.to && !stop) {
      if (queue_.empty()) {
        return LogViolation{seq, kTime, event_name(seq, event) + " from " + from + " answers no delivery: no message to " + from +
                                            " is left in the coordinator's queue after " + delivery_name(current_)};
      }
      QueuedEvent next = queue_.pop();
      if (next.vtime_ns < current_.vtime_ns) {
        return LogViolation{next.seq, kTime, delivery_name(next) + " comes after " + delivery_name(current_) + ": virtual time ran backwards"};
      }
      deliver(std::move(next));
    }
    if (event.getVtimeNs() < current_.vtime_ns) {
      return LogViolation{seq, kTime, event_name(seq, event) + " from " + from + " answers " + delivery_name(current_) + " but is due at vtime " +
                                          str(event.getVtimeNs()) + " ns, before it was sent"};
    }
    queue_.push(QueuedEvent{event.getVtimeNs(), seq, event.getTo().cStr(), std::string(canonical_event)});
    return std::nullopt;
  }

 private:
  // A live result is taken only when the coordinator's queue is empty: everything queued was
  // delivered before it. It then stands for a delivery to its sender (the slot), whose
  // "idle again" answers it.
  Found on_input(uint64_t seq, msg::Event::Reader event, std::string_view canonical_event) {
    while (!queue_.empty()) {
      QueuedEvent next = queue_.pop();
      if (next.vtime_ns < current_.vtime_ns) {
        return LogViolation{next.seq, kTime, delivery_name(next) + " comes after " + delivery_name(current_) + ": virtual time ran backwards"};
      }
      deliver(std::move(next));
    }
    if (event.getVtimeNs() < current_.vtime_ns) {
      return LogViolation{seq, kTime, "input " + event_name(seq, event) + " arrives at vtime " + str(event.getVtimeNs()) + " ns, before " +
                                          delivery_name(current_)};
    }
    current_ = QueuedEvent{event.getVtimeNs(), seq, event.getFrom().cStr(), std::string(canonical_event)};
    delivered_.vtime_ns = current_.vtime_ns;
    queue_.push(QueuedEvent{event.getVtimeNs(), seq, event.getTo().cStr(), std::string(canonical_event)});
    return std::nullopt;
  }

  // Accounted in the coordinator's order, so the sum of GPU hours is the same double.
  void deliver(QueuedEvent next) {
    current_ = std::move(next);
    delivered_.vtime_ns = current_.vtime_ns;
    msg::CanonicalView<msg::Event> view(current_.bytes);
    count_delivered(delivered_, view.root().getPayload());
  }

  static std::string delivery_name(const QueuedEvent& delivery) {
    if (delivery.seq == 0) return "the campaign's beginning at vtime 0";
    msg::CanonicalView<msg::Event> view(delivery.bytes);
    return event_name(delivery.seq, view.root()) + " delivered to " + delivery.to + " at vtime " + str(delivery.vtime_ns) + " ns";
  }

  // The delivery whose answers the walk is reading. The campaign begins in the coordinator at
  // vtime 0: it sends the first event.
  QueuedEvent current_{0, 0, actor_name::kCoordinator, {}};
  EventQueue queue_;
  CampaignSummary delivered_;
};

// jobs: every job is sent (trainJob), dispatched to a free slot, and ended by one trainResult.
// Without faults the slot that runs it sends that result, and a slot frees only when its
// slotIdle, sent with the result, is delivered, so at every point of the log no more jobs are
// dispatched-but-unfinished than there are slots. With faults the coordinator sends every
// result: a slot's answer it found valid, or a failure it declared in a slotFault (garbage, or
// a crash or timeout with no retries left); a crash or timeout with retries left takes the job
// off its slot and the job is dispatched again as the next attempt; a late answer it ignored
// must really be late (its dispatch no longer running).
class JobsCheck {
 public:
  Found on_event(uint64_t seq, msg::Event::Reader event) {
    auto payload = event.getPayload();
    const std::string from = event.getFrom().cStr();
    switch (payload.which()) {
      case msg::Payload::START:
        gpu_slots_ = payload.getStart().getGpuSlots();
        break;
      case msg::Payload::TRAIN_JOB:
        sent_.insert(payload.getTrainJob().getRef().getJobId());
        break;
      case msg::Payload::DISPATCH: {
        const uint64_t job = payload.getDispatch().getJob().getRef().getJobId();
        const uint32_t attempt = payload.getDispatch().getAttempt();
        const std::string slot = event.getTo().cStr();
        if (!sent_.count(job)) {
          return LogViolation{seq, kJobs, "dispatch of job " + str(job) + " to " + slot + ", but no trainJob with that id was sent before"};
        }
        if (auto ended = ended_.find(job); ended != ended_.end()) {
          return LogViolation{seq, kJobs, "job " + str(job) + " is dispatched to " + slot + " after it ended at seq " + str(ended->second)};
        }
        if (auto running = running_.find(job); running != running_.end()) {
          return LogViolation{seq, kJobs, "job " + str(job) + " is dispatched to " + slot + " while it still runs on " + running->second.slot +
                                              " (dispatched at seq " + str(running->second.dispatched_at) + ")"};
        }
        if (attempt != attempts_[job]) {
          return LogViolation{seq, kJobs, "job " + str(job) + " is dispatched as attempt " + str(attempt) + ", but " + str(attempts_[job]) +
                                              " attempts were lost before it"};
        }
        running_[job] = Running{slot, seq, attempt};
        if (running_.size() > gpu_slots_) {
          return LogViolation{seq, kJobs, str(running_.size()) + " jobs are dispatched and unfinished, more than the " + str(gpu_slots_) +
                                              " GPU slots of the campaign's start event"};
        }
        break;
      }
      case msg::Payload::SLOT_FAULT:
        return on_fault(seq, payload.getSlotFault());
      case msg::Payload::TRAIN_RESULT:
        return on_result(seq, from, payload.getTrainResult());
      default:
        break;
    }
    return std::nullopt;
  }

  // A failure the coordinator declared must be sent before the log ends: it is sent in the same
  // delivery as its slotFault, and what one delivery sends is logged at once.
  Found at_end(uint64_t last_seq) const {
    if (must_fail_.empty()) return std::nullopt;
    const auto& [job, declared_at] = *must_fail_.begin();
    return LogViolation{last_seq, kJobs, "job " + str(job) + " was declared failed by the slotFault at seq " + str(declared_at) +
                                             ", but no failed trainResult of it follows"};
  }

 private:
  struct Running {
    std::string slot;
    uint64_t dispatched_at;
    uint32_t attempt;
  };

  Found on_fault(uint64_t seq, msg::SlotFault::Reader fault) {
    const uint64_t job = fault.getJobId();
    const std::string slot = actor_name::gpu_slot(fault.getSlot());
    const std::string what = msg::enum_name(fault.getKind()) + " of job " + str(job) + " attempt " + str(fault.getAttempt()) + " on " + slot;
    const auto running = running_.find(job);
    const bool runs_there = running != running_.end() && running->second.slot == slot && running->second.attempt == fault.getAttempt();
    if (fault.getAction() == msg::FaultAction::IGNORED) {
      if (fault.getKind() != msg::FaultKind::LATE) return LogViolation{seq, kJobs, "the coordinator ignored a " + what + "; only late answers are ignored"};
      if (runs_there) return LogViolation{seq, kJobs, "a " + what + " is ignored as late, but that dispatch still runs: its answer was in time"};
      return std::nullopt;
    }
    if (!runs_there) return LogViolation{seq, kJobs, "slotFault: " + what + ", but that dispatch is not running"};
    running_.erase(running);
    if (fault.getAction() == msg::FaultAction::REQUEUED) {
      if (fault.getKind() == msg::FaultKind::GARBAGE) return LogViolation{seq, kJobs, "a " + what + " is re-queued; garbage fails the job"};
      ++attempts_[job];
    } else {
      must_fail_[job] = seq;
    }
    return std::nullopt;
  }

  Found on_result(uint64_t seq, const std::string& from, msg::TrainResult::Reader result) {
    const uint64_t job = result.getRef().getJobId();
    if (auto ended = ended_.find(job); ended != ended_.end()) {
      return LogViolation{seq, kJobs, "trainResult of job " + str(job) + " from " + from + ", but the job already ended at seq " + str(ended->second)};
    }
    if (auto declared = must_fail_.find(job); declared != must_fail_.end() && from == actor_name::kCoordinator) {
      if (result.getStatus() != msg::TrainStatus::FAILED) {
        return LogViolation{seq, kJobs, "job " + str(job) + " was declared failed at seq " + str(declared->second) + ", but its trainResult is ok"};
      }
      must_fail_.erase(declared);
      ended_[job] = seq;
      return std::nullopt;
    }
    // A slot's own result, or its answer that the coordinator passes on.
    const std::string slot = from == actor_name::kCoordinator ? actor_name::gpu_slot(result.getSlot()) : from;
    auto running = running_.find(job);
    if (running == running_.end()) {
      return LogViolation{seq, kJobs, "trainResult of job " + str(job) + " from " + from + ", but the job is not running"};
    }
    if (running->second.slot != slot) {
      return LogViolation{seq, kJobs, "trainResult of job " + str(job) + " comes from " + slot + ", but the job was dispatched to " +
                                          running->second.slot + " at seq " + str(running->second.dispatched_at)};
    }
    running_.erase(running);
    ended_[job] = seq;
    return std::nullopt;
  }

  uint64_t gpu_slots_ = 0;
  std::set<uint64_t> sent_;                 // job ids of the trainJobs sent so far
  std::map<uint64_t, Running> running_;     // job id -> where and when it was dispatched
  std::map<uint64_t, uint32_t> attempts_;   // job id -> attempts lost to crashes and timeouts
  std::map<uint64_t, uint64_t> must_fail_;  // job id -> seq of the slotFault that failed it
  std::map<uint64_t, uint64_t> ended_;      // job id -> seq of its trainResult
};

// pool: what the researcher's pool and the lineage rest on.
class PoolCheck {
 public:
  Found on_event(uint64_t seq, msg::Event::Reader event) {
    auto payload = event.getPayload();
    switch (payload.which()) {
      case msg::Payload::PROPOSAL: {
        const uint64_t arch = payload.getProposal().getArchId();
        if (auto earlier = proposed_.find(arch); earlier != proposed_.end()) {
          return LogViolation{seq, kPool, "arch " + str(arch) + " is proposed again; it was first proposed at seq " + str(earlier->second)};
        }
        proposed_[arch] = seq;
        break;
      }
      case msg::Payload::TRAIN_JOB: {
        auto ref = payload.getTrainJob().getRef();
        if (!proposed_.count(ref.getArchId())) {
          return LogViolation{seq, kPool, "trainJob " + str(ref.getJobId()) + " trains arch " + str(ref.getArchId()) + ", which was never proposed before"};
        }
        break;
      }
      case msg::Payload::TRAIN_RESULT: {
        auto result = payload.getTrainResult();
        // Only a result with real metrics is an evaluation: garbage that got through is not.
        const bool evaluated = result.getStatus() == msg::TrainStatus::OK && std::isfinite(result.getLoss()) &&
                               std::isfinite(result.getAccuracy());
        if (evaluated) trained_ok_.insert({result.getRef().getArchId(), result.getRef().getFidelity()});
        break;
      }
      case msg::Payload::POOL_UPDATE: {
        auto update = payload.getPoolUpdate();
        // A duplicate is scored with the result of the architecture it duplicates.
        const uint64_t trained = update.getReusedFrom() != 0 ? update.getReusedFrom() : update.getArchId();
        if (update.getOutcome() == msg::Outcome::SCORED && !trained_ok_.count({trained, update.getFidelity()})) {
          return LogViolation{seq, kPool, "poolUpdate scores arch " + str(update.getArchId()) + " at " + msg::enum_name(update.getFidelity()) +
                                              " fidelity, but no ok trainResult with finite metrics of arch " + str(trained) +
                                              " at that fidelity came before"};
        }
        break;
      }
      default:
        break;
    }
    return std::nullopt;
  }

 private:
  std::map<uint64_t, uint64_t> proposed_;                     // arch id -> seq of its proposal
  std::set<std::pair<uint64_t, msg::Fidelity>> trained_ok_;  // (arch id, fidelity) with an ok trainResult
};

// llm: a request goes to `llm` as a derived event; a reply is an input event from `llm` to the
// actor that asked, answers one open request of it (same requestId, requestHash = SHA-256 of the
// request), and only once.
class LlmCheck {
 public:
  Found on_event(uint64_t seq, msg::Event::Reader event) {
    auto payload = event.getPayload();
    const std::string from = event.getFrom().cStr(), to = event.getTo().cStr();
    if (payload.which() == msg::Payload::LLM_REQUEST) {
      auto request = payload.getLlmRequest();
      if (event.getInput() || to != actor_name::kLlm) {
        return LogViolation{seq, kLlm, "llmRequest from " + from + " goes to " + to + (event.getInput() ? " as an input event" : "") +
                                           "; requests are derived events to llm"};
      }
      const Key key{from, request.getRequestId()};
      if (auto earlier = open_.find(key); earlier != open_.end()) {
        return LogViolation{seq, kLlm, from + " sends llmRequest " + str(request.getRequestId()) + " again while the one at seq " +
                                           str(earlier->second.seq) + " is unanswered"};
      }
      open_[key] = Open{seq, llm_request_hash(request)};
    } else if (payload.which() == msg::Payload::LLM_REPLY) {
      auto reply = payload.getLlmReply();
      if (!event.getInput() || from != actor_name::kLlm) {
        return LogViolation{seq, kLlm, "llmReply from " + from + (event.getInput() ? "" : " as a derived event") +
                                           "; replies are input events from llm"};
      }
      const auto open = open_.find(Key{to, reply.getRequestId()});
      if (open == open_.end()) {
        return LogViolation{seq, kLlm, "llmReply to " + to + " answers request " + str(reply.getRequestId()) +
                                           ", which " + to + " has not sent or which was answered already"};
      }
      if (reply.getRequestHash() != open->second.hash) {
        return LogViolation{seq, kLlm, "llmReply to " + to + " names request hash " + reply.getRequestHash().cStr() +
                                           ", but the llmRequest at seq " + str(open->second.seq) + " hashes to " + open->second.hash};
      }
      open_.erase(open);
    }
    return std::nullopt;
  }

 private:
  using Key = std::pair<std::string, uint64_t>;  // requester, requestId
  struct Open {
    uint64_t seq;
    std::string hash;
  };
  std::map<Key, Open> open_;
};

// summary: the summary (meta "summary") is bound to the log: the event count and digest it names
// are a prefix of the chain (the whole log once finished); its counts are the log's up to there
// and its experiments, breakthroughs, GPU hours and virtual time what the deliveries before that
// event add up to, both by the coordinator's own accounting; its name, seed and target are the
// header's; a finished one ends with the coordinator's stop. Only a failure's text is not in the
// log (DIR/head binds it: see the meta invariant).
class SummaryCheck {
 public:
  explicit SummaryCheck(const std::optional<storage::Bytes>& bytes) {
    if (!bytes) return;
    try {
      stored_ = decode_summary(*bytes);
    } catch (const kj::Exception& e) {
      problem_ = LogViolation{0, kSummary, std::string("the run summary (meta \"summary\") does not decode: ") + e.getDescription().cStr()};
    }
  }

  // After the time check has seen the event, so that `delivered` is as of the delivery that sent it.
  void on_event(uint64_t seq, msg::Event::Reader event, const CampaignSummary& delivered) {
    const auto payload = event.getPayload();
    count_logged(logged_, payload);
    last_is_stop_ = payload.which() == msg::Payload::STOP && std::string_view(event.getFrom().cStr()) == actor_name::kCoordinator;
    if (last_is_stop_) stop_reason_ = payload.getStop().getReason().cStr();
    if (stored_ && seq == stored_->events) {
      expected_ = logged_;
      expected_.experiments = delivered.experiments;
      expected_.breakthroughs = delivered.breakthroughs;
      expected_.gpu_hours = delivered.gpu_hours;
      expected_.vtime_ns = delivered.vtime_ns;
    }
  }

  Found at_end(const storage::RunStore& store, uint64_t last_seq) const {
    if (problem_ || !stored_) return problem_;
    const CampaignSummary& summary = *stored_;
    const RecordedRun run = read_recorded_run(store);
    if (summary.scenario_name != run.scenario.name || summary.seed != run.seed || summary.target_experiments != run.scenario.campaign.max_experiments) {
      return LogViolation{0, kSummary, "the summary's scenario name, seed or target experiments are not the run header's"};
    }
    const uint64_t events = summary.events;
    if (summary.finished ? events != last_seq : events > last_seq) {
      return LogViolation{std::min(events, last_seq) + 1, kSummary,
                          std::string("the summary says the ") + (summary.finished ? "finished " : "") + "campaign logged " + str(events) +
                              " events, but the log holds " + str(last_seq)};
    }
    const auto link = store.chain_link(events);
    if ((!summary.digest.empty() || summary.finished) && (!link || summary.digest != storage::to_hex(*link))) {
      return LogViolation{events, kSummary, "the summary's digest " + summary.digest + " is not the chain link h_" + str(events) +
                                                (link ? " = " + storage::to_hex(*link) : std::string(" (missing)"))};
    }
    // An empty expectation where the summary names event 0: nothing was logged or delivered yet.
    const CampaignSummary& expected = expected_;
    if (summary.proposals != expected.proposals || summary.rejections != expected.rejections ||
        summary.rejections_by_check != expected.rejections_by_check || summary.faults != expected.faults) {
      return LogViolation{events, kSummary, "the summary's counts of proposals, rejections or slot faults are not the log's up to event " + str(events)};
    }
    if (summary.experiments != expected.experiments || summary.breakthroughs != expected.breakthroughs ||
        summary.gpu_hours != expected.gpu_hours || summary.vtime_ns != expected.vtime_ns) {
      return LogViolation{events, kSummary, "the summary's experiments, breakthroughs, GPU hours or virtual time are not what the deliveries up to event " +
                                                str(events) + " add up to (" + str(expected.experiments) + " experiments, " +
                                                str(expected.breakthroughs) + " breakthroughs)"};
    }
    if (summary.finished && (!last_is_stop_ || stop_reason_ != summary.stop_reason)) {
      return LogViolation{last_seq, kSummary, "the summary says the campaign finished (\"" + summary.stop_reason +
                                                  "\"), but the log does not end with the coordinator's stop for that reason"};
    }
    return std::nullopt;
  }

 private:
  std::optional<CampaignSummary> stored_;
  Found problem_;
  CampaignSummary logged_, expected_;
  bool last_is_stop_ = false;
  std::string stop_reason_;
};

// tables: archs, results and insights hold exactly the projection of the log, byte for byte.
template <typename Key>
Found compare_table(const char* table, const std::map<Key, std::string>& expected, const std::function<std::string(const Key&)>& key_name,
                    const std::function<void(const std::function<void(const Key&, std::string_view)>&)>& for_each_stored, uint64_t last_seq) {
  Found found;
  std::set<Key> stored;
  for_each_stored([&](const Key& key, std::string_view value) {
    if (found) return;
    stored.insert(key);
    const auto want = expected.find(key);
    if (want == expected.end()) {
      found = LogViolation{last_seq, kTables, "table " + std::string(table) + ", key " + key_name(key) + ": a record the log does not make"};
    } else if (want->second != value) {
      found = LogViolation{last_seq, kTables, "table " + std::string(table) + ", key " + key_name(key) + ": differs from the log's projection"};
    }
  });
  if (found) return found;
  for (const auto& [key, value] : expected) {
    if (!stored.count(key)) return LogViolation{last_seq, kTables, "table " + std::string(table) + ", key " + key_name(key) + ": missing (the log makes it)"};
  }
  return std::nullopt;
}

Found check_tables(const storage::RunStore& store, const ProjectedTables& expected, uint64_t last_seq) {
  const std::function<std::string(const uint64_t&)> id_name = [](const uint64_t& id) { return str(id); };
  if (Found f = compare_table<uint64_t>(
          "archs", expected.archs, id_name, [&](const auto& visit) { store.for_each_arch([&](uint64_t id, std::string_view v) { visit(id, v); }); },
          last_seq)) {
    return f;
  }
  using ResultKey = std::pair<uint64_t, uint8_t>;
  if (Found f = compare_table<ResultKey>(
          "results", expected.results, [](const ResultKey& k) { return str(k.first) + " (" + (k.second ? "verify" : "explore") + ")"; },
          [&](const auto& visit) { store.for_each_result([&](uint64_t id, uint8_t fidelity, std::string_view v) { visit(ResultKey{id, fidelity}, v); }); },
          last_seq)) {
    return f;
  }
  return compare_table<uint64_t>(
      "insights", expected.insights, id_name,
      [&](const auto& visit) { store.for_each_insight([&](uint64_t id, std::string_view v) { visit(id, v); }); }, last_seq);
}

// meta: only the keys a run writes, each in its format (the header is bound by the chain's h_0,
// the summary by the summary invariant), and while the store ends where DIR/head says, the table
// is the one committed there.
Found check_meta(const storage::RunStore& store, uint64_t last_seq, const std::optional<storage::CommittedHead>& committed_head) {
  Found found;
  store.for_each_meta([&](std::string_view key, std::string_view value) {
    if (found) return;
    if (key == meta_key::kHeader || key == meta_key::kSummary) return;
    if (key == meta_key::kStarts || key == meta_key::kLogWriteFailures) {
      if (value.size() != 8) found = LogViolation{last_seq, kMeta, "meta \"" + std::string(key) + "\" has " + str(value.size()) + " bytes, not 8"};
      return;
    }
    found = LogViolation{last_seq, kMeta, "meta holds a key a run does not write: \"" + std::string(key) + "\""};
  });
  if (found) return found;
  if (const auto why = storage::meta_changed(store, committed_head)) return LogViolation{last_seq, kMeta, *why};
  return std::nullopt;
}

// Another version's log may break this version's rules without being damaged (0.4.0 made every
// message kind one-way, for example): a violation says so.
std::string version_note(const std::string& header_bytes) {
  std::string recorded;
  try {
    recorded = msg::CanonicalView<msg::RunHeader>(header_bytes).root().getVersion().cStr();
  } catch (const kj::Exception&) {
    return "";  // the chain check names a damaged header
  }
  if (recorded.empty() || recorded == ASIARCH_VERSION) return "";
  return " (the log was recorded by asiarch " + recorded + " and is checked by " + ASIARCH_VERSION +
         ", whose rules may differ: check it with the version that wrote it)";
}

}  // namespace

LogCheckReport check_run_log(const std::filesystem::path& dir) {
  const auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  // Read before the store: the file is rewritten after each commit, so it never names more than
  // the snapshot below holds unless the store was set back.
  const std::optional<storage::CommittedHead> committed_head = storage::read_committed_head(dir);
  LogCheckReport report;
  report.invariants = {kChain, kRoutes, kTime, kJobs, kPool, kLlm, kSummary, kTables, kMeta, kHead};
  // One read transaction: a run still being written is checked as of one commit.
  store->read_snapshot([&] {
    const std::optional<storage::Bytes> header = store->meta(meta_key::kHeader);
    if (!header) throw storage::StorageError(dir.string() + " has no run header; it is not a complete run directory");
    ChainCheck chain(*store, *header);
    report.violation = chain.problem_at_start();
    if (report.violation) return;
    TimeCheck time;
    JobsCheck jobs;
    PoolCheck pool;
    LlmCheck llm;
    const std::optional<storage::Bytes> summary_bytes = store->meta(meta_key::kSummary);
    SummaryCheck summary(summary_bytes);
    ProjectedTables projected;
    store->for_each_event([&](uint64_t seq, std::string_view canonical_event) {
      if (report.violation) return;
      ++report.events;
      if ((report.violation = chain.link(seq, canonical_event))) return;
      msg::CanonicalView<msg::Event> view(canonical_event);
      if ((report.violation = ChainCheck::decodes(seq, view))) return;
      const auto event = view.root();
      if (auto problem = route_problem(event.getFrom().cStr(), event.getTo().cStr(), event.getPayload().which(), event.getInput())) {
        report.violation = LogViolation{seq, kRoutes, *problem};
        return;
      }
      if ((report.violation = time.on_event(seq, event, canonical_event))) return;
      if ((report.violation = jobs.on_event(seq, event))) return;
      if ((report.violation = pool.on_event(seq, event))) return;
      if ((report.violation = llm.on_event(seq, event))) return;
      summary.on_event(seq, event, time.delivered());
      project_event(event, projected);
    });
    const uint64_t last = chain.last_seq();
    if (!report.violation) report.violation = jobs.at_end(last);
    if (!report.violation) report.violation = summary.at_end(*store, last);
    if (!report.violation) report.violation = check_tables(*store, projected, last);
    if (!report.violation) report.violation = check_meta(*store, last, committed_head);
    if (!report.violation) {
      if (const auto why = storage::rolled_back(*store, committed_head)) report.violation = LogViolation{last, kHead, *why};
    }
    if (report.violation) report.violation->explanation += version_note(*header);
  });
  return report;
}

}  // namespace asiarch
