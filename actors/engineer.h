#pragma once
// The engineer: turns a proposal into a training job. It checks the program: parse, type (also
// at the fidelities' widths), causality, complexity (FLOPs per token must not grow with
// context), parameters (within target / (1 + tolerance) and target * (1 + tolerance); baselines
// are exempt).
//
// Self-revision: a program that fails a check, or whose explore training fails (the analyst
// forwards the failure), is repaired by the first rule that fits the failure (repair_for_check,
// repair_for_failure) and proposed again as a new architecture, linked to the one it repairs,
// with operator "repair:RULE" and a motivation naming the failure. A chain of repairs is at
// most [engineer] repair_attempts long; when no rule fits, or the attempts are spent, the
// proposal is rejected (or its failure recorded) as without repair. The engineer proposes to
// itself, so each attempt is a logged proposal and a record of the lineage.
//
// Duplicates, before any training: first the structural hash, then the functional hash (live:
// the mixer's rounded outputs on a probe batch, training::functional_hash; simulation: the
// algebraic normal form, lang::algebraic_normal_form). A duplicate is not trained: the
// analyst reuses the result of the architecture it duplicates.
//
// Ablations: for a breakthrough the analyst names, one proposal per component removed
// (component_removals), trained at the explore fidelity; the answer tells the analyst how many.
//
// Architectures the engineer makes (repairs, ablations) are numbered from kOwnIdBase + 1, so
// that they never collide with the researcher's.
//
// Promotions name the verify trainings to run (replicates [first, first + count), one job each:
// the selection seeds and, later, the replication's fresh seeds; analyst.h).
//
// Its interface (what it accepts and sends) is Role::Engineer in actors/interfaces.cpp.
#include <map>
#include <optional>
#include <string>

#include "actors/actor_state.h"
#include "lang/program.h"
#include "scenario/scenario.h"
#include "training/training.h"

namespace asiarch {

inline constexpr uint64_t kOwnIdBase = 1000000000;

// A repaired program and the rule that made it.
struct Repair {
  lang::Program program;
  std::string rule;         // add_norm, bound_decay, lower_lr, shrink_width, grow_width, causal_conv, sliding_window
  std::string description;  // what the rule changed
  double lr_scale = 1.0;    // multiplies the learning rate of the failed attempt
};

// The repair for a failed static check ("causality", "complexity", "parameters"; the others
// have no rule). `param_target` and `tolerance` are the budget band; `widths` the model widths
// the program must type-check at.
std::optional<Repair> repair_for_check(const lang::Program& program, const std::string& check, const lang::ModelShape& shape,
                                       const std::vector<int64_t>& widths, int64_t param_target, double tolerance);

// The repair for a failed training, by the result's failure kind: failed measured checks map to
// repair_for_check; numerical failures get a normalisation, then a bounded decay, then a lower
// learning rate. nullopt for failures no rule addresses (a model that does not build, a
// cancelled job, the machine's faults).
std::optional<Repair> repair_for_failure(const lang::Program& program, msg::FailureKind kind, const lang::ModelShape& shape,
                                         const std::vector<int64_t>& widths, int64_t param_target, double tolerance);

class EngineerState : public ActorState {
 public:
  // What the engineer reads of a scenario, and no more.
  struct Settings {
    EngineerSection engineer;
    lang::ModelShape shape;          // [model]: where programs are checked
    int64_t param_target = 0;        // mixer parameters; the reference baseline's when [model] says 0
    double param_tolerance = 0.5;
    std::vector<int64_t> widths;     // the explore and verify widths a program must type-check at
    uint32_t max_ablations = 8;      // [analyst]: ablation jobs per breakthrough
    bool judge = false;              // [llm] judge: jobs carry their program for the judge
    // Live campaigns find duplicates by probing the function (at the explore width); simulated
    // ones by the algebraic hash.
    std::optional<training::ProbeConfig> probe;
    static Settings of(const Scenario& scenario);
  };
  explicit EngineerState(Settings settings);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  struct Accepted {
    std::string program;
    std::string name;  // the program's name; a baseline's is the shipped name
    std::map<std::string, int> op_counts;
    std::string operator_name;
    bool baseline;
    std::vector<uint64_t> parents;
    lang::Figures figures;
    std::string hash;
    std::string functional_hash;
    double novelty;
    uint64_t repair_of;
    uint64_t ablation_of;
    double lr_scale;
  };
  // Where a proposal stands in its chain of repairs.
  struct Attempt {
    uint32_t depth = 0;                // repairs before it
    double lr_scale = 1.0;
    std::vector<uint64_t> idea_parents;  // the researcher's parents of the chain's first proposal
  };
  void review(msg::Proposal::Reader proposal, msg::OutboxWriter& out);
  void on_failure(msg::TrainFailure::Reader failure, msg::OutboxWriter& out);
  void ablate(uint64_t arch_id, msg::OutboxWriter& out);
  // Proposes `repair` of `arch_id` to itself when attempts remain; false when it cannot.
  bool propose_repair(uint64_t arch_id, const std::optional<Repair>& repair, const std::string& failure, msg::OutboxWriter& out);
  // `canonical` is canonical(program), which the simulated hash starts from.
  std::string functional_hash(const lang::Program& program, const lang::Program& canonical) const;
  void fill_ref(msg::JobRef::Builder ref, uint64_t arch_id, const Accepted& arch, msg::Fidelity fidelity) const;
  // One training job; jobs are numbered 1, 2, ... in the order they are submitted.
  void submit(uint64_t arch_id, const Accepted& arch, msg::Fidelity fidelity, uint32_t replicate, msg::OutboxWriter& out);
  double novelty(const std::map<std::string, int>& ops, const std::vector<uint64_t>& parents) const;

  Settings settings_;
  std::map<std::string, uint64_t> seen_;             // structural hash -> first arch with it
  std::map<std::string, uint64_t> functions_seen_;   // functional hash -> first arch with it
  std::map<uint64_t, Accepted> accepted_;
  uint64_t next_job_id_ = 1;
  std::map<uint64_t, Attempt> attempts_;             // every reviewed proposal
  uint64_t next_own_id_ = kOwnIdBase + 1;
};

}  // namespace asiarch
