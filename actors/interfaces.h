#pragma once
// Each actor's interface as code: the payload kinds it accepts, and the kinds it sends to whom.
// The loop checks every message against these tables before it logs it, and `asiarch check`
// checks every logged event against them, so a message that no actor expects is caught where it
// is sent, not when a `handle` switch reaches its default.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec.h"

namespace asiarch {

// What an actor name of the log stands for; every `gpu-slot-N` is a GpuSlot.
enum class Role : uint8_t { Coordinator, Researcher, Engineer, Analyst, Cognition, GpuSlot, Llm };

struct Route {
  msg::Payload::Which kind;
  Role to;
};

struct ActorInterface {
  Role role;
  std::string name;  // as in the log; "gpu-slot-N" for the slots
  std::vector<msg::Payload::Which> accepts;
  std::vector<Route> sends;
  // Input events: results from outside the process (a live slot's training, the model's reply),
  // logged as sent by this actor. Only these kinds may be.
  std::vector<msg::Payload::Which> inputs;
};

// Every role's interface, in the order of Role.
const std::vector<ActorInterface>& actor_interfaces();
const ActorInterface& interface_of(Role role);

// The role of an actor name of the log, or nullopt for a name no actor has.
std::optional<Role> role_of(std::string_view actor);
// N of "gpu-slot-N", or nullopt for any other name.
std::optional<uint32_t> gpu_slot_index(std::string_view actor);

// Why a message of `kind` from `from` to `to` is outside the interfaces (an input event when
// `input`), or nullopt when both the sender's and the receiver's tables allow it.
std::optional<std::string> route_problem(std::string_view from, std::string_view to, msg::Payload::Which kind, bool input);

}  // namespace asiarch
