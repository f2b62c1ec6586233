// The actors' interface tables (actors/interfaces.h): consistent with each other, complete over
// the schema's payload kinds, and strict about names. Every campaign test runs through the loop,
// which checks each message against them; `asiarch check` is tested in test_check.cpp.
#include <catch2/catch.hpp>

#include <capnp/schema.h>

#include <set>

#include "actors/interfaces.h"

using namespace asiarch;

TEST_CASE("every payload kind has a sender and a receiver, and every route ends where its kind is accepted", "[interfaces]") {
  std::set<msg::Payload::Which> sent, accepted;
  for (const ActorInterface& actor : actor_interfaces()) {
    CHECK(&interface_of(actor.role) == &actor);
    accepted.insert(actor.accepts.begin(), actor.accepts.end());
    for (const Route& route : actor.sends) {
      INFO(actor.name << " sends " << msg::kind_name(route.kind) << " to " << interface_of(route.to).name);
      const auto& receiver = interface_of(route.to).accepts;
      CHECK(std::find(receiver.begin(), receiver.end(), route.kind) != receiver.end());
      sent.insert(route.kind);
    }
    for (const auto input : actor.inputs) {
      INFO(actor.name << " has input " << msg::kind_name(input));
      CHECK(std::any_of(actor.sends.begin(), actor.sends.end(), [&](const Route& r) { return r.kind == input; }));
    }
  }
  // Every member of the schema's union: a new kind without a route fails here.
  const auto kinds = capnp::Schema::from<msg::Payload>().getUnionFields().size();
  REQUIRE(kinds >= 25);
  for (uint16_t kind = 0; kind < kinds; ++kind) {
    const auto which = static_cast<msg::Payload::Which>(kind);
    INFO(msg::kind_name(which));
    CHECK(sent.count(which) == 1);
    CHECK(accepted.count(which) == 1);
  }
}

TEST_CASE("actor names: one spelling per slot, and no unknown actor", "[interfaces]") {
  CHECK(gpu_slot_index("gpu-slot-0") == 0u);
  CHECK(gpu_slot_index("gpu-slot-17") == 17u);
  for (const char* name : {"gpu-slot-", "gpu-slot-01", "gpu-slot-x", "gpu-slot-1x", "gpu-slot--1", "gpu-slot-99999999999", "slot-1"}) {
    INFO(name);
    CHECK_FALSE(gpu_slot_index(name));
  }
  CHECK(role_of("gpu-slot-3") == Role::GpuSlot);
  CHECK(role_of("engineer") == Role::Engineer);
  CHECK(role_of("llm") == Role::Llm);
  CHECK_FALSE(role_of("gpu-slot-N"));
  CHECK_FALSE(role_of("Engineer"));
}

TEST_CASE("route_problem allows the interfaces' messages and names what is wrong with others", "[interfaces]") {
  CHECK_FALSE(route_problem("researcher", "engineer", msg::Payload::PROPOSAL, false));
  CHECK_FALSE(route_problem("gpu-slot-2", "analyst", msg::Payload::TRAIN_RESULT, true));
  CHECK_FALSE(route_problem("gpu-slot-2", "analyst", msg::Payload::TRAIN_RESULT, false));
  CHECK_FALSE(route_problem("llm", "analyst", msg::Payload::LLM_REPLY, true));

  CHECK(route_problem("researcher", "analyst", msg::Payload::PROPOSAL, false) ==
        std::string("proposal from researcher to analyst: analyst does not accept proposal"));
  CHECK(route_problem("analyst", "engineer", msg::Payload::PROPOSAL, false) ==
        std::string("proposal from analyst to engineer: analyst does not send proposal to engineer"));
  CHECK(route_problem("oracle", "analyst", msg::Payload::TRAIN_RESULT, false) ==
        std::string("trainResult from oracle to analyst: no actor is called oracle"));
  CHECK(route_problem("engineer", "analyst", msg::Payload::REJECTION, true) ==
        std::string("rejection from engineer to analyst: an input event, but engineer has no input of this kind"));
  CHECK(route_problem("llm", "researcher", msg::Payload::LLM_REPLY, false) ==
        std::string("llmReply from llm to researcher: the model's replies are input events"));
}
