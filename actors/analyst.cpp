#include "actors/analyst.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "actors/llm.h"

namespace asiarch {
namespace {

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

// a / b when both are positive and finite (an efficiency figure that was measured).
std::optional<double> ratio(double a, double b) {
  if (!(a > 0) || !(b > 0) || !std::isfinite(a) || !std::isfinite(b)) return std::nullopt;
  return a / b;
}

AnalystState::Measured measured_of(msg::JobRef::Reader ref) {
  AnalystState::Measured m;
  m.arch_id = ref.getArchId();
  m.baseline = ref.getBaseline();
  m.operator_name = ref.getOperator().cStr();
  m.novelty = ref.getNovelty();
  m.statements = ref.getStatements();
  m.state_size = static_cast<double>(ref.getStateSize());
  m.repair_of = ref.getRepairOf();
  m.program = ref.getProgram().cStr();
  return m;
}

}  // namespace

std::string AnalystState::diagnose(const Measured& m, const Measured& reference) {
  std::string text;
  text += m.accuracy < reference.accuracy ? "associative recall is weaker than the reference (" : "recall is stronger than the reference (";
  text += fixed(m.accuracy, 3) + " vs " + fixed(reference.accuracy, 3) + "); ";
  text += m.loss > reference.loss ? "language modelling loss is worse (" : "language modelling loss is better (";
  text += fixed(m.loss, 4) + " vs " + fixed(reference.loss, 4) + ")";
  if (m.accuracy < reference.accuracy) text += "; improve memory capacity and key retrieval";
  if (m.loss > reference.loss) text += "; improve forgetting, gating and normalisation";
  if (auto speed = ratio(m.tokens_per_second, reference.tokens_per_second); speed && *speed < 0.8) {
    text += "; slower than the reference (" + fixed(*speed, 2) + "x its tokens per second): fewer or cheaper recurrences and paths";
  }
  if (auto memory = ratio(m.peak_memory, reference.peak_memory); memory && *memory > 1.25) {
    text += "; memory grows: peak training memory " + fixed(*memory, 2) + "x the reference's";
  }
  if (auto state = ratio(m.state_size, reference.state_size); state && *state > 1.5) {
    text += "; larger recurrent state than the reference (" + fixed(*state, 2) + "x): compress the state or share it across heads";
  }
  return text;
}

std::string AnalystState::diagnose_failure(const std::string& failure) {
  std::string text = "training failed: " + failure;
  const bool numerical = failure.find("nan") != std::string::npos || failure.find("NaN") != std::string::npos ||
                         failure.find("diverg") != std::string::npos;
  if (numerical) {
    const size_t at = failure.find("step ");
    const long step = at == std::string::npos ? -1 : std::strtol(failure.c_str() + at + 5, nullptr, 10);
    text += step >= 0 && step <= 50 ? "; loss spikes early (step " + std::to_string(step) + ")" : "; loss diverges";
    text += ": stabilise the state with normalisation of keys, a bounded decay or gating";
  }
  return text;
}

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
    case msg::Payload::DUPLICATE:
      on_duplicate(payload.getDuplicate(), out);
      break;
    case msg::Payload::TRAIN_FAILURE: {  // the engineer found no repair
      auto result = payload.getTrainFailure().getResult();
      report_failure(result.getRef(), result.getFailure().cStr(), out);
      break;
    }
    case msg::Payload::LLM_REPLY:
      on_judge_reply(payload.getLlmReply(), out);
      break;
    case msg::Payload::ABLATION_REQUEST: {  // the engineer's answer: how many ablation jobs
      auto answer = payload.getAblationRequest();
      ablations_.at(answer.getArchId()).expected = answer.getJobs();
      finish_ablation(answer.getArchId(), out);
      break;
    }
    default:
      throw std::logic_error("analyst: unexpected " + msg::kind_name(payload.which()));
  }
}

void AnalystState::on_result(msg::TrainResult::Reader result, msg::OutboxWriter& out) {
  auto ref = result.getRef();
  if (ref.getAblationOf() != 0) return on_ablation_result(result, out);
  const bool verify = ref.getFidelity() == msg::Fidelity::VERIFY;
  if (result.getStatus() != msg::TrainStatus::OK || !std::isfinite(result.getLoss()) || !std::isfinite(result.getAccuracy())) {
    // A failed metric is a failure, never a default score.
    const std::string failure = result.getStatus() == msg::TrainStatus::OK ? "a metric is not finite" : result.getFailure().cStr();
    if (!verify) record_explore(ref.getArchId(), ExploreOutcome{std::nullopt, failure}, out);
    if (!verify && !ref.getBaseline() && scenario_.repair_attempts > 0) {
      out.send(actor_name::kEngineer).initTrainFailure().setResult(result);
      return;
    }
    return report_failure(ref, failure, out);
  }
  Measured m = measured_of(ref);
  m.loss = result.getLoss();
  m.accuracy = result.getAccuracy();
  m.tokens_per_second = result.getTokensPerSecond();
  m.peak_memory = static_cast<double>(result.getPeakMemoryBytes());
  if (m.baseline) {
    if (ref.getBaselineName() == scenario_.reference) reference_[verify] = m;
    if (verify) baseline_verify_[m.arch_id] = m;
  }
  if (!verify) record_explore(m.arch_id, ExploreOutcome{m, ""}, out);
  (verify ? waiting_verify_ : waiting_explore_).push_back(m);
  release_waiting(out);
}

void AnalystState::report_failure(msg::JobRef::Reader ref, const std::string& failure, msg::OutboxWriter& out) {
  const bool verify = ref.getFidelity() == msg::Fidelity::VERIFY;
  if (ref.getBaseline() && verify) baseline_verify_[ref.getArchId()] = std::nullopt;
  auto update = out.send(actor_name::kResearcher).initPoolUpdate();
  update.setArchId(ref.getArchId());
  update.setFidelity(ref.getFidelity());
  update.setOutcome(msg::Outcome::FAILED);
  update.setDiagnosis(diagnose_failure(failure));
  update.setBreakthroughs(breakthroughs_);
  update.setRepairOf(ref.getRepairOf());
  release_waiting(out);
}

// Keeps an explore outcome and hands it to the duplicates that wait for it.
void AnalystState::record_explore(uint64_t arch_id, ExploreOutcome outcome, msg::OutboxWriter& out) {
  const ExploreOutcome& kept = explore_outcomes_[arch_id] = std::move(outcome);
  auto waiting = waiting_duplicates_.find(arch_id);
  if (waiting == waiting_duplicates_.end()) return;
  std::vector<Measured> duplicates = std::move(waiting->second);
  waiting_duplicates_.erase(waiting);
  for (const Measured& d : duplicates) reuse(d, kept, out);
}

void AnalystState::on_duplicate(msg::Duplicate::Reader duplicate, msg::OutboxWriter& out) {
  Measured m = measured_of(duplicate.getRef());
  m.reused_from = duplicate.getSameAs();
  if (auto original = explore_outcomes_.find(m.reused_from); original != explore_outcomes_.end()) return reuse(m, original->second, out);
  waiting_duplicates_[m.reused_from].push_back(m);
}

void AnalystState::reuse(const Measured& duplicate, const ExploreOutcome& original, msg::OutboxWriter& out) {
  if (!original.measured) {
    auto update = out.send(actor_name::kResearcher).initPoolUpdate();
    update.setArchId(duplicate.arch_id);
    update.setFidelity(msg::Fidelity::EXPLORE);
    update.setOutcome(msg::Outcome::FAILED);
    update.setDiagnosis("same function as arch " + std::to_string(duplicate.reused_from) + ", whose " + diagnose_failure(original.failure));
    update.setBreakthroughs(breakthroughs_);
    update.setReusedFrom(duplicate.reused_from);
    update.setRepairOf(duplicate.repair_of);
    return;
  }
  Measured m = duplicate;
  m.loss = original.measured->loss;
  m.accuracy = original.measured->accuracy;
  m.tokens_per_second = original.measured->tokens_per_second;
  m.peak_memory = original.measured->peak_memory;
  waiting_explore_.push_back(m);
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
  const Scenario& s = scenario_;
  auto efficiency = [&](std::optional<double> r) { return r ? sigmoid(s.efficiency_scale * std::log(*r)) : 0.5; };
  const double terms[][2] = {
      {s.loss_weight, sigmoid(s.loss_scale * (reference.loss - m.loss) / reference.loss)},
      {s.accuracy_weight, sigmoid(s.accuracy_scale * (m.accuracy - reference.accuracy))},
      {s.judge_weight, m.llm_judge ? *m.llm_judge : std::clamp(0.5 + 0.5 * m.novelty - 0.01 * std::max(0.0, m.statements - 30.0), 0.0, 1.0)},
      {s.throughput_weight, efficiency(ratio(m.tokens_per_second, reference.tokens_per_second))},
      {s.memory_weight, efficiency(ratio(reference.peak_memory, m.peak_memory))},
      {s.state_weight, efficiency(ratio(reference.state_size, m.state_size))},
  };
  double weighted = 0, weights = 0;
  for (const auto& [weight, term] : terms) {
    weighted += weight * term;
    weights += weight;
  }
  return weighted / weights;
}

void AnalystState::score_explore(const Measured& m, msg::OutboxWriter& out) {
  if (scenario_.llm.judge && !m.judged && !m.baseline && m.reused_from == 0) return ask_judge(m, out);
  const Measured& reference = *reference_[0];
  const double f = fitness(m, reference);
  // Promote baselines (their verify results are the bar) and candidates within the best
  // promote_top explore fitnesses seen so far. A duplicate's function had its own chance.
  const bool reused = m.reused_from != 0;
  const auto better = static_cast<size_t>(explore_fitness_.end() - std::upper_bound(explore_fitness_.begin(), explore_fitness_.end(), f));
  const bool promoted = m.baseline || (!reused && better < scenario_.promote_top);
  if (!m.baseline && !reused) explore_fitness_.insert(std::upper_bound(explore_fitness_.begin(), explore_fitness_.end(), f), f);

  auto update = out.send(actor_name::kResearcher).initPoolUpdate();
  update.setArchId(m.arch_id);
  update.setFidelity(msg::Fidelity::EXPLORE);
  update.setOutcome(msg::Outcome::SCORED);
  update.setFitness(f);
  update.setLoss(m.loss);
  update.setAccuracy(m.accuracy);
  update.setBreakthroughs(breakthroughs_);
  update.setDiagnosis((reused ? "same function as arch " + std::to_string(m.reused_from) + "; " : std::string()) + diagnose(m, reference));
  update.setPromoted(promoted);
  update.setReusedFrom(m.reused_from);
  update.setRepairOf(m.repair_of);
  if (promoted) {
    auto promotion = out.send(actor_name::kEngineer).initPromotion();
    promotion.setArchId(m.arch_id);
    promotion.setFitness(f);
  }
}

void AnalystState::ask_judge(const Measured& m, msg::OutboxWriter& out) {
  auto figures = [](const Measured& r) {
    char text[200];
    std::snprintf(text, sizeof text, "loss %.4f, MQAR recall %.3f, %.0f tokens/s, recurrent state %.0f floats, %u statements", r.loss,
                  r.accuracy, r.tokens_per_second, r.state_size, r.statements);
    return std::string(text);
  };
  std::string anchors;
  for (const auto& [id, outcome] : explore_outcomes_) {
    if (!outcome.measured || !outcome.measured->baseline) continue;
    anchors += "- baseline arch " + std::to_string(id) + ": " + figures(*outcome.measured) + "\n";
  }
  const std::string prompt =
      "Rate a candidate token mixer against the baselines of this campaign (reference: " + scenario_.reference +
      "), each on a scale from 1 to 10 where the reference baseline scores 5:\n"
      "- performance: its measured results (lower loss, higher recall, speed);\n"
      "- novelty: how far its design departs from the baselines in a promising way;\n"
      "- complexity: how lean it is (10: as simple as it can be, 1: needlessly complicated).\n\n"
      "Baselines at the same (explore) scale:\n" + anchors + "\nCandidate arch " + std::to_string(m.arch_id) + " (made by " +
      m.operator_name + "): " + figures(m) + "\n```asiarch\n" + m.program +
      "```\n\nReply with one JSON object and nothing else: {\"performance\": N, \"novelty\": N, \"complexity\": N}\n";
  const uint64_t request = next_request_id_++;
  fill_llm_request(out.send(actor_name::kLlm).initLlmRequest(), request, "judge", m.arch_id, scenario_.llm,
                   {{"system", "You are a careful reviewer of neural network architecture research."}, {"user", prompt}}, 0);
  waiting_for_judge_[request] = m;
}

// A failed call or an unreadable reply leaves the deterministic judge in place.
void AnalystState::on_judge_reply(msg::LlmReply::Reader reply, msg::OutboxWriter& out) {
  auto waiting = waiting_for_judge_.find(reply.getRequestId());
  if (waiting == waiting_for_judge_.end()) throw std::logic_error("analyst: LLM reply to an unknown request");
  Measured m = std::move(waiting->second);
  waiting_for_judge_.erase(waiting);
  m.judged = true;
  std::string problem;
  if (reply.getOk()) {
    if (auto scores = parse_judge_reply(reply.getContent().cStr(), problem)) {
      m.llm_judge = judge_score(*scores);
      llm_judges_[m.arch_id] = *m.llm_judge;
    }
  }
  score_explore(m, out);
}

void AnalystState::judge_verify(const Measured& judged_without_llm, msg::OutboxWriter& out) {
  Measured m = judged_without_llm;
  if (auto judge = llm_judges_.find(m.arch_id); judge != llm_judges_.end()) m.llm_judge = judge->second;
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
  Measured best = *reference_[1];
  best.loss = best_loss;
  best.accuracy = best_accuracy;
  update.setDiagnosis(diagnose(m, best));
  update.setRepairOf(m.repair_of);
  if (!breakthrough) return;
  auto insight = out.send(actor_name::kCognition).initInsight();
  insight.setInsightId(next_insight_id_++);
  insight.setArchId(m.arch_id);
  insight.setText("arch " + std::to_string(m.arch_id) + ", made by " + m.operator_name +
                  ", beat every baseline at verify scale: loss " + fixed(m.loss, 4) + " < " + fixed(best_loss, 4) +
                  ", recall " + fixed(m.accuracy, 3) + " > " + fixed(best_accuracy, 3));
  if (m.operator_name != "baseline") insight.initRewrites(1).set(0, m.operator_name);
  const auto explore = explore_outcomes_.find(m.arch_id);
  if (scenario_.max_ablations > 0 && explore != explore_outcomes_.end() && explore->second.measured) {
    ablations_[m.arch_id] = Ablation{*explore->second.measured, std::nullopt, {}};
    out.send(actor_name::kEngineer).initAblationRequest().setArchId(m.arch_id);
  }
}

void AnalystState::on_ablation_result(msg::TrainResult::Reader result, msg::OutboxWriter& out) {
  auto ref = result.getRef();
  Ablation& ablation = ablations_.at(ref.getAblationOf());
  const std::string op = ref.getOperator().cStr();
  const std::string component = op.substr(op.find(':') + 1);
  std::optional<Measured> m;
  if (result.getStatus() == msg::TrainStatus::OK && std::isfinite(result.getLoss()) && std::isfinite(result.getAccuracy())) {
    // The judge is the breakthrough's: the drop measures what training shows, not novelty.
    m = ablation.breakthrough;
    m->arch_id = ref.getArchId();
    m->loss = result.getLoss();
    m->accuracy = result.getAccuracy();
    m->tokens_per_second = result.getTokensPerSecond();
    m->peak_memory = static_cast<double>(result.getPeakMemoryBytes());
    m->state_size = static_cast<double>(ref.getStateSize());
  }
  ablation.results.emplace_back(component, m);
  finish_ablation(ref.getAblationOf(), out);
}

// Once every ablation of a breakthrough is in: each component's contribution, as an insight.
void AnalystState::finish_ablation(uint64_t arch_id, msg::OutboxWriter& out) {
  const Ablation& ablation = ablations_.at(arch_id);
  if (!ablation.expected || ablation.results.size() < *ablation.expected || !reference_[0]) return;
  const double full = fitness(ablation.breakthrough, *reference_[0]);
  struct Part {
    double drop;
    std::string component, sentence;
  };
  std::vector<Part> parts;
  for (const auto& [component, m] : ablation.results) {
    if (!m) {
      parts.push_back({INFINITY, component, "without " + component + " it does not train, so it is essential"});
      continue;
    }
    const double drop = full - fitness(*m, *reference_[0]);
    parts.push_back({drop, component, component + " contributes " + fixed(drop, 3) + " fitness (loss " + fixed(m->loss, 4) + ", recall " +
                                          fixed(m->accuracy, 3) + " without it)"});
  }
  std::stable_sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.drop > b.drop; });
  std::string text = "ablations of breakthrough arch " + std::to_string(arch_id) + " (made by " + ablation.breakthrough.operator_name +
                     ", explore fitness " + fixed(full, 3) + "): ";
  if (parts.empty()) text += "it has no component that can be removed alone";
  std::string mattered;
  for (size_t i = 0; i < parts.size(); ++i) {
    text += (i ? "; " : "") + parts[i].sentence;
    if (parts[i].drop > 0.01) mattered += (mattered.empty() ? "" : ", ") + parts[i].component;
  }
  if (!mattered.empty()) text += ". The components that matter: " + mattered;
  auto insight = out.send(actor_name::kCognition).initInsight();
  insight.setInsightId(next_insight_id_++);
  insight.setArchId(arch_id);
  insight.setText(text);
  ablations_.erase(arch_id);
}

}  // namespace asiarch
