#include "actors/coordinator.h"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <optional>
#include <thread>

#include "actors/analyst.h"
#include "actors/cognition.h"
#include "actors/engineer.h"
#include "actors/gpu_slot.h"
#include "actors/researcher.h"
#include "actors/synthetic_oracle.h"

namespace asiarch {
namespace {

using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using begin_atom = caf::atom_constant<caf::atom("begin")>;
// A live job's result (or, when !ok, why its worker failed), from a worker thread.
using arrival_atom = caf::atom_constant<caf::atom("arrival")>;

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

loop_actor::behavior_type serve(loop_actor::pointer, std::shared_ptr<ActorState> state) {
  return {
      [state](deliver_atom, const std::string& event_bytes) -> caf::result<std::string> {
        try {
          msg::CanonicalView<msg::Event> event(event_bytes);
          msg::OutboxWriter out;
          state->handle(event.root(), out);
          return out.finish();
        } catch (...) {
          return caf::make_error(caf::sec::runtime_error, describe_current_exception());
        }
      },
  };
}

constexpr uint64_t kCheckpointEvery = 4096;

// A job that a live gpu-slot holds: dispatched, its result not logged yet.
struct LiveJob {
  uint64_t dispatch_vtime_ns = 0;
  std::string dispatch_bytes;  // the canonical dispatch event
  bool started = false;        // running on a worker thread in this process
};

struct Arrival {
  uint32_t slot;
  std::string payload_bytes;  // canonical Payload (trainResult)
};

std::optional<uint32_t> live_slot_index(const std::string& actor) {
  const std::string prefix = actor_name::gpu_slot(0).substr(0, actor_name::gpu_slot(0).size() - 1);
  if (actor.rfind(prefix, 0) != 0) return std::nullopt;
  return static_cast<uint32_t>(std::stoul(actor.substr(prefix.size())));
}

}  // namespace

CoordinatorState::CoordinatorState(uint32_t gpu_slots) {
  for (uint32_t i = 0; i < gpu_slots; ++i) free_slots_.insert(i);
}

void CoordinatorState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  switch (payload.which()) {
    case msg::Payload::TRAIN_JOB:
      if (!free_slots_.empty()) {
        const uint32_t slot = *free_slots_.begin();
        free_slots_.erase(free_slots_.begin());
        dispatch(slot, payload.getTrainJob(), out);
      } else {
        auto copy = std::make_unique<capnp::MallocMessageBuilder>();
        copy->setRoot(payload.getTrainJob());
        waiting_jobs_.push_back(std::move(copy));
      }
      break;
    case msg::Payload::SLOT_IDLE: {
      const uint32_t slot = payload.getSlotIdle().getSlot();
      if (waiting_jobs_.empty()) {
        free_slots_.insert(slot);
      } else {
        dispatch(slot, waiting_jobs_.front()->getRoot<msg::TrainJob>().asReader(), out);
        waiting_jobs_.pop_front();
      }
      break;
    }
    default:
      throw std::logic_error("coordinator: unexpected " + msg::kind_name(payload.which()));
  }
}

void CoordinatorState::dispatch(uint32_t slot, msg::TrainJob::Reader job, msg::OutboxWriter& out) {
  auto d = out.send(actor_name::gpu_slot(slot)).initDispatch();
  d.setSlot(slot);
  d.setJob(job);
}

std::string run_header_bytes(const Scenario& scenario, uint64_t seed) {
  capnp::MallocMessageBuilder message;
  auto header = message.initRoot<msg::RunHeader>();
  header.setScenario(kj::arrayPtr(reinterpret_cast<const kj::byte*>(scenario.bytes.data()), scenario.bytes.size()));
  header.setScenarioFile(scenario.file);
  header.setSeed(seed);
  header.setVersion(ASIARCH_VERSION);
  header.setBuildFlags(ASIARCH_BUILD_FLAGS);
  return msg::canonical_bytes(header.asReader());
}

namespace {

// The state of one campaign's loop, owned by the coordinator actor.
class Loop {
 public:
  Loop(const Scenario& scenario, EventSink& sink, const ProgressFn& progress, const LiveTrainer& trainer)
      : scenario_(scenario), sink_(sink), progress_(progress), trainer_(trainer), live_(scenario.mode == "live"),
        coordinator_(scenario.gpu_slots) {}

  // Training that is still running when the campaign ends is waited for: a worker thread must
  // not outlive the loop it reports to. Its result is not logged.
  ~Loop() {
    cancelled_ = true;
    if (!workers_.empty()) spdlog::info("waiting for the training jobs still running to end");
    for (auto& worker : workers_) worker.join();
  }

  bool live() const { return live_; }
  bool waiting_for_input = false;  // the loop is idle until a live result arrives

  std::map<std::string, loop_actor> actors;
  CampaignSummary summary;
  std::string failure;  // set when an actor or the loop itself failed

  // The header and a first checkpoint, before any actor starts: readers see the run at once.
  void open_log(const std::string& header_bytes) {
    sink_.begin(header_bytes);
    sink_.checkpoint(summary);
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
    while (!stopped_) {
      if (queue_.empty()) {
        if (!live_jobs_.empty()) break;
        stop("nothing left to do: no event is queued");
        break;
      }
      QueuedEvent next = queue_.pop();
      // Virtual time never runs backwards: the queue is ordered and delays are unsigned.
      if (next.vtime_ns < summary.vtime_ns) throw std::logic_error("coordinator: virtual time ran backwards");
      summary.vtime_ns = next.vtime_ns;
      if (live_ && next.to != actor_name::kCoordinator && live_slot_index(next.to)) {
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

  bool awaiting_input() const { return !stopped_ && queue_.empty() && !live_jobs_.empty(); }

  // The next logged input event, when the sink holds a recorded log that continues with one.
  bool take_recorded_input() {
    const auto recorded = sink_.recorded_event(summary.events + 1);
    if (!recorded) return false;
    msg::CanonicalView<msg::Event> view(*recorded);
    auto event = view.root();
    if (!event.getInput()) return false;
    accept_input(event.getVtimeNs(), event.getFrom(), event.getPayload());
    return true;
  }

  // The first live result that arrived, timed at its dispatch plus its measured duration.
  bool take_arrival() {
    if (arrivals_.empty()) return false;
    Arrival arrival = std::move(arrivals_.front());
    arrivals_.pop_front();
    const auto job = live_jobs_.find(arrival.slot);
    if (job == live_jobs_.end()) throw std::logic_error("coordinator: a result arrived from idle " + actor_name::gpu_slot(arrival.slot));
    msg::CanonicalView<msg::Payload> payload(arrival.payload_bytes);
    const double ns = payload.root().getTrainResult().getGpuHours() * 3.6e12;
    const uint64_t vtime = std::max(summary.vtime_ns, job->second.dispatch_vtime_ns + static_cast<uint64_t>(std::llround(ns)));
    accept_input(vtime, actor_name::gpu_slot(arrival.slot), payload.root());
    return true;
  }

  void arrived(uint32_t slot, std::string payload_bytes) { arrivals_.push_back(Arrival{slot, std::move(payload_bytes)}); }

  // With no trainer (a replay), a live campaign ends where its recorded inputs end.
  bool can_train() const { return static_cast<bool>(trainer_); }
  void stop_for_missing_input() {
    stop("the recorded log has no result for the " + std::to_string(live_jobs_.size()) + " job(s) in flight");
  }

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
    auto payload = event.getPayload();
    if (payload.which() == msg::Payload::TRAIN_RESULT) {
      auto result = payload.getTrainResult();
      summary.gpu_hours += result.getGpuHours();
      if (result.getRef().getFidelity() == msg::Fidelity::EXPLORE) ++summary.experiments;
    }
    if (payload.which() == msg::Payload::POOL_UPDATE) summary.breakthroughs = payload.getPoolUpdate().getBreakthroughs();

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

  // The last checkpoint: what was logged is committed whether the campaign finished or failed.
  void finish() {
    summary.finished = failure.empty();
    if (!failure.empty()) summary.stop_reason = "failed: " + failure;
    summary.digest = sink_.digest_hex();
    sink_.checkpoint(summary);
  }

 private:
  // Logs one message and queues it for delivery.
  void send(uint64_t vtime_ns, const std::string& from, const std::string& to, msg::Payload::Reader payload, bool input = false) {
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
    if (payload.which() == msg::Payload::PROPOSAL) ++summary.proposals;
    if (payload.which() == msg::Payload::REJECTION) {
      ++summary.rejections;
      ++summary.rejections_by_check[payload.getRejection().getCheck().cStr()];
    }
    if (!sink_.append(seq, bytes, event.asReader())) stopped_ = true;
    if (seq % kCheckpointEvery == 0) {
      summary.digest = sink_.digest_hex();
      sink_.checkpoint(summary);
    }
    queue_.push(QueuedEvent{vtime_ns, seq, to, std::move(bytes)});
  }

  void hold_live_job(QueuedEvent dispatch) {
    msg::CanonicalView<msg::Event> event(dispatch.bytes);
    const uint32_t slot = event.root().getPayload().getDispatch().getSlot();
    live_jobs_[slot] = LiveJob{dispatch.vtime_ns, std::move(dispatch.bytes), false};
  }

  // Logs a live job's result as an input event and commits it before anything acts on it; the
  // slot's "idle again" follows as a derived event.
  void accept_input(uint64_t vtime_ns, const std::string& from, msg::Payload::Reader payload) {
    const auto slot = live_slot_index(from);
    if (!slot || payload.which() != msg::Payload::TRAIN_RESULT || !live_jobs_.count(*slot)) {
      throw std::logic_error("coordinator: an input event from " + from + " (" + msg::kind_name(payload.which()) +
                             ") does not answer a job in flight");
    }
    if (vtime_ns < summary.vtime_ns) throw std::logic_error("coordinator: an input event is timed before the present");
    summary.vtime_ns = vtime_ns;
    live_jobs_.erase(*slot);
    send(vtime_ns, from, actor_name::kAnalyst, payload, true);
    summary.digest = sink_.digest_hex();
    sink_.checkpoint(summary);
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
  const bool live_;
  CoordinatorState coordinator_;
  EventQueue queue_;
  bool stopped_ = false;
  std::map<uint32_t, LiveJob> live_jobs_;  // by slot
  std::deque<Arrival> arrivals_;           // live results in the order they arrived
  std::atomic<bool> cancelled_{false};     // tells running training jobs that nobody waits for them
  std::vector<std::thread> workers_;
  uint64_t next_progress_ = 1;
};

// Ends the campaign: the final checkpoint, then every actor of the loop exits.
void shut_down(caf::event_based_actor* self, Loop* loop) {
  try {
    loop->finish();
  } catch (...) {
    loop->failure += std::string(loop->failure.empty() ? "" : "; then ") + "the final checkpoint failed: " + describe_current_exception();
  }
  for (auto& [name, actor] : loop->actors) self->send_exit(actor, caf::exit_reason::user_shutdown);
  self->quit();
}

// Hands the next event to its actor and continues when the answer comes back. Everything runs
// on the scheduler's one thread, so a delivery costs no operating-system hand-off.
// When only live jobs are left, the next input comes from the recorded log, from a result that
// has arrived, or, once both are exhausted, from training: the loop then idles until a result
// arrives (an arrival message calls pump again).
void pump(caf::event_based_actor* self, Loop* loop) {
  std::optional<QueuedEvent> next;
  try {
    while (loop->failure.empty()) {
      next = loop->next_for_actor();
      if (next || !loop->awaiting_input()) break;
      if (loop->take_recorded_input() || loop->take_arrival()) continue;
      if (!loop->can_train()) {
        loop->stop_for_missing_input();
        continue;
      }
      loop->start_live_jobs(caf::actor_cast<caf::actor>(self));
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
                         const ProgressFn& progress, const LiveTrainer& trainer) {
  caf::actor_system_config config;
  // One event is in flight at a time: one scheduler thread runs every actor, with no hand-offs.
  config.set("scheduler.max-threads", 1);
  caf::actor_system system{config};

  Loop loop(scenario, sink, progress, trainer);
  loop.summary.scenario_name = scenario.name;
  loop.summary.seed = seed;
  loop.summary.target_experiments = scenario.max_experiments;
  loop.open_log(header_bytes);
  loop.actors[actor_name::kResearcher] = system.spawn(serve, std::shared_ptr<ActorState>(new ResearcherState(scenario, seed)));
  loop.actors[actor_name::kEngineer] = system.spawn(serve, std::shared_ptr<ActorState>(new EngineerState(scenario)));
  loop.actors[actor_name::kAnalyst] = system.spawn(serve, std::shared_ptr<ActorState>(new AnalystState(scenario)));
  loop.actors[actor_name::kCognition] = system.spawn(serve, std::shared_ptr<ActorState>(new CognitionState()));
  auto oracle = std::make_shared<const SyntheticOracle>(scenario);
  for (uint32_t i = 0; !loop.live() && i < scenario.gpu_slots; ++i) {
    loop.actors[actor_name::gpu_slot(i)] =
        system.spawn(serve, std::shared_ptr<ActorState>(new SimulatedGpuSlotState(scenario, seed, i, oracle)));
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
    };
  });
  system.await_all_actors_done();
  if (!loop.failure.empty()) throw std::runtime_error("campaign failed: " + loop.failure);
  return loop.summary;
}

}  // namespace asiarch
