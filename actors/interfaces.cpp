#include "actors/interfaces.h"

#include <algorithm>
#include <charconv>

#include "actors/actor_state.h"

namespace asiarch {
namespace {

using K = msg::Payload;

bool contains(const std::vector<msg::Payload::Which>& kinds, msg::Payload::Which kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

}  // namespace

const std::vector<ActorInterface>& actor_interfaces() {
  // With [faults] the coordinator validates the slots' answers and sends the results itself;
  // the routes of both cases are listed, since a table cannot know the scenario.
  static const std::vector<ActorInterface> table = {
      {Role::Coordinator,
       actor_name::kCoordinator,
       {K::TRAIN_JOB, K::SLOT_IDLE, K::SLOT_ANSWER, K::SLOT_CRASH, K::JOB_TIMEOUT, K::SLOT_RESTART, K::SLOT_FAULT, K::STOP},
       {{K::START, Role::Researcher},
        {K::DISPATCH, Role::GpuSlot},
        {K::TRAIN_RESULT, Role::Analyst},
        {K::JOB_TIMEOUT, Role::Coordinator},
        {K::SLOT_RESTART, Role::Coordinator},
        {K::SLOT_FAULT, Role::Coordinator},
        {K::STOP, Role::Coordinator}},
       {}},
      {Role::Researcher,
       actor_name::kResearcher,
       {K::START, K::POOL_UPDATE, K::INSIGHT_REPLY, K::LLM_REPLY},
       {{K::PROPOSAL, Role::Engineer}, {K::INSIGHT_QUERY, Role::Cognition}, {K::LLM_REQUEST, Role::Llm}},
       {}},
      {Role::Engineer,
       actor_name::kEngineer,
       {K::PROPOSAL, K::PROMOTION, K::TRAIN_FAILURE, K::ABLATION_REQUEST},
       {{K::TRAIN_JOB, Role::Coordinator},
        {K::REJECTION, Role::Analyst},
        {K::DUPLICATE, Role::Analyst},
        {K::UNREPAIRED, Role::Analyst},
        {K::ABLATION_PLAN, Role::Analyst},
        {K::PROPOSAL, Role::Engineer}},
       {}},
      {Role::Analyst,
       actor_name::kAnalyst,
       {K::TRAIN_RESULT, K::REJECTION, K::DUPLICATE, K::UNREPAIRED, K::ABLATION_PLAN, K::LLM_REPLY},
       {{K::POOL_UPDATE, Role::Researcher},
        {K::PROMOTION, Role::Engineer},
        {K::TRAIN_FAILURE, Role::Engineer},
        {K::ABLATION_REQUEST, Role::Engineer},
        {K::INSIGHT, Role::Cognition},
        {K::LLM_REQUEST, Role::Llm}},
       {}},
      {Role::Cognition, actor_name::kCognition, {K::INSIGHT_QUERY, K::INSIGHT}, {{K::INSIGHT_REPLY, Role::Researcher}}, {}},
      // A live slot is no actor: the loop logs its training's result as an input event, then
      // the slot's slotIdle.
      {Role::GpuSlot,
       "gpu-slot-N",
       {K::DISPATCH},
       {{K::TRAIN_RESULT, Role::Analyst},
        {K::SLOT_IDLE, Role::Coordinator},
        {K::SLOT_ANSWER, Role::Coordinator},
        {K::SLOT_CRASH, Role::Coordinator}},
       {K::TRAIN_RESULT}},
      // The language model: the loop logs each reply as an input event to the requester.
      {Role::Llm, actor_name::kLlm, {K::LLM_REQUEST}, {{K::LLM_REPLY, Role::Researcher}, {K::LLM_REPLY, Role::Analyst}}, {K::LLM_REPLY}},
  };
  return table;
}

const ActorInterface& interface_of(Role role) { return actor_interfaces().at(static_cast<size_t>(role)); }

std::optional<uint32_t> gpu_slot_index(std::string_view actor) {
  constexpr std::string_view prefix = actor_name::kGpuSlotPrefix;
  if (actor.substr(0, prefix.size()) != prefix) return std::nullopt;
  const std::string_view digits = actor.substr(prefix.size());
  uint32_t index = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  // One spelling per slot: "gpu-slot-01" is not slot 1.
  if (error != std::errc() || end != digits.data() + digits.size() || digits.empty() || (digits.size() > 1 && digits[0] == '0')) {
    return std::nullopt;
  }
  return index;
}

std::optional<Role> role_of(std::string_view actor) {
  if (gpu_slot_index(actor)) return Role::GpuSlot;
  for (const ActorInterface& actor_interface : actor_interfaces()) {
    if (actor_interface.role != Role::GpuSlot && actor_interface.name == actor) return actor_interface.role;
  }
  return std::nullopt;
}

std::optional<std::string> route_problem(std::string_view from, std::string_view to, msg::Payload::Which kind, bool input) {
  // Every message passes here: the text is built only for a problem.
  auto problem = [&](const std::string& why) {
    return msg::kind_name(kind) + " from " + std::string(from) + " to " + std::string(to) + ": " + why;
  };
  const std::optional<Role> sender = role_of(from);
  if (!sender) return problem("no actor is called " + std::string(from));
  const std::optional<Role> receiver = role_of(to);
  if (!receiver) return problem("no actor is called " + std::string(to));
  const ActorInterface& sends = interface_of(*sender);
  const ActorInterface& accepts = interface_of(*receiver);
  if (!contains(accepts.accepts, kind)) return problem(accepts.name + " does not accept " + msg::kind_name(kind));
  const bool routed = std::any_of(sends.sends.begin(), sends.sends.end(), [&](const Route& r) { return r.kind == kind && r.to == *receiver; });
  if (!routed) return problem(sends.name + " does not send " + msg::kind_name(kind) + " to " + accepts.name);
  if (input && !contains(sends.inputs, kind)) return problem("an input event, but " + sends.name + " has no input of this kind");
  if (!input && *sender == Role::Llm) return problem("the model's replies are input events");
  return std::nullopt;
}

}  // namespace asiarch
