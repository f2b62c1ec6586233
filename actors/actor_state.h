#pragma once
// What every actor of the loop is, apart from CAF: a plain state object that handles one event
// and writes what it sends into an outbox. Tests construct and drive these directly; the
// campaign wraps each in a CAF actor (campaign/loop.cpp).
#include "messages/codec.h"

namespace asiarch {

class ActorState {
 public:
  virtual ~ActorState() = default;
  // Handles `event` (delivered at event.getVtimeNs()) and sends its answers through `out`.
  virtual void handle(msg::Event::Reader event, msg::OutboxWriter& out) = 0;
};

// Actor names, as they appear in the log's `from` and `to`.
namespace actor_name {
inline constexpr const char* kCoordinator = "coordinator";
inline constexpr const char* kResearcher = "researcher";
inline constexpr const char* kEngineer = "engineer";
inline constexpr const char* kAnalyst = "analyst";
inline constexpr const char* kCognition = "cognition";
// Not an actor: the language model, whose replies the coordinator logs as input events.
inline constexpr const char* kLlm = "llm";
// gpu-slot-N; gpu_slot_index (actors/interfaces.h) reads N back.
inline constexpr std::string_view kGpuSlotPrefix = "gpu-slot-";
inline std::string gpu_slot(uint32_t index) { return std::string(kGpuSlotPrefix) + std::to_string(index); }
}  // namespace actor_name

}  // namespace asiarch
