#include "campaign/loop.h"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include "actors/analyst.h"
#include "actors/cognition.h"
#include "actors/coordinator.h"
#include "actors/engineer.h"
#include "actors/gpu_slot.h"
#include "actors/interfaces.h"
#include "actors/researcher.h"
#include "campaign/event_queue.h"
#include "oracles/surrogate_oracle.h"
#include "oracles/synthetic_oracle.h"

namespace asiarch {
namespace {

using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using begin_atom = caf::atom_constant<caf::atom("begin")>;
// A live job's result (or, when !ok, why its worker failed), from a worker thread.
using arrival_atom = caf::atom_constant<caf::atom("arrival")>;
// The language model's reply (or, when !ok, why the client failed), from a worker thread.
using llm_reply_atom = caf::atom_constant<caf::atom("llmreply")>;

// The one interface every actor of the loop declares: take a canonical Event, answer with the
// canonical Outbox of what it sends.
using loop_actor = caf::typed_actor<caf::replies_to<deliver_atom, std::string>::with<std::string>>;

// What the exception in flight says. Every handler of the loop catches everything: an exception
// escaping an actor would end it while the others wait for it forever.
std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (const kj::Exception& e) {
    return std::string("a message could not be decoded: ") + e.getDescription().cStr();
  } catch (...) {
    return "an unknown exception";
  }
}

// `busy_seconds` accumulates the wall clock spent in the handler (CampaignSummary::actor_seconds):
// every actor runs on the scheduler's one thread, so no two handlers touch it at once.
loop_actor::behavior_type serve(loop_actor::pointer, std::shared_ptr<ActorState> state, double* busy_seconds) {
  return {
      [state, busy_seconds](deliver_atom, const std::string& event_bytes) -> caf::result<std::string> {
        const auto start = std::chrono::steady_clock::now();
        try {
          msg::CanonicalView<msg::Event> event(event_bytes);
          msg::OutboxWriter out;
          state->handle(event.root(), out);
          std::string answer = out.finish();
          *busy_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          return answer;
        } catch (...) {
          return caf::make_error(caf::sec::runtime_error, describe_current_exception());
        }
      },
  };
}

// A job that a live gpu-slot holds: dispatched, its result not logged yet.
struct LiveJob {
  uint64_t dispatch_vtime_ns = 0;
  std::string dispatch_bytes;  // the canonical dispatch event
  bool started = false;        // running on a worker thread in this process
};

// The llmRequest the loop is blocked on.
struct PendingLlm {
  uint64_t vtime_ns = 0;
  std::string request_bytes;  // the canonical llmRequest event
  bool started = false;       // the client is answering it on a worker thread
};

struct Arrival {
  uint32_t slot;
  std::string payload_bytes;  // canonical Payload (trainResult)
};

}  // namespace

void count_logged(CampaignSummary& summary, msg::Payload::Reader payload) {
  if (payload.which() == msg::Payload::PROPOSAL) ++summary.proposals;
  if (payload.which() == msg::Payload::SLOT_FAULT) ++summary.faults[fault_kind_name(payload.getSlotFault().getKind())];
  if (payload.which() == msg::Payload::REJECTION) {
    ++summary.rejections;
    ++summary.rejections_by_check[payload.getRejection().getCheck().cStr()];
  }
}

void count_delivered(CampaignSummary& summary, msg::Payload::Reader payload) {
  if (payload.which() == msg::Payload::TRAIN_RESULT) {
    auto result = payload.getTrainResult();
    summary.gpu_hours += result.getGpuHours();
    // Ablations measure a breakthrough's components: they are not experiments of the budget.
    if (result.getRef().getFidelity() == msg::Fidelity::EXPLORE && result.getRef().getAblationOf() == 0) ++summary.experiments;
  }
  if (payload.which() == msg::Payload::POOL_UPDATE) summary.breakthroughs = payload.getPoolUpdate().getBreakthroughs();
}

namespace {

// The state of one campaign's loop, owned by the coordinator actor.
class Loop {
 public:
  Loop(const Scenario& scenario, EventSink& sink, const ProgressFn& progress, const LiveTrainer& trainer, const LlmClient& llm,
       const CommitPolicy& commits)
      : scenario_(scenario), sink_(sink), progress_(progress), trainer_(trainer), llm_(llm), commits_(commits), live_(scenario.mode == Mode::Live),
        coordinator_(scenario) {}

  // Training that is still running when the campaign ends is waited for: a worker thread must
  // not outlive the loop it reports to. Its result is not logged.
  ~Loop() {
    cancelled_ = true;
    if (llm_worker_.joinable()) llm_worker_.join();  // bounded by [llm] timeout_s and retries
    if (!workers_.empty()) spdlog::info("waiting for the training jobs still running to end");
    for (auto& worker : workers_) worker.join();
  }

  bool live() const { return live_; }
  bool waiting_for_input = false;  // the loop is idle until a live result or the model's reply arrives

  std::map<std::string, loop_actor> actors;
  CampaignSummary summary;
  std::string failure;  // set when an actor or the loop itself failed

  // The header and a first commit, before any actor starts: readers see the run at once.
  void open_log(const std::string& header_bytes) {
    sink_.begin(header_bytes);
    sink_.commit(summary);
  }

  void begin() {
    capnp::MallocMessageBuilder message;
    auto payload = message.initRoot<msg::Payload>();
    auto start = payload.initStart();
    auto names = start.initStartPrograms(static_cast<unsigned>(scenario_.start.size()));
    for (unsigned i = 0; i < scenario_.start.size(); ++i) names.set(i, scenario_.start[i]);
    start.setGpuSlots(scenario_.gpu_slots);
    send(0, actor_name::kCoordinator, actor_name::kResearcher, payload.asReader());
  }

  // Delivers events addressed to the coordinator itself, and hands dispatches to live slots,
  // until the next event belongs to an actor; returns that one, or nothing when the campaign is
  // over or waits for an input event (awaiting_input()).
  std::optional<QueuedEvent> next_for_actor() {
    while (!stopped_ && !llm_pending_) {
      if (queue_.empty()) {
        if (!live_jobs_.empty()) break;
        stop("nothing left to do: no event is queued");
        break;
      }
      QueuedEvent next = queue_.pop();
      // Virtual time never runs backwards: the queue is ordered and delays are unsigned.
      if (next.vtime_ns < summary.vtime_ns) throw std::logic_error("coordinator: virtual time ran backwards");
      summary.vtime_ns = next.vtime_ns;
      if (next.to == actor_name::kLlm) {
        llm_pending_ = PendingLlm{next.vtime_ns, std::move(next.bytes), false};
        break;
      }
      if (live_ && next.to != actor_name::kCoordinator && gpu_slot_index(next.to)) {
        hold_live_job(std::move(next));
        continue;
      }
      if (next.to != actor_name::kCoordinator) {
        if (!actors.count(next.to)) throw std::logic_error("coordinator: message to unknown actor " + next.to);
        return next;
      }
      msg::CanonicalView<msg::Event> event(next.bytes);
      msg::OutboxWriter out;
      coordinator_.handle(event.root(), out);
      delivered(next.to, event.root(), out.finish());
    }
    return std::nullopt;
  }

  bool awaiting_input() const { return !stopped_ && (llm_pending_ || (queue_.empty() && !live_jobs_.empty())); }

  // The next logged input event, when the sink holds a recorded log that continues with one.
  // While an llmRequest is out, that must be its reply.
  bool take_recorded_input() {
    const auto recorded = sink_.recorded_event(summary.events + 1);
    if (!recorded) return false;
    msg::CanonicalView<msg::Event> view(*recorded);
    auto event = view.root();
    if (llm_pending_) {
      if (!event.getInput() || event.getPayload().which() != msg::Payload::LLM_REPLY) {
        throw std::runtime_error("the recorded log diverges at seq " + std::to_string(summary.events + 1) + ": it holds " +
                                 msg::kind_name(event.getPayload().which()) + " where the reply to the llmRequest just recomputed belongs");
      }
      accept_llm_reply(event.getPayload());
      return true;
    }
    if (!event.getInput()) return false;
    accept_input(event.getVtimeNs(), event.getFrom(), event.getPayload());
    return true;
  }

  // The model's reply, once the client has given it.
  bool take_llm_reply() {
    if (!llm_pending_ || !llm_reply_) return false;
    llm_worker_.join();  // it has sent the reply: its last act
    msg::CanonicalView<msg::Payload> payload(*llm_reply_);
    accept_llm_reply(payload.root());
    llm_reply_.reset();
    return true;
  }

  void llm_replied(std::string payload_bytes) { llm_reply_ = std::move(payload_bytes); }

  // The first live result that arrived, timed at its dispatch plus its measured duration.
  // Results wait while the loop is blocked on the model.
  bool take_arrival() {
    if (llm_pending_ || arrivals_.empty()) return false;
    Arrival arrival = std::move(arrivals_.front());
    arrivals_.pop_front();
    const auto job = live_jobs_.find(arrival.slot);
    if (job == live_jobs_.end()) throw std::logic_error("coordinator: a result arrived from idle " + actor_name::gpu_slot(arrival.slot));
    msg::CanonicalView<msg::Payload> payload(arrival.payload_bytes);
    // One multiplication, not hours_to_ns: logged live campaigns replay with the rounding they had.
    const double ns = payload.root().getTrainResult().getGpuHours() * 3.6e12;
    const uint64_t vtime = std::max(summary.vtime_ns, job->second.dispatch_vtime_ns + static_cast<uint64_t>(std::llround(ns)));
    accept_input(vtime, actor_name::gpu_slot(arrival.slot), payload.root());
    return true;
  }

  void arrived(uint32_t slot, std::string payload_bytes) { arrivals_.push_back(Arrival{slot, std::move(payload_bytes)}); }

  // With no trainer or client (a replay), a campaign ends where its recorded inputs end.
  bool can_obtain_input() const { return llm_pending_ ? static_cast<bool>(llm_) : static_cast<bool>(trainer_); }
  void stop_for_missing_input() {
    if (llm_pending_) {
      msg::CanonicalView<msg::Event> event(llm_pending_->request_bytes);
      const uint64_t seq = event.root().getSeq();
      llm_pending_.reset();
      stop("the recorded log has no reply to the llmRequest at seq " + std::to_string(seq) + " and no model is configured to ask");
      return;
    }
    stop("the recorded log has no result for the " + std::to_string(live_jobs_.size()) + " job(s) in flight");
  }

  // Asks the model on a worker thread (once per request); it reports back with llm_reply_atom.
  void start_llm_call(const caf::actor& coordinator) {
    if (llm_pending_->started) return;
    llm_pending_->started = true;
    llm_worker_ = std::thread([this, coordinator, bytes = llm_pending_->request_bytes] {
      bool ok = true;
      std::string answer;
      try {
        answer = llm_(bytes);
      } catch (...) {
        ok = false;
        answer = "the LLM client failed: " + describe_current_exception();
      }
      caf::anon_send(coordinator, llm_reply_atom::value, ok, std::move(answer));
    });
  }

  bool blocked_on_llm() const { return static_cast<bool>(llm_pending_); }

  // Jobs not running yet start on worker threads; each reports back with an arrival message.
  void start_live_jobs(const caf::actor& coordinator) {
    for (auto& [slot, job] : live_jobs_) {
      if (job.started) continue;
      job.started = true;
      workers_.emplace_back([this, coordinator, slot = slot, bytes = job.dispatch_bytes] {
        bool ok = true;
        std::string answer;
        try {
          answer = trainer_(bytes, cancelled_);
        } catch (...) {
          ok = false;
          answer = actor_name::gpu_slot(slot) + " failed: " + describe_current_exception();
        }
        caf::anon_send(coordinator, arrival_atom::value, slot, ok, std::move(answer));
      });
    }
  }

  // Accounts for an event `receiver` has handled and sends what it answered.
  void delivered(const std::string& receiver, msg::Event::Reader event, const std::string& outbox_bytes) {
    count_delivered(summary, event.getPayload());

    msg::CanonicalView<msg::Outbox> outbox(outbox_bytes);
    for (auto outgoing : outbox.root().getMessages()) {
      send(summary.vtime_ns + outgoing.getDelayNs(), receiver, outgoing.getTo(), outgoing.getPayload());
    }
    // Progress every tenth of the campaign; a live campaign, where each takes minutes, every experiment.
    const uint64_t parts = live_ ? scenario_.max_experiments : 10;
    if (progress_ && summary.experiments * parts >= next_progress_ * scenario_.max_experiments) {
      while (summary.experiments * parts >= next_progress_ * scenario_.max_experiments) ++next_progress_;
      progress_(summary);
    }
    if (stopped_) return;
    if (summary.experiments >= scenario_.max_experiments) {
      stop("reached max_experiments (" + std::to_string(scenario_.max_experiments) + ")");
    } else if (scenario_.max_gpu_hours > 0 && summary.gpu_hours >= scenario_.max_gpu_hours) {
      stop("reached max_gpu_hours");
    } else if (summary.events >= scenario_.max_events) {
      stop("reached max_events (" + std::to_string(scenario_.max_events) + "): the loop is not finishing experiments");
    }
  }

  // The last commit: what was logged is committed whether the campaign finished or failed.
  void finish() {
    summary.finished = failure.empty();
    if (!failure.empty()) summary.stop_reason = "failed: " + failure;
    summary.digest = sink_.digest_hex();
    sink_.commit(summary);
  }

 private:
  // Logs one message and queues it for delivery; one outside the actors' interfaces fails the
  // campaign before it is logged.
  void send(uint64_t vtime_ns, const std::string& from, const std::string& to, msg::Payload::Reader payload, bool input = false) {
    if (auto problem = route_problem(from, to, payload.which(), input)) throw std::logic_error("coordinator: " + *problem);
    capnp::MallocMessageBuilder message;
    auto event = message.initRoot<msg::Event>();
    const uint64_t seq = ++summary.events;
    event.setSeq(seq);
    event.setVtimeNs(vtime_ns);
    event.setFrom(from);
    event.setTo(to);
    event.setInput(input);
    event.setPayload(payload);
    std::string bytes = msg::canonical_bytes(event.asReader());
    count_logged(summary, payload);
    if (!sink_.append(seq, bytes, event.asReader())) stopped_ = true;
    if (commits_.due_after(seq)) {
      summary.digest = sink_.digest_hex();
      sink_.commit(summary);
    }
    queue_.push(QueuedEvent{vtime_ns, seq, to, std::move(bytes)});
  }

  void hold_live_job(QueuedEvent dispatch) {
    msg::CanonicalView<msg::Event> event(dispatch.bytes);
    const uint32_t slot = event.root().getPayload().getDispatch().getSlot();
    live_jobs_[slot] = LiveJob{dispatch.vtime_ns, std::move(dispatch.bytes), false};
  }

  // Logs the model's reply to the pending request as an input event from `llm` to the requester,
  // at the request's virtual time, and commits it before it is delivered. A reply that answers
  // another request (a recorded log that does not fit this campaign) stops the campaign.
  void accept_llm_reply(msg::Payload::Reader payload) {
    msg::CanonicalView<msg::Event> view(llm_pending_->request_bytes);
    auto request_event = view.root();
    auto request = request_event.getPayload().getLlmRequest();
    auto reply = payload.getLlmReply();
    const std::string hash = llm_request_hash(request);
    if (reply.getRequestId() != request.getRequestId() || reply.getRequestHash() != hash) {
      throw std::runtime_error("the llmReply at seq " + std::to_string(summary.events + 1) + " answers request " +
                               std::to_string(reply.getRequestId()) + " with hash " + reply.getRequestHash().cStr() +
                               ", but the llmRequest recomputed at seq " + std::to_string(request_event.getSeq()) + " is request " +
                               std::to_string(request.getRequestId()) + " with hash " + hash +
                               ": the campaign asks the model something else than when it was recorded");
    }
    const uint64_t vtime_ns = llm_pending_->vtime_ns;
    const std::string requester = request_event.getFrom().cStr();
    llm_pending_.reset();
    send(vtime_ns, actor_name::kLlm, requester, payload, true);
    summary.digest = sink_.digest_hex();
    sink_.commit(summary);
  }

  // Logs a live job's result as an input event and commits it before anything acts on it; the
  // slot's "idle again" follows as a derived event.
  void accept_input(uint64_t vtime_ns, const std::string& from, msg::Payload::Reader payload) {
    const auto slot = gpu_slot_index(from);
    if (!slot || payload.which() != msg::Payload::TRAIN_RESULT || !live_jobs_.count(*slot)) {
      throw std::logic_error("coordinator: an input event from " + from + " (" + msg::kind_name(payload.which()) +
                             ") does not answer a job in flight");
    }
    if (vtime_ns < summary.vtime_ns) throw std::logic_error("coordinator: an input event is timed before the present");
    summary.vtime_ns = vtime_ns;
    live_jobs_.erase(*slot);
    send(vtime_ns, from, actor_name::kAnalyst, payload, true);
    summary.digest = sink_.digest_hex();
    sink_.commit(summary);
    capnp::MallocMessageBuilder message;
    message.initRoot<msg::Payload>().initSlotIdle().setSlot(*slot);
    send(vtime_ns, from, actor_name::kCoordinator, message.getRoot<msg::Payload>().asReader());
  }

  void stop(const std::string& reason) {
    summary.stop_reason = reason;
    capnp::MallocMessageBuilder message;
    auto payload = message.initRoot<msg::Payload>();
    auto s = payload.initStop();
    s.setReason(reason);
    s.setExperiments(summary.experiments);
    s.setBreakthroughs(summary.breakthroughs);
    send(summary.vtime_ns, actor_name::kCoordinator, actor_name::kCoordinator, payload.asReader());
    stopped_ = true;
  }

  const Scenario& scenario_;
  EventSink& sink_;
  const ProgressFn& progress_;
  const LiveTrainer& trainer_;
  const LlmClient& llm_;
  const CommitPolicy commits_;
  const bool live_;
  CoordinatorState coordinator_;
  EventQueue queue_;
  bool stopped_ = false;
  std::map<uint32_t, LiveJob> live_jobs_;  // by slot
  std::deque<Arrival> arrivals_;           // live results in the order they arrived
  std::optional<PendingLlm> llm_pending_;  // the request the loop is blocked on
  std::optional<std::string> llm_reply_;   // its reply from the client (canonical Payload), not logged yet
  std::thread llm_worker_;                 // the client's call, one at a time
  std::atomic<bool> cancelled_{false};     // tells running training jobs that nobody waits for them
  std::vector<std::thread> workers_;
  uint64_t next_progress_ = 1;
};

// Ends the campaign: the final commit, then every actor of the loop exits.
void shut_down(caf::event_based_actor* self, Loop* loop) {
  try {
    loop->finish();
  } catch (...) {
    loop->failure += std::string(loop->failure.empty() ? "" : "; then ") + "the final commit failed: " + describe_current_exception();
  }
  for (auto& [name, actor] : loop->actors) self->send_exit(actor, caf::exit_reason::user_shutdown);
  self->quit();
}

// Hands the next event to its actor and continues when the answer comes back. Everything runs
// on the scheduler's one thread, so a delivery costs no operating-system hand-off.
// When only live jobs are left, the next input comes from the recorded log, from a result that
// has arrived, or, once both are exhausted, from training: the loop then idles until a result
// arrives (an arrival message calls pump again). An llmRequest blocks the loop the same way until
// its reply is taken from the log or from the model.
void pump(caf::event_based_actor* self, Loop* loop) {
  std::optional<QueuedEvent> next;
  try {
    while (loop->failure.empty()) {
      next = loop->next_for_actor();
      if (next || !loop->awaiting_input()) break;
      if (loop->take_recorded_input() || loop->take_llm_reply() || loop->take_arrival()) continue;
      if (!loop->can_obtain_input()) {
        loop->stop_for_missing_input();
        continue;
      }
      if (loop->blocked_on_llm()) loop->start_llm_call(caf::actor_cast<caf::actor>(self));
      else loop->start_live_jobs(caf::actor_cast<caf::actor>(self));
      loop->waiting_for_input = true;
      return;
    }
  } catch (...) {
    loop->failure = describe_current_exception();
  }
  if (!next) return shut_down(self, loop);
  auto target = loop->actors.at(next->to);
  auto event = std::make_shared<QueuedEvent>(std::move(*next));
  self->request(target, caf::infinite, deliver_atom::value, event->bytes)
      .then(
          [self, loop, event](std::string& outbox) {
            try {
              msg::CanonicalView<msg::Event> view(event->bytes);
              loop->delivered(event->to, view.root(), outbox);
            } catch (...) {
              loop->failure = describe_current_exception();
            }
            pump(self, loop);
          },
          [self, loop, event](caf::error& error) {
            loop->failure = event->to + " failed on event " + std::to_string(event->seq) + ": " + self->system().render(error);
            shut_down(self, loop);
          });
}

}  // namespace

CampaignSummary run_loop(const Scenario& scenario, uint64_t seed, const std::string& header_bytes, EventSink& sink,
                         const ProgressFn& progress, const LiveTrainer& trainer, const LlmClient& llm, const CommitPolicy& commits) {
  caf::actor_system_config config;
  // One event is in flight at a time: one scheduler thread runs every actor, with no hand-offs.
  config.set("scheduler.max-threads", 1);
  caf::actor_system system{config};

  Loop loop(scenario, sink, progress, trainer, llm, commits);
  loop.summary.scenario_name = scenario.name;
  loop.summary.seed = seed;
  loop.summary.target_experiments = scenario.max_experiments;
  const auto started = std::chrono::steady_clock::now();
  loop.open_log(header_bytes);
  auto spawn = [&](const std::string& name, ActorState* state, const std::string& clock) {
    loop.actors[name] = system.spawn(serve, std::shared_ptr<ActorState>(state), &loop.summary.actor_seconds[clock]);
  };
  spawn(actor_name::kResearcher, new ResearcherState(scenario, seed), actor_name::kResearcher);
  spawn(actor_name::kEngineer, new EngineerState(scenario), actor_name::kEngineer);
  spawn(actor_name::kAnalyst, new AnalystState(scenario), actor_name::kAnalyst);
  spawn(actor_name::kCognition, new CognitionState(), actor_name::kCognition);
  std::shared_ptr<const Oracle> oracle;
  if (!loop.live()) {
    if (scenario.oracle == OracleKind::Surrogate) oracle = std::make_shared<const SurrogateOracle>(scenario);
    else oracle = std::make_shared<const SyntheticOracle>(scenario);
  }
  for (uint32_t i = 0; !loop.live() && i < scenario.gpu_slots; ++i) {
    spawn(actor_name::gpu_slot(i), new SimulatedGpuSlotState(scenario, seed, i, oracle), "gpu-slots");
  }
  // From here the sink is used on the scheduler's thread only: an LMDB write transaction
  // belongs to the thread that began it (open_log committed its own before this).
  system.spawn([&loop](caf::event_based_actor* self) -> caf::behavior {
    self->send(self, begin_atom::value);
    return {
        [self, &loop](begin_atom) {
          try {
            loop.begin();
          } catch (...) {
            loop.failure = describe_current_exception();
          }
          pump(self, &loop);
        },
        [self, &loop](arrival_atom, uint32_t slot, bool ok, const std::string& answer) {
          if (ok) loop.arrived(slot, answer);
          else loop.failure = answer;
          // While an event is out for delivery its answer's handler pumps next.
          if (loop.waiting_for_input) {
            loop.waiting_for_input = false;
            pump(self, &loop);
          }
        },
        [self, &loop](llm_reply_atom, bool ok, const std::string& answer) {
          if (ok) loop.llm_replied(answer);
          else loop.failure = answer;
          if (loop.waiting_for_input) {
            loop.waiting_for_input = false;
            pump(self, &loop);
          }
        },
    };
  });
  system.await_all_actors_done();
  if (!loop.failure.empty()) throw std::runtime_error("campaign failed: " + loop.failure);
  loop.summary.loop_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return loop.summary;
}

}  // namespace asiarch
