#include "actors/coordinator.h"

#include <caf/all.hpp>

#include <map>
#include <optional>

#include "actors/analyst.h"
#include "actors/cognition.h"
#include "actors/engineer.h"
#include "actors/gpu_slot.h"
#include "actors/researcher.h"
#include "actors/synthetic_oracle.h"

namespace asiarch {
namespace {

using deliver_atom = caf::atom_constant<caf::atom("deliver")>;

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
  Loop(const Scenario& scenario, EventSink& sink, const ProgressFn& progress)
      : scenario_(scenario), sink_(sink), progress_(progress), coordinator_(scenario.gpu_slots) {}

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

  // Delivers events addressed to the coordinator itself until the next one belongs to another
  // actor; returns that one, or nothing when the campaign is over.
  std::optional<QueuedEvent> next_for_actor() {
    while (!stopped_) {
      if (queue_.empty()) {
        stop("nothing left to do: no event is queued");
        break;
      }
      QueuedEvent next = queue_.pop();
      // Virtual time never runs backwards: the queue is ordered and delays are unsigned.
      if (next.vtime_ns < summary.vtime_ns) throw std::logic_error("coordinator: virtual time ran backwards");
      summary.vtime_ns = next.vtime_ns;
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
    if (progress_ && summary.experiments * 10 >= next_progress_ * scenario_.max_experiments) {
      while (summary.experiments * 10 >= next_progress_ * scenario_.max_experiments) ++next_progress_;
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
  void send(uint64_t vtime_ns, const std::string& from, const std::string& to, msg::Payload::Reader payload) {
    capnp::MallocMessageBuilder message;
    auto event = message.initRoot<msg::Event>();
    const uint64_t seq = ++summary.events;
    event.setSeq(seq);
    event.setVtimeNs(vtime_ns);
    event.setFrom(from);
    event.setTo(to);
    event.setInput(false);
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
  CoordinatorState coordinator_;
  EventQueue queue_;
  bool stopped_ = false;
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
void pump(caf::event_based_actor* self, Loop* loop) {
  std::optional<QueuedEvent> next;
  try {
    if (loop->failure.empty()) next = loop->next_for_actor();
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
                         const ProgressFn& progress) {
  caf::actor_system_config config;
  // One event is in flight at a time: one scheduler thread runs every actor, with no hand-offs.
  config.set("scheduler.max-threads", 1);
  caf::actor_system system{config};

  Loop loop(scenario, sink, progress);
  loop.summary.scenario_name = scenario.name;
  loop.summary.seed = seed;
  loop.summary.target_experiments = scenario.max_experiments;
  loop.open_log(header_bytes);
  loop.actors[actor_name::kResearcher] = system.spawn(serve, std::shared_ptr<ActorState>(new ResearcherState(scenario, seed)));
  loop.actors[actor_name::kEngineer] = system.spawn(serve, std::shared_ptr<ActorState>(new EngineerState(scenario)));
  loop.actors[actor_name::kAnalyst] = system.spawn(serve, std::shared_ptr<ActorState>(new AnalystState(scenario)));
  loop.actors[actor_name::kCognition] = system.spawn(serve, std::shared_ptr<ActorState>(new CognitionState()));
  auto oracle = std::make_shared<const SyntheticOracle>(scenario);
  for (uint32_t i = 0; i < scenario.gpu_slots; ++i) {
    loop.actors[actor_name::gpu_slot(i)] =
        system.spawn(serve, std::shared_ptr<ActorState>(new SimulatedGpuSlotState(scenario, seed, i, oracle)));
  }
  // From here the sink is used on the scheduler's thread only: an LMDB write transaction
  // belongs to the thread that began it (open_log committed its own before this).
  system.spawn([&loop](caf::event_based_actor* self) {
    try {
      loop.begin();
    } catch (...) {
      loop.failure = describe_current_exception();
    }
    pump(self, &loop);
  });
  system.await_all_actors_done();
  if (!loop.failure.empty()) throw std::runtime_error("campaign failed: " + loop.failure);
  return loop.summary;
}

}  // namespace asiarch
