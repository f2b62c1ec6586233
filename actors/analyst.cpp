#include "actors/analyst.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "actors/llm.h"
#include "common/number_text.h"

namespace asiarch {
namespace {

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

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

// A failed metric is a failure, never a default score: the failure's text, or "" for a result
// that can be scored.
AnalystState::Failure failure_of(msg::TrainResult::Reader result) {
  if (result.getStatus() != msg::TrainStatus::OK) {
    const std::string text = result.getFailure().cStr();
    return {result.getFailureKind(), text.empty() ? "failed without a reason" : text, result.getFailedStep()};
  }
  if (!std::isfinite(result.getLoss()) || !std::isfinite(result.getAccuracy())) return {msg::FailureKind::NUMERICAL, "a metric is not finite"};
  return {};
}

AnalystState::Measured measured_result(msg::TrainResult::Reader result) {
  AnalystState::Measured m = measured_of(result.getRef());
  m.loss = result.getLoss();
  m.accuracy = result.getAccuracy();
  m.tokens_per_second = result.getTokensPerSecond();
  m.peak_memory = static_cast<double>(result.getPeakMemoryBytes());
  return m;
}

void set_seed_stats(msg::SeedStats::Builder out, const stats::Summary& s) {
  out.setN(static_cast<uint32_t>(s.n));
  out.setMean(s.mean);
  out.setSd(s.sd);
}

void set_test(msg::EvidenceTest::Builder out, const stats::Comparison& c) {
  set_seed_stats(out.initLoss(), c.loss);
  set_seed_stats(out.initAccuracy(), c.accuracy);
  set_seed_stats(out.initBaselineLoss(), c.baseline_loss);
  set_seed_stats(out.initBaselineAccuracy(), c.baseline_accuracy);
  out.setLossLow(c.loss_difference.low);
  out.setLossHigh(c.loss_difference.high);
  out.setAccuracyLow(c.accuracy_difference.low);
  out.setAccuracyHigh(c.accuracy_difference.high);
  out.setPLoss(c.p_loss);
  out.setLevel(c.level);
  out.setRecallBound(c.recall_bound);
  out.setPassed(c.passed());
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

std::string AnalystState::diagnose_failure(const Failure& failure) {
  std::string text = "training failed: " + failure.text;
  if (failure.kind == msg::FailureKind::NUMERICAL) {
    const bool early = failure.step > 0 && failure.step <= 50;
    text += early ? "; loss spikes early (step " + std::to_string(failure.step) + ")" : "; loss diverges";
    text += ": stabilise the state with normalisation of keys, a bounded decay or gating";
  }
  return text;
}

AnalystState::Settings AnalystState::Settings::of(const Scenario& scenario) {
  return {scenario.analyst,
          scenario.fitness,
          scenario.llm,
          scenario.campaign.start.size(),
          scenario.campaign.reference,
          scenario.engineer.repair_attempts > 0,
          scenario.fidelity.promote_top,
          scenario.fidelity.verify.seeds,
          scenario.fidelity.verify.replication_seeds};
}

AnalystState::AnalystState(Settings settings)
    : settings_(std::move(settings)), rule_{settings_.analyst.alpha, settings_.analyst.recall_margin} {}

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
    case msg::Payload::UNREPAIRED: {
      auto result = payload.getUnrepaired().getResult();
      report_failure(result.getRef(), failure_of(result), out);
      break;
    }
    case msg::Payload::LLM_REPLY:
      on_judge_reply(payload.getLlmReply(), out);
      break;
    case msg::Payload::ABLATION_PLAN: {
      auto plan = payload.getAblationPlan();
      ablations_.at(plan.getArchId()).expected = plan.getJobs();
      finish_ablation(plan.getArchId(), out);
      break;
    }
    default:
      throw std::logic_error("analyst: unexpected " + msg::kind_name(payload.which()));
  }
}

void AnalystState::on_result(msg::TrainResult::Reader result, msg::OutboxWriter& out) {
  auto ref = result.getRef();
  if (ref.getAblationOf() != 0) return on_ablation_result(result, out);
  if (ref.getFidelity() == msg::Fidelity::VERIFY) return on_verify_result(result, out);
  if (const Failure failure = failure_of(result); failure.failed()) {
    record_explore(ref.getArchId(), ExploreOutcome{std::nullopt, failure}, out);
    if (!ref.getBaseline() && settings_.repairs) {
      out.send(actor_name::kEngineer).initTrainFailure().setResult(result);
      return;
    }
    return report_failure(ref, failure, out);
  }
  const Measured m = measured_result(result);
  if (m.baseline && ref.getBaselineName() == settings_.reference) reference_[0] = m;
  record_explore(m.arch_id, ExploreOutcome{m, {}}, out);
  waiting_explore_.push_back(m);
  release_waiting(out);
}

// Verify results come one seed at a time. The selection seeds make the architecture's verify
// result (the means) once all are in; replication seeds wait for the replication's judgment.
void AnalystState::on_verify_result(msg::TrainResult::Reader result, msg::OutboxWriter& out) {
  auto ref = result.getRef();
  const uint64_t id = ref.getArchId();
  const bool selection = ref.getReplicate() < settings_.verify_seeds;
  VerifySeeds& seeds = verify_seeds_[id];
  const Failure failure = failure_of(result);
  if (failure.failed() && !seeds.failure.failed()) seeds.failure = failure;
  Measured m = failure.failed() ? measured_of(ref) : measured_result(result);
  (selection ? seeds.selection : seeds.replication).push_back(failure.failed() ? std::nullopt : std::optional<Measured>(m));
  if (selection && seeds.selection.size() == settings_.verify_seeds) {
    std::vector<Measured> ok;
    for (const auto& s : seeds.selection) {
      if (s) ok.push_back(*s);
    }
    // A candidate with a failed seed fails at verify; a baseline (published, known to train)
    // keeps the seeds that did train.
    if (ok.empty() || (!m.baseline && seeds.failure.failed())) {
      if (m.baseline) baseline_verify_[id] = std::nullopt;
      return report_failure(ref, seeds.failure, out);
    }
    const Measured mean = mean_of(ok);
    if (mean.baseline) {
      baseline_verify_[id] = mean;
      if (ref.getBaselineName() == settings_.reference) reference_[1] = mean;
    }
    waiting_verify_.push_back(mean);
    return release_waiting(out);
  }
  if (!selection) finish_replications(out);
}

void AnalystState::report_failure(msg::JobRef::Reader ref, const Failure& failure, msg::OutboxWriter& out) {
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

bool AnalystState::baselines_verified() const { return baseline_verify_.size() == settings_.baselines; }

double AnalystState::fitness(const Measured& m, const Measured& reference) const {
  const FitnessSection& s = settings_.fitness;
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
  if (settings_.llm.judge && !m.judged && !m.baseline && m.reused_from == 0) return ask_judge(m, out);
  const Measured& reference = *reference_[0];
  const double f = fitness(m, reference);
  // Promote baselines (their verify results are the bar) and candidates within the best
  // promote_top explore fitnesses seen so far. A duplicate's function had its own chance.
  const bool reused = m.reused_from != 0;
  const auto better = static_cast<size_t>(explore_fitness_.end() - std::upper_bound(explore_fitness_.begin(), explore_fitness_.end(), f));
  const bool promoted = m.baseline || (!reused && better < settings_.promote_top);
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
    promotion.setReplicates(settings_.verify_seeds);
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
      "Rate a candidate token mixer against the baselines of this campaign (reference: " + settings_.reference +
      "), each on a scale from 1 to 10 where the reference baseline scores 5:\n"
      "- performance: its measured results (lower loss, higher recall, speed);\n"
      "- novelty: how far its design departs from the baselines in a promising way;\n"
      "- complexity: how lean it is (10: as simple as it can be, 1: needlessly complicated).\n\n"
      "Baselines at the same (explore) scale:\n" + anchors + "\nCandidate arch " + std::to_string(m.arch_id) + " (made by " +
      m.operator_name + "): " + figures(m) + "\n```asiarch\n" + m.program +
      "```\n\nReply with one JSON object and nothing else: {\"performance\": N, \"novelty\": N, \"complexity\": N}\n";
  const uint64_t request = next_request_id_++;
  fill_llm_request(out.send(actor_name::kLlm).initLlmRequest(), request, "judge", m.arch_id, settings_.llm,
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

AnalystState::Measured AnalystState::mean_of(const std::vector<Measured>& seeds) {
  Measured mean = seeds.front();
  double loss = 0, accuracy = 0, tokens_per_second = 0, peak_memory = 0;
  for (const Measured& s : seeds) {
    loss += s.loss;
    accuracy += s.accuracy;
    tokens_per_second += s.tokens_per_second;
    peak_memory += s.peak_memory;
  }
  const auto n = static_cast<double>(seeds.size());
  mean.loss = loss / n;
  mean.accuracy = accuracy / n;
  mean.tokens_per_second = tokens_per_second / n;
  mean.peak_memory = peak_memory / n;
  return mean;
}

stats::Seeds AnalystState::seeds_of(uint64_t arch_id, bool replication) const {
  stats::Seeds seeds;
  const auto found = verify_seeds_.find(arch_id);
  if (found == verify_seeds_.end()) return seeds;
  for (const auto& s : replication ? found->second.replication : found->second.selection) {
    if (!s) continue;
    seeds.loss.push_back(s->loss);
    seeds.accuracy.push_back(s->accuracy);
  }
  return seeds;
}

// The comparators: the baseline with the lowest mean verify loss and the one with the highest
// mean verify accuracy (ids ascending break ties).
std::pair<uint64_t, uint64_t> AnalystState::best_baselines() const {
  uint64_t by_loss = 0, by_recall = 0;
  double best_loss = INFINITY, best_accuracy = -INFINITY;
  for (const auto& [id, result] : baseline_verify_) {
    if (!result) continue;
    if (result->loss < best_loss) best_loss = result->loss, by_loss = id;
    if (result->accuracy > best_accuracy) best_accuracy = result->accuracy, by_recall = id;
  }
  return {by_loss, by_recall};
}

// A verified architecture's selection seeds against the best baselines' (screening). Baselines
// get their verify result here, with their seeds as evidence; a candidate that passes is
// replicated before it is judged (finish_replications).
void AnalystState::judge_verify(const Measured& judged_without_llm, msg::OutboxWriter& out) {
  Measured m = judged_without_llm;
  if (auto judge = llm_judges_.find(m.arch_id); judge != llm_judges_.end()) m.llm_judge = judge->second;
  Judgment judgment{m, {}, {}, 0, 0, 0};
  if (m.baseline) return send_verify_update(judgment, out);
  const auto [by_loss, by_recall] = best_baselines();
  judgment.verified = ++verified_;
  judgment.loss_baseline = by_loss;
  judgment.recall_baseline = by_recall;
  judgment.screening = stats::compare_to_baselines(seeds_of(m.arch_id, false), seeds_of(by_loss, false), seeds_of(by_recall, false),
                                                   rule_.alpha, rule_);
  if (!judgment.screening || !judgment.screening->passed()) return send_verify_update(judgment, out);
  const uint32_t fresh = settings_.replication_seeds;
  for (uint64_t id : {m.arch_id, by_loss, by_recall}) {
    if (!replication_asked_.insert(id).second) continue;
    auto promotion = out.send(actor_name::kEngineer).initPromotion();
    promotion.setArchId(id);
    promotion.setFirstReplicate(settings_.verify_seeds);
    promotion.setReplicates(fresh);
  }
  awaiting_replication_.emplace(m.arch_id, std::move(judgment));
}

// Judges every candidate whose replication seeds, and its comparators', are all in.
void AnalystState::finish_replications(msg::OutboxWriter& out) {
  const uint32_t fresh = settings_.replication_seeds;
  auto complete = [&](uint64_t id) {
    auto found = verify_seeds_.find(id);
    return found != verify_seeds_.end() && found->second.replication.size() >= fresh;
  };
  for (auto it = awaiting_replication_.begin(); it != awaiting_replication_.end();) {
    Judgment& j = it->second;
    if (!complete(j.measured.arch_id) || !complete(j.loss_baseline) || !complete(j.recall_baseline)) {
      ++it;
      continue;
    }
    // A failed replication seed of the candidate is a failed replication: it is not confirmed.
    const bool failed = verify_seeds_.at(j.measured.arch_id).failure.failed();
    j.replication = stats::compare_to_baselines(seeds_of(j.measured.arch_id, true), seeds_of(j.loss_baseline, true),
                                                seeds_of(j.recall_baseline, true), stats::replication_level(rule_, j.verified), rule_);
    if (failed && j.replication) j.replication->loss_better = false;
    send_verify_update(j, out);
    it = awaiting_replication_.erase(it);
  }
}

void AnalystState::send_verify_update(const Judgment& j, msg::OutboxWriter& out) {
  const Measured& m = j.measured;
  const bool screened = j.screening && j.screening->passed();
  const bool breakthrough = screened && j.replication && j.replication->passed();
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
  update.setRepairOf(m.repair_of);
  auto evidence = update.initEvidence();
  evidence.setVerdict(m.baseline || !j.screening ? msg::Verdict::NONE
                      : !screened                ? msg::Verdict::NOT_BETTER
                      : breakthrough             ? msg::Verdict::CONFIRMED
                                                 : msg::Verdict::NOT_CONFIRMED);
  evidence.setLossBaseline(j.loss_baseline);
  evidence.setRecallBaseline(j.recall_baseline);
  evidence.setVerified(j.verified);
  evidence.setSeeds(settings_.verify_seeds);
  const stats::Seeds own = seeds_of(m.arch_id, false);
  set_seed_stats(evidence.initScreening().initLoss(), stats::summarize(own.loss));
  set_seed_stats(evidence.getScreening().initAccuracy(), stats::summarize(own.accuracy));
  if (j.screening) set_test(evidence.getScreening(), *j.screening);
  if (j.replication) set_test(evidence.initReplication(), *j.replication);
  Measured best = *reference_[1];
  const auto [by_loss, by_recall] = best_baselines();
  if (by_loss != 0) best.loss = baseline_verify_.at(by_loss)->loss;
  if (by_recall != 0) best.accuracy = baseline_verify_.at(by_recall)->accuracy;
  update.setDiagnosis(diagnose(m, best) + (m.baseline ? "" : "; " + verdict_text(j)));
  if (!breakthrough) return;
  auto insight = out.send(actor_name::kCognition).initInsight();
  insight.setInsightId(next_insight_id_++);
  insight.setArchId(m.arch_id);
  insight.setText("arch " + std::to_string(m.arch_id) + ", made by " + m.operator_name +
                  ", beat the best baselines at verify scale on fresh seeds: " + verdict_text(j));
  if (m.operator_name != "baseline") insight.initRewrites(1).set(0, m.operator_name);
  const auto explore = explore_outcomes_.find(m.arch_id);
  if (settings_.analyst.max_ablations > 0 && explore != explore_outcomes_.end() && explore->second.measured) {
    ablations_[m.arch_id] = Ablation{*explore->second.measured, std::nullopt, {}};
    out.send(actor_name::kEngineer).initAblationRequest().setArchId(m.arch_id);
  }
}

// The judgment in words: what the researcher and the lineage read.
std::string AnalystState::verdict_text(const Judgment& j) {
  auto stage = [](const char* name, const stats::Comparison& c) {
    return std::string(name) + " loss " + fixed(c.loss.mean, 4) + " vs " + fixed(c.baseline_loss.mean, 4) + " (difference 95% CI [" +
           fixed(c.loss_difference.low, 4) + ", " + fixed(c.loss_difference.high, 4) + "], p " + fixed(c.p_loss, 4) + " at level " +
           fixed(c.level, 4) + "), recall " + fixed(c.accuracy.mean, 3) + " vs " + fixed(c.baseline_accuracy.mean, 3) +
           " (lower bound " + fixed(c.recall_bound, 3) + ")";
  };
  if (!j.screening) return "too few seeds to compare";
  std::string text = stage("seeds", *j.screening);
  if (!j.screening->passed()) return "not better than the best baselines: " + text;
  text += "; " + (j.replication ? stage("fresh seeds", *j.replication) : std::string("replication failed to train"));
  return (j.replication && j.replication->passed() ? "confirmed: " : "not confirmed on fresh seeds: ") + text;
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
