#include "actors/analyst.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace asiarch {
namespace {

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

// What the analyst observed, in words: the next cognition query about this candidate.
std::string diagnose(double loss, double accuracy, double ref_loss, double ref_accuracy) {
  std::string text;
  text += accuracy < ref_accuracy ? "associative recall is weaker than the reference (" : "recall is stronger than the reference (";
  text += fixed(accuracy, 3) + " vs " + fixed(ref_accuracy, 3) + "); ";
  text += loss > ref_loss ? "language modelling loss is worse (" : "language modelling loss is better (";
  text += fixed(loss, 4) + " vs " + fixed(ref_loss, 4) + ")";
  if (accuracy < ref_accuracy) text += "; improve memory capacity and key retrieval";
  if (loss > ref_loss) text += "; improve forgetting, gating and normalisation";
  return text;
}

}  // namespace

AnalystState::AnalystState(const Scenario& scenario) : scenario_(scenario), baseline_count_(scenario.start.size()) {}

void AnalystState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  switch (payload.which()) {
    case msg::Payload::TRAIN_RESULT:
      on_result(payload.getTrainResult(), out);
      break;
    case msg::Payload::REJECTION: {
      auto rejection = payload.getRejection();
      auto update = out.send(actor_name::kResearcher).initPoolUpdate();
      update.setArchId(rejection.getArchId());
      update.setFidelity(msg::Fidelity::EXPLORE);
      update.setOutcome(msg::Outcome::REJECTED);
      update.setDiagnosis("rejected by the " + std::string(rejection.getCheck().cStr()) + " check: " + rejection.getReason().cStr());
      update.setBreakthroughs(breakthroughs_);
      break;
    }
    default:
      throw std::logic_error("analyst: unexpected " + msg::kind_name(payload.which()));
  }
}

void AnalystState::on_result(msg::TrainResult::Reader result, msg::OutboxWriter& out) {
  auto ref = result.getRef();
  const bool verify = ref.getFidelity() == msg::Fidelity::VERIFY;
  if (result.getStatus() != msg::TrainStatus::OK || !std::isfinite(result.getLoss()) || !std::isfinite(result.getAccuracy())) {
    // A failed metric is a failure, never a default score.
    if (ref.getBaseline() && verify) baseline_verify_[ref.getArchId()] = std::nullopt;
    auto update = out.send(actor_name::kResearcher).initPoolUpdate();
    update.setArchId(ref.getArchId());
    update.setFidelity(ref.getFidelity());
    update.setOutcome(msg::Outcome::FAILED);
    update.setDiagnosis(std::string("training failed: ") + result.getFailure().cStr());
    update.setBreakthroughs(breakthroughs_);
    release_waiting(out);
    return;
  }
  const Measured m{ref.getArchId(), ref.getBaseline(), ref.getOperator().cStr(), result.getLoss(), result.getAccuracy(),
                   ref.getNovelty(),  ref.getStatements()};
  if (m.baseline) {
    if (ref.getBaselineName() == scenario_.reference) reference_[verify] = m;
    if (verify) baseline_verify_[m.arch_id] = m;
  }
  (verify ? waiting_verify_ : waiting_explore_).push_back(m);
  release_waiting(out);
}

// Scores every held result whose comparison point is now known, in arrival order.
void AnalystState::release_waiting(msg::OutboxWriter& out) {
  if (reference_[0]) {
    std::vector<Measured> ready;
    ready.swap(waiting_explore_);
    for (const auto& m : ready) score_explore(m, out);
  }
  if (reference_[1] && baselines_verified()) {
    std::vector<Measured> ready;
    ready.swap(waiting_verify_);
    for (const auto& m : ready) judge_verify(m, out);
  }
}

bool AnalystState::baselines_verified() const { return baseline_verify_.size() == baseline_count_; }

double AnalystState::fitness(const Measured& m, const Measured& reference) const {
  const double loss_term = sigmoid(scenario_.loss_scale * (reference.loss - m.loss) / reference.loss);
  const double accuracy_term = sigmoid(scenario_.accuracy_scale * (m.accuracy - reference.accuracy));
  const double judge = std::clamp(0.5 + 0.5 * m.novelty - 0.01 * std::max(0.0, m.statements - 30.0), 0.0, 1.0);
  return (loss_term + accuracy_term + judge) / 3.0;
}

void AnalystState::score_explore(const Measured& m, msg::OutboxWriter& out) {
  const Measured& reference = *reference_[0];
  const double f = fitness(m, reference);
  // Promote baselines (their verify results are the bar) and candidates within the best
  // promote_top explore fitnesses seen so far.
  const auto better = static_cast<size_t>(explore_fitness_.end() - std::upper_bound(explore_fitness_.begin(), explore_fitness_.end(), f));
  const bool promoted = m.baseline || better < scenario_.promote_top;
  if (!m.baseline) explore_fitness_.insert(std::upper_bound(explore_fitness_.begin(), explore_fitness_.end(), f), f);

  auto update = out.send(actor_name::kResearcher).initPoolUpdate();
  update.setArchId(m.arch_id);
  update.setFidelity(msg::Fidelity::EXPLORE);
  update.setOutcome(msg::Outcome::SCORED);
  update.setFitness(f);
  update.setLoss(m.loss);
  update.setAccuracy(m.accuracy);
  update.setBreakthroughs(breakthroughs_);
  update.setDiagnosis(diagnose(m.loss, m.accuracy, reference.loss, reference.accuracy));
  update.setPromoted(promoted);
  if (promoted) {
    auto promotion = out.send(actor_name::kEngineer).initPromotion();
    promotion.setArchId(m.arch_id);
    promotion.setFitness(f);
  }
}

void AnalystState::judge_verify(const Measured& m, msg::OutboxWriter& out) {
  double best_loss = INFINITY, best_accuracy = -INFINITY;
  for (const auto& [id, result] : baseline_verify_) {
    if (!result) continue;
    best_loss = std::min(best_loss, result->loss);
    best_accuracy = std::max(best_accuracy, result->accuracy);
  }
  const bool breakthrough = !m.baseline && m.loss < best_loss && m.accuracy > best_accuracy;
  if (breakthrough) ++breakthroughs_;
  auto update = out.send(actor_name::kResearcher).initPoolUpdate();
  update.setArchId(m.arch_id);
  update.setFidelity(msg::Fidelity::VERIFY);
  update.setOutcome(msg::Outcome::SCORED);
  update.setFitness(fitness(m, *reference_[1]));
  update.setLoss(m.loss);
  update.setAccuracy(m.accuracy);
  update.setBreakthrough(breakthrough);
  update.setBreakthroughs(breakthroughs_);
  update.setDiagnosis(diagnose(m.loss, m.accuracy, best_loss, best_accuracy));
  if (breakthrough) {
    auto insight = out.send(actor_name::kCognition).initInsight();
    insight.setInsightId(next_insight_id_++);
    insight.setArchId(m.arch_id);
    insight.setText("arch " + std::to_string(m.arch_id) + ", made by " + m.operator_name +
                    ", beat every baseline at verify scale: loss " + fixed(m.loss, 4) + " < " + fixed(best_loss, 4) +
                    ", recall " + fixed(m.accuracy, 3) + " > " + fixed(best_accuracy, 3));
    if (m.operator_name != "baseline") insight.initRewrites(1).set(0, m.operator_name);
  }
}

}  // namespace asiarch
