#pragma once
// The researcher: keeps the candidate pool, selects a parent from its top and reference programs
// from the rest (ASI-Arch, arXiv:2507.18074), asks the cognition actor for insights about the
// parent's diagnosis, and proposes a child made by a typed mutation, with the motivation that
// led to it. It keeps (GPU slots + 1) proposals in flight.
//
// Credit assignment: every operator and every insight is a bandit arm. A child whose explore
// fitness beats its parent's rewards the arms that made it (a breakthrough at verify rewards
// them more), and UCB1 (Auer et al., 2002) over these rewards biases the next choices.
//
// Strategies (scenario [researcher] strategy): "full" as above; "no_cognition" without
// retrieved insights; "random": a uniform parent from the pool and a uniformly random
// applicable operator, no insights, no bandit. Selection ([researcher] selection): "paper", one
// pool; "islands", separate pools that evolve apart and pass their best on at intervals.
//
// LLM backend ([researcher] backend = "llm", actors/llm.h): where the built-in researcher would
// mutate, it asks the language model instead: the language reference, the parent and reference
// programs with their results, the analyst's diagnosis and the retrieved insights. A reply whose
// program does not parse or type-check goes back to the model with the checker's error, up to
// [llm] revisions times; a failed call, or revisions used up, falls back to the built-in
// mutation for that step, and the motivation says why. The model's proposals have operator "llm".
//
// Its interface (what it accepts and sends) is Role::Researcher in actors/interfaces.cpp.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/actor_state.h"
#include "actors/llm.h"
#include "actors/mutations.h"
#include "common/rng.h"
#include "lang/program.h"
#include "scenario/scenario.h"

namespace asiarch {

class ResearcherState : public ActorState {
 public:
  // What the researcher reads of a scenario, and no more.
  struct Settings {
    ResearcherSection researcher;
    LlmSpec llm;                // the model it asks with backend = "llm"
    lang::ModelShape shape;     // [model]: where programs are checked
    uint32_t gpu_slots = 4;     // proposals in flight: gpu_slots + 1
    uint32_t pool_size = 50;
    static Settings of(const Scenario& scenario);
  };
  ResearcherState(Settings settings, uint64_t seed);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  struct Candidate {
    std::string program;    // text form
    std::string label;      // baseline name or "arch N"
    std::string diagnosis;  // the analyst's last word on it
    uint32_t island = 0;
    uint64_t parent = 0;          // 0 for a start program
    std::string operator_name;    // what made it
    std::string insight_id;       // the insight it followed, if any
    double explore_fitness = -1;  // -1 until scored
    double loss = 0, accuracy = 0;  // of the explore result, once scored
  };
  struct PoolEntry {
    double fitness;
    uint64_t arch_id;
  };
  struct Arm {
    double pulls = 0;   // proposals made with it
    double rewards = 0; // total reward of its scored proposals
  };
  // One proposal being prepared: the parent and references, waiting for insights.
  struct Plan {
    uint32_t island;
    uint64_t parent;
    std::vector<uint64_t> references;
  };
  // An operator to try, and the insight that suggests it ("" for none).
  struct Option {
    std::string op;
    std::string insight_id, insight_text;
    double score;
  };

  void propose_baselines(msg::CampaignStart::Reader start, msg::OutboxWriter& out);
  void top_up(msg::OutboxWriter& out);
  Plan select();
  std::vector<Option> options(const Plan& plan, const std::vector<Option>& suggested);
  // A mutation of a plan's parent and whether its function is new to the campaign.
  struct Child {
    std::optional<Mutation> mutation;
    std::string hash;   // lang::algebraic_hash of the child
    size_t option = 0;  // index into the options tried
    bool is_new = false;
  };
  Child find_child(const Plan& plan, const std::vector<Option>& order, int rounds);
  // Candidate `id`'s program, parsed and type-checked once (types nullopt: it does not type-check).
  struct Checked {
    lang::Program program;
    std::optional<std::vector<lang::Type>> types;
  };
  const Checked& checked(uint64_t id);
  // `why` prefixes the motivation (the LLM backend's reason to fall back; "" for the built-in one).
  void propose_child(Plan plan, const std::vector<Option>& suggested, msg::OutboxWriter& out, const std::string& why = "");
  // The LLM backend: one proposal's conversation with the model.
  struct LlmPlan {
    Plan plan;
    std::vector<Option> suggested;  // for the built-in fallback
    std::vector<ChatTurn> messages;
    uint32_t attempt = 0;
    std::string first_problem;  // what was wrong with the first reply, when it was revised
  };
  void ask_llm(const Plan& plan, std::vector<Option> suggested, const std::string& insights, msg::OutboxWriter& out);
  void send_llm_request(LlmPlan conversation, msg::OutboxWriter& out);
  void on_llm_reply(msg::LlmReply::Reader reply, msg::OutboxWriter& out);
  std::string describe(uint64_t arch_id) const;
  void record(msg::PoolUpdate::Reader update);
  void credit(const Candidate& child, double reward);
  void migrate();
  double ucb(const Arm& arm, double total_pulls) const;

  Settings settings_;
  Rng rng_;
  std::map<uint64_t, Candidate> candidates_;
  std::vector<std::vector<uint64_t>> start_ids_;  // per island
  std::vector<std::vector<PoolEntry>> pools_;     // per island, best first; at most pool_size entries
  uint32_t next_island_ = 0;
  uint64_t scored_ = 0;  // explore results scored, for migration
  std::map<uint64_t, Plan> waiting_for_insight_;  // request id -> plan
  std::map<uint64_t, LlmPlan> waiting_for_llm_;   // request id -> conversation
  std::set<std::string> proposed_hashes_;         // lang::algebraic_hash of every proposal
  std::set<uint64_t> exhausted_;                  // parents whose children were all proposed before
  std::map<uint64_t, Checked> checked_;           // by candidate id; see checked()
  std::map<std::string, Arm> operator_arms_, insight_arms_;
  double operator_pulls_ = 0, insight_pulls_ = 0;
  uint64_t next_arch_id_ = 1;
  uint64_t next_request_id_ = 1;
  uint32_t in_flight_ = 0;  // proposals whose explore outcome has not come back
  bool started_ = false;
};

}  // namespace asiarch
