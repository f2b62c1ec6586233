#pragma once
// The engineer: turns a proposal into a training job, or rejects it with the name of the check
// it failed: parse, type (also at the fidelities' widths), causality, complexity (FLOPs per
// token must not grow with context), parameters (within target / (1 + tolerance) and
// target * (1 + tolerance); baselines are exempt), duplicate
// (same structural hash as an earlier program). Also submits verify jobs for promotions.
//
// Accepts: proposal, promotion.  Sends: trainJob (coordinator), rejection (analyst).
#include <map>
#include <string>

#include "actors/actor_state.h"
#include "actors/scenario.h"
#include "kernels/program.h"

namespace asiarch {

class EngineerState : public ActorState {
 public:
  explicit EngineerState(const Scenario& scenario);
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
    double novelty;
  };
  void review(msg::Proposal::Reader proposal, msg::OutboxWriter& out);
  void submit(uint64_t arch_id, const Accepted& arch, msg::Fidelity fidelity, msg::OutboxWriter& out);
  double novelty(const std::map<std::string, int>& ops, const std::vector<uint64_t>& parents) const;

  Scenario scenario_;
  lang::ModelShape shape_;
  int64_t param_target_;
  std::map<std::string, uint64_t> seen_;  // structural hash -> first arch with it
  std::map<uint64_t, Accepted> accepted_;
};

}  // namespace asiarch
