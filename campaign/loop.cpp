#include "campaign/loop.h"

#include <caf/all.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>

#include "actors/analyst.h"
#include "actors/cognition.h"
#include "actors/coordinator.h"
#include "actors/engineer.h"
#include "actors/gpu_slot.h"
#include "actors/interfaces.h"
#include "actors/researcher.h"
#include "campaign/event_queue.h"
#include "campaign/input_sources.h"
#include "oracles/surrogate_oracle.h"
#include "oracles/synthetic_oracle.h"

namespace asiarch {
namespace {

using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using begin_atom = caf::atom_constant<caf::atom("begin")>;
// A result an input source posts from a worker thread: (source index, key, ok, answer).
using input_atom = caf::atom_constant<caf::atom("input")>;

// The one interface every actor of the loop declares: take a canonical Event, answer with the
// canonical Outbox of what it sends.
using loop_actor = caf::typed_actor<caf::replies_to<deliver_atom, std::string>::with<std::string>>;

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

}  // namespace

void count_logged(CampaignSummary& summary, msg::Payload::Reader payload) {
  if (payload.which() == msg::Payload::PROPOSAL) ++summary.proposals;
  if (payload.which() == msg::Payload::SLOT_FAULT) ++summary.faults[msg::enum_name(payload.getSlotFault().getKind())];
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
      : scenario_(scenario),
        sink_(sink),
        progress_(progress),
        commits_(commits),
        live_(scenario.mode == Mode::Live),
        coordinator_(CoordinatorState::Settings::of(scenario)) {
    // In the order they are asked: what was recorded is never produced again.
    inputs_.push_back(std::make_unique<RecordedInputs>(sink));
    inputs_.push_back(std::make_unique<ModelReplies>(llm));
    inputs_.push_back(std::make_unique<TrainingThreads>(trainer));
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
    auto names = start.initStartPrograms(static_cast<unsigned>(scenario_.campaign.start.size()));
    for (unsigned i = 0; i < scenario_.campaign.start.size(); ++i) names.set(i, scenario_.campaign.start[i]);
    start.setGpuSlots(scenario_.campaign.gpu_slots);
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

  InputNeed input_need() { return InputNeed{llm_pending_ ? &*llm_pending_ : nullptr, &live_jobs_, summary.events + 1, summary.vtime_ns}; }

  // Logs the first input a source has ready for what the loop waits on; false when none has one.
  bool take_input() {
    const InputNeed need = input_need();
    for (const auto& source : inputs_) {
      const std::optional<Input> input = source->take(need);
      if (!input) continue;
      msg::CanonicalView<msg::Payload> payload(input->payload_bytes);
      if (llm_pending_) accept_llm_reply(payload.root());
      else accept_input(input->vtime_ns, input->from, payload.root());
      return true;
    }
    return false;
  }

  // Starts the sources' background work; `post_for(i)` posts source i's results to the loop's
  // thread. False when no source can produce what the loop waits on.
  bool start_inputs(const std::function<PostInput(size_t)>& post_for) {
    const InputNeed need = input_need();
    bool started = false;
    for (size_t i = 0; i < inputs_.size(); ++i) started = inputs_[i]->start(need, post_for(i)) || started;
    return started;
  }

  void arrived(size_t source, uint32_t key, std::string answer) { inputs_.at(source)->arrived(key, std::move(answer)); }

  // With no trainer or client (a replay), a campaign ends where its recorded inputs end.
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

  // Accounts for an event `receiver` has handled and sends what it answered.
  void delivered(const std::string& receiver, msg::Event::Reader event, const std::string& outbox_bytes) {
    count_delivered(summary, event.getPayload());

    msg::CanonicalView<msg::Outbox> outbox(outbox_bytes);
    for (auto outgoing : outbox.root().getMessages()) {
      send(summary.vtime_ns + outgoing.getDelayNs(), receiver, outgoing.getTo(), outgoing.getPayload());
    }
    // Progress every tenth of the campaign; a live campaign, where each takes minutes, every experiment.
    const uint64_t parts = live_ ? scenario_.campaign.max_experiments : 10;
    if (progress_ && summary.experiments * parts >= next_progress_ * scenario_.campaign.max_experiments) {
      while (summary.experiments * parts >= next_progress_ * scenario_.campaign.max_experiments) ++next_progress_;
      progress_(summary);
    }
    if (stopped_) return;
    if (summary.experiments >= scenario_.campaign.max_experiments) {
      stop("reached max_experiments (" + std::to_string(scenario_.campaign.max_experiments) + ")");
    } else if (scenario_.campaign.max_gpu_hours > 0 && summary.gpu_hours >= scenario_.campaign.max_gpu_hours) {
      stop("reached max_gpu_hours");
    } else if (summary.events >= scenario_.campaign.max_events) {
      stop("reached max_events (" + std::to_string(scenario_.campaign.max_events) + "): the loop is not finishing experiments");
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
  const CommitPolicy commits_;
  const bool live_;
  CoordinatorState coordinator_;
  EventQueue queue_;
  bool stopped_ = false;
  std::map<uint32_t, LiveJob> live_jobs_;  // by slot
  std::optional<PendingLlm> llm_pending_;  // the request the loop is blocked on
  std::vector<std::unique_ptr<InputSource>> inputs_;
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
// When only live jobs are left, or an llmRequest blocks the loop, the next event is an input
// from one of the loop's sources (campaign/input_sources.h); when none has one ready, their
// background work starts and the loop idles until a result is posted (input_atom calls pump
// again).
void pump(caf::event_based_actor* self, Loop* loop) {
  std::optional<QueuedEvent> next;
  try {
    while (loop->failure.empty()) {
      next = loop->next_for_actor();
      if (next || !loop->awaiting_input()) break;
      if (loop->take_input()) continue;
      const caf::actor coordinator = caf::actor_cast<caf::actor>(self);
      const bool started = loop->start_inputs([coordinator](size_t source) -> PostInput {
        return [coordinator, source](uint32_t key, bool ok, std::string answer) {
          caf::anon_send(coordinator, input_atom::value, source, key, ok, std::move(answer));
        };
      });
      if (!started) {
        loop->stop_for_missing_input();
        continue;
      }
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
  loop.summary.target_experiments = scenario.campaign.max_experiments;
  const auto started = std::chrono::steady_clock::now();
  loop.open_log(header_bytes);
  auto spawn = [&](const std::string& name, ActorState* state, const std::string& clock) {
    loop.actors[name] = system.spawn(serve, std::shared_ptr<ActorState>(state), &loop.summary.actor_seconds[clock]);
  };
  spawn(actor_name::kResearcher, new ResearcherState(ResearcherState::Settings::of(scenario), seed), actor_name::kResearcher);
  spawn(actor_name::kEngineer, new EngineerState(EngineerState::Settings::of(scenario)), actor_name::kEngineer);
  spawn(actor_name::kAnalyst, new AnalystState(AnalystState::Settings::of(scenario)), actor_name::kAnalyst);
  spawn(actor_name::kCognition, new CognitionState(), actor_name::kCognition);
  std::shared_ptr<const Oracle> oracle;
  if (!loop.live()) {
    if (scenario.oracle.kind == OracleKind::Surrogate) oracle = std::make_shared<const SurrogateOracle>(scenario.oracle, scenario.file);
    else oracle = std::make_shared<const SyntheticOracle>(scenario.oracle);
  }
  for (uint32_t i = 0; !loop.live() && i < scenario.campaign.gpu_slots; ++i) {
    spawn(actor_name::gpu_slot(i), new SimulatedGpuSlotState(SimulatedGpuSlotState::Settings::of(scenario), seed, i, oracle), "gpu-slots");
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
        [self, &loop](input_atom, size_t source, uint32_t key, bool ok, std::string& answer) {
          if (ok) loop.arrived(source, key, std::move(answer));
          else loop.failure = answer;
          // While an event is out for delivery its answer's handler pumps next.
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
