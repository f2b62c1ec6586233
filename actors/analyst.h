#pragma once
// The analyst: turns results into fitness, keeps the explore ranking, promotes the best explore
// candidates to verify, judges breakthroughs, and writes insights back to cognition.
//
// Fitness (in the spirit of ASI-Arch): the mean of
//   sigmoid(loss_scale * (reference loss - loss) / reference loss),
//   sigmoid(accuracy_scale * (accuracy - reference accuracy)),
//   judge = clamp(0.5 + 0.5 * novelty - 0.01 * max(0, statements - 30), 0, 1)
// where the reference is the scenario's reference baseline at the same fidelity. A result that
// arrives before the reference's is held until the reference is in. A breakthrough is a verify
// result that beats every baseline's verify result on both loss and accuracy; it is judged once
// every baseline's verify outcome is known.
//
// Accepts: trainResult, rejection.  Sends: poolUpdate (researcher), promotion (engineer),
// insight (cognition).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/actor_state.h"
#include "actors/scenario.h"

namespace asiarch {

class AnalystState : public ActorState {
 public:
  explicit AnalystState(const Scenario& scenario);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  struct Measured {
    uint64_t arch_id;
    bool baseline;
    std::string operator_name;
    double loss, accuracy, novelty;
    uint32_t statements;
  };
  void on_result(msg::TrainResult::Reader result, msg::OutboxWriter& out);
  void score_explore(const Measured& m, msg::OutboxWriter& out);
  void judge_verify(const Measured& m, msg::OutboxWriter& out);
  void release_waiting(msg::OutboxWriter& out);
  double fitness(const Measured& m, const Measured& reference) const;
  bool baselines_verified() const;

  Scenario scenario_;
  size_t baseline_count_;
  std::optional<Measured> reference_[2];          // per fidelity
  std::map<uint64_t, std::optional<Measured>> baseline_verify_;  // arch -> result (nullopt: failed)
  std::vector<Measured> waiting_explore_, waiting_verify_;
  std::vector<double> explore_fitness_;           // candidates' (not baselines') explore fitness, sorted
  uint32_t breakthroughs_ = 0;
  uint64_t next_insight_id_ = 1;
};

}  // namespace asiarch
