#pragma once
// The analyst: turns results into fitness, keeps the explore ranking, promotes the best explore
// candidates to verify, judges breakthroughs, ablates them, and writes insights back to cognition.
//
// Fitness (in the spirit of ASI-Arch, with efficiency objectives the paper did not have): the
// weighted mean ([fitness] weights w) of
//   loss:       sigmoid(loss_scale * (reference loss - loss) / reference loss)
//   accuracy:   sigmoid(accuracy_scale * (accuracy - reference accuracy))
//   judge:      clamp(0.5 + 0.5 * novelty - 0.01 * max(0, statements - 30), 0, 1)
//   throughput: sigmoid(efficiency_scale * ln(tokens per second / reference's))
//   memory:     sigmoid(efficiency_scale * ln(reference's peak memory / peak memory))
//   state:      sigmoid(efficiency_scale * ln(reference's state size / state size))
// where the reference is the scenario's reference baseline at the same fidelity (an efficiency
// term is 0.5 when a figure is missing). A result that arrives before the reference's is held
// until the reference is in.
//
// Breakthroughs with evidence (stats/evidence.h). Every promoted candidate, and every baseline,
// is trained at verify on [fidelity.verify] seeds seeds of its own; its verify result is the
// means. Once every baseline's verify outcome is known, a candidate's seeds are compared with
// those of the baseline with the lowest mean loss and the one with the highest mean recall
// (screening). One that passes is trained again on replication_seeds fresh seeds, and so are
// its comparators (once per baseline and campaign); the replication is tested at level
// alpha / m, m the candidates verified so far. The verify poolUpdate comes after the last
// stage, with the verdict and both stages' statistics (PoolUpdate.evidence); `breakthrough` is
// a confirmed verdict. A candidate with a failed verify seed fails at verify.
//
// Each result gets a diagnosis from its measurements (recall, loss, speed, memory, state, or how
// training failed): the researcher's next cognition query about it.
//
// Training failures of explore candidates go to the engineer for repair (it sends them back when
// no rule fits; then they are recorded as failures). Duplicates the engineer found reuse the
// result of the architecture they duplicate, once it is in; they are never promoted.
//
// Ablations: for each breakthrough the analyst asks the engineer for one explore training per
// component removed ([analyst] max_ablations); when all are in, each component's contribution is
// the drop of explore fitness from the breakthrough's (judge held fixed), written back to
// cognition as an insight. Ablation results are not candidates: no pool update, no promotion.
//
// LLM judge ([llm] judge = true, actors/llm.h): before a candidate's explore result is scored
// (not a baseline's, nor a duplicate's, which reuses a function already judged), the analyst
// asks the model to rate its performance, novelty and complexity from 1 to 10 against the
// baselines' results, and holds the result until the reply comes. The judge term is then
// (mean of the three - 1) / 9 instead of the deterministic formula above; the same score serves
// the architecture's verify fitness. A failed call or a reply without the three scores falls
// back to the deterministic judge. Ablations keep the deterministic judge on both sides, so
// their fitness drops still measure training alone.
//
// Its interface (what it accepts and sends) is Role::Analyst in actors/interfaces.cpp.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/actor_state.h"
#include "scenario/scenario.h"
#include "stats/evidence.h"

namespace asiarch {

class AnalystState : public ActorState {
 public:
  // What the analyst reads of a scenario, and no more.
  struct Settings {
    AnalystSection analyst;
    FitnessSection fitness;
    LlmSpec llm;                  // the judge's model, when llm.judge
    size_t baselines = 1;         // [campaign] start: baselines to verify before candidates are judged
    std::string reference;        // [campaign] reference: the baseline fitness is measured against
    bool repairs = true;          // [engineer] repair_attempts > 0: failures go back to the engineer
    uint32_t promote_top = 10;    // [fidelity]
    uint32_t verify_seeds = 3;    // [fidelity.verify] seeds
    uint32_t replication_seeds = 5;
    static Settings of(const Scenario& scenario);
  };
  explicit AnalystState(Settings settings);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

  struct Measured {
    uint64_t arch_id = 0;
    bool baseline = false;
    std::string operator_name;
    double loss = 0, accuracy = 0, novelty = 0;
    uint32_t statements = 0;
    double tokens_per_second = 0;
    double peak_memory = 0;
    double state_size = 0;
    uint64_t reused_from = 0;  // a duplicate: the result is this architecture's
    uint64_t repair_of = 0;
    std::string program;       // its text, when the LLM judge reads it
    bool judged = false;               // the LLM judge has answered (or failed) for it
    std::optional<double> llm_judge;   // its judge term from the model, in [0, 1]
  };
  // What the measurements say against the reference, in words (the next cognition query).
  static std::string diagnose(const Measured& m, const Measured& reference);
  // A failed training: its result's kind and step, for the diagnosis, and its text for people.
  struct Failure {
    msg::FailureKind kind = msg::FailureKind::NONE;
    std::string text;    // empty: not failed
    uint32_t step = 0;   // of a numerical failure; 0 when unknown
    bool failed() const { return !text.empty(); }
  };
  // What a training failure says, in words.
  static std::string diagnose_failure(const Failure& failure);

 private:
  // An explore outcome, kept for the duplicates that reuse it.
  struct ExploreOutcome {
    std::optional<Measured> measured;  // nullopt: training failed
    Failure failure;
  };
  struct Ablation {
    Measured breakthrough;  // its explore result
    std::optional<uint32_t> expected;  // the engineer's count, once it answered
    std::vector<std::pair<std::string, std::optional<Measured>>> results;  // component, result (nullopt: failed)
  };
  // The seeds of one architecture at verify: selection, then replication (nullopt: failed).
  struct VerifySeeds {
    std::vector<std::optional<Measured>> selection, replication;
    Failure failure;  // the first failed seed's failure
  };
  // A verified candidate's judgment: screening, then (when it passed) replication.
  struct Judgment {
    Measured measured;  // the means of its selection seeds
    std::optional<stats::Comparison> screening, replication;
    uint64_t loss_baseline = 0, recall_baseline = 0;
    uint64_t verified = 0;  // m: candidates verified so far, this one included
  };
  void on_result(msg::TrainResult::Reader result, msg::OutboxWriter& out);
  void on_verify_result(msg::TrainResult::Reader result, msg::OutboxWriter& out);
  void finish_replications(msg::OutboxWriter& out);
  void send_verify_update(const Judgment& judgment, msg::OutboxWriter& out);
  static std::string verdict_text(const Judgment& judgment);
  static Measured mean_of(const std::vector<Measured>& seeds);
  stats::Seeds seeds_of(uint64_t arch_id, bool replication) const;
  std::pair<uint64_t, uint64_t> best_baselines() const;  // (lowest mean loss, highest mean recall)
  void on_duplicate(msg::Duplicate::Reader duplicate, msg::OutboxWriter& out);
  void on_ablation_result(msg::TrainResult::Reader result, msg::OutboxWriter& out);
  void report_failure(msg::JobRef::Reader ref, const Failure& failure, msg::OutboxWriter& out);
  void record_explore(uint64_t arch_id, ExploreOutcome outcome, msg::OutboxWriter& out);
  void reuse(const Measured& duplicate, const ExploreOutcome& original, msg::OutboxWriter& out);
  void score_explore(const Measured& m, msg::OutboxWriter& out);
  void ask_judge(const Measured& m, msg::OutboxWriter& out);
  void on_judge_reply(msg::LlmReply::Reader reply, msg::OutboxWriter& out);
  void judge_verify(const Measured& m, msg::OutboxWriter& out);
  void finish_ablation(uint64_t arch_id, msg::OutboxWriter& out);
  void release_waiting(msg::OutboxWriter& out);
  double fitness(const Measured& m, const Measured& reference) const;
  bool baselines_verified() const;

  Settings settings_;
  stats::EvidenceRule rule_;
  std::map<uint64_t, VerifySeeds> verify_seeds_;
  std::map<uint64_t, Judgment> awaiting_replication_;  // candidate -> its screening, until replicated
  std::set<uint64_t> replication_asked_;                // architectures whose replication was asked
  uint64_t verified_ = 0;
  std::optional<Measured> reference_[2];          // per fidelity
  std::map<uint64_t, std::optional<Measured>> baseline_verify_;  // arch -> result (nullopt: failed)
  std::vector<Measured> waiting_explore_, waiting_verify_;
  std::vector<double> explore_fitness_;           // candidates' (not baselines') explore fitness, sorted
  std::map<uint64_t, ExploreOutcome> explore_outcomes_;
  std::map<uint64_t, std::vector<Measured>> waiting_duplicates_;  // original arch -> duplicates of it
  std::map<uint64_t, Ablation> ablations_;        // breakthrough arch -> its ablations
  uint32_t breakthroughs_ = 0;
  uint64_t next_insight_id_ = 1;
  std::map<uint64_t, Measured> waiting_for_judge_;  // LLM judge request id -> the result it judges
  std::map<uint64_t, double> llm_judges_;           // arch -> its judge term from the model
  uint64_t next_request_id_ = 1;
};

}  // namespace asiarch
