#include "actors/coordinator.h"

#include <caf/all.hpp>

#include <cmath>
#include <map>

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

loop_actor::behavior_type serve(loop_actor::pointer, std::shared_ptr<ActorState> state) {
  return {
      [state](deliver_atom, const std::string& event_bytes) -> caf::result<std::string> {
        try {
          msg::CanonicalView<msg::Event> event(event_bytes);
          msg::OutboxWriter out;
          state->handle(event.root(), out);
          return out.finish();
        } catch (const std::exception& e) {
          return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
        } catch (const kj::Exception& e) {
          return caf::make_error(caf::sec::runtime_error, std::string(e.getDescription().cStr()));
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

CampaignSummary run_loop(const Scenario& scenario, uint64_t seed, const std::string& header_bytes, EventSink& sink,
                         const ProgressFn& progress) {
  caf::actor_system_config config;
  // One event is in flight at a time, so one scheduler thread is all the loop can use.
  config.set("scheduler.max-threads", 1);
  caf::actor_system system{config};

  std::map<std::string, loop_actor> actors;
  actors[actor_name::kResearcher] = system.spawn(serve, std::shared_ptr<ActorState>(new ResearcherState(scenario, seed)));
  actors[actor_name::kEngineer] = system.spawn(serve, std::shared_ptr<ActorState>(new EngineerState(scenario)));
  actors[actor_name::kAnalyst] = system.spawn(serve, std::shared_ptr<ActorState>(new AnalystState(scenario)));
  actors[actor_name::kCognition] = system.spawn(serve, std::shared_ptr<ActorState>(new CognitionState()));
  auto oracle = std::make_shared<const SyntheticOracle>(scenario);
  for (uint32_t i = 0; i < scenario.gpu_slots; ++i) {
    actors[actor_name::gpu_slot(i)] =
        system.spawn(serve, std::shared_ptr<ActorState>(new SimulatedGpuSlotState(scenario, seed, i, oracle)));
  }
  CoordinatorState coordinator(scenario.gpu_slots);
  caf::scoped_actor self{system};

  CampaignSummary summary;
  summary.scenario_name = scenario.name;
  summary.seed = seed;
  EventQueue queue;
  bool stopped = false;

  sink.begin(header_bytes);
  sink.checkpoint(summary);  // readers see the run from its first moment

  // Logs one message and queues it for delivery.
  auto send = [&](uint64_t vtime_ns, const std::string& from, const std::string& to, msg::Payload::Reader payload) {
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
    switch (payload.which()) {
      case msg::Payload::PROPOSAL: ++summary.proposals; break;
      case msg::Payload::REJECTION: ++summary.rejections; break;
      default: break;
    }
    if (!sink.append(seq, bytes, event.asReader())) stopped = true;
    if (seq % kCheckpointEvery == 0) {
      summary.digest = sink.digest_hex();
      sink.checkpoint(summary);
    }
    queue.push(QueuedEvent{vtime_ns, seq, to, std::move(bytes)});
  };
  auto stop = [&](uint64_t vtime_ns, const std::string& reason) {
    summary.stop_reason = reason;
    capnp::MallocMessageBuilder message;
    auto payload = message.initRoot<msg::Payload>();
    auto s = payload.initStop();
    s.setReason(reason);
    s.setExperiments(summary.experiments);
    s.setBreakthroughs(summary.breakthroughs);
    send(vtime_ns, actor_name::kCoordinator, actor_name::kCoordinator, payload.asReader());
    stopped = true;
  };

  {
    capnp::MallocMessageBuilder message;
    auto payload = message.initRoot<msg::Payload>();
    auto start = payload.initStart();
    auto names = start.initStartPrograms(static_cast<unsigned>(scenario.start.size()));
    for (unsigned i = 0; i < scenario.start.size(); ++i) names.set(i, scenario.start[i]);
    start.setGpuSlots(scenario.gpu_slots);
    send(0, actor_name::kCoordinator, actor_name::kResearcher, payload.asReader());
  }

  uint64_t next_progress = 1;
  while (!stopped) {
    if (queue.empty()) {
      stop(summary.vtime_ns, "nothing left to do: no event is queued");
      break;
    }
    QueuedEvent next = queue.pop();
    // Virtual time never runs backwards: the queue is ordered and delays are unsigned.
    if (next.vtime_ns < summary.vtime_ns) throw std::logic_error("coordinator: virtual time ran backwards");
    summary.vtime_ns = next.vtime_ns;

    msg::CanonicalView<msg::Event> event(next.bytes);
    std::string outbox_bytes;
    if (next.to == actor_name::kCoordinator) {
      msg::OutboxWriter out;
      coordinator.handle(event.root(), out);
      outbox_bytes = out.finish();
    } else {
      auto actor = actors.find(next.to);
      if (actor == actors.end()) throw std::logic_error("coordinator: message to unknown actor " + next.to);
      self->request(actor->second, caf::infinite, deliver_atom::value, next.bytes)
          .receive([&](std::string& reply) { outbox_bytes = std::move(reply); },
                   [&](caf::error& error) {
                     throw std::runtime_error(next.to + " failed on event " + std::to_string(next.seq) + ": " +
                                              system.render(error));
                   });
    }

    auto payload = event.root().getPayload();
    if (payload.which() == msg::Payload::TRAIN_RESULT) {
      auto result = payload.getTrainResult();
      summary.gpu_hours += result.getGpuHours();
      if (result.getRef().getFidelity() == msg::Fidelity::EXPLORE) ++summary.experiments;
    }
    if (payload.which() == msg::Payload::POOL_UPDATE) summary.breakthroughs = payload.getPoolUpdate().getBreakthroughs();

    msg::CanonicalView<msg::Outbox> outbox(outbox_bytes);
    for (auto outgoing : outbox.root().getMessages()) {
      send(summary.vtime_ns + outgoing.getDelayNs(), next.to, outgoing.getTo(), outgoing.getPayload());
    }

    if (progress && summary.experiments * 10 >= next_progress * scenario.max_experiments) {
      while (summary.experiments * 10 >= next_progress * scenario.max_experiments) ++next_progress;
      progress(summary);
    }
    if (stopped) break;
    if (summary.experiments >= scenario.max_experiments) {
      stop(summary.vtime_ns, "reached max_experiments (" + std::to_string(scenario.max_experiments) + ")");
    } else if (scenario.max_gpu_hours > 0 && summary.gpu_hours >= scenario.max_gpu_hours) {
      stop(summary.vtime_ns, "reached max_gpu_hours");
    } else if (summary.events >= scenario.max_events) {
      stop(summary.vtime_ns, "reached max_events (" + std::to_string(scenario.max_events) + "): the loop is not finishing experiments");
    }
  }
  summary.finished = true;
  summary.digest = sink.digest_hex();
  sink.checkpoint(summary);
  return summary;
}

}  // namespace asiarch
