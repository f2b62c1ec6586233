#include "storage/lineage.h"

#include <algorithm>
#include <limits>
#include <set>
#include <tuple>

#include "messages/codec.h"

namespace asiarch::storage {
namespace {


// Decodes one stored record; a record that does not decode is a damaged store.
template <typename T, typename Visit>
void decode(const RunStore& store, const char* table, std::string_view bytes, Visit&& visit) {
  try {
    msg::CanonicalView<T> view(bytes);
    visit(view.root());
  } catch (const kj::Exception& e) {
    throw StorageError(store.dir().string() + ": a record of table " + table + " does not decode (" + e.getDescription().cStr() +
                       "); `asiarch check` reports on the log");
  }
}

EvidenceStage stage_of(msg::EvidenceTest::Reader test) {
  EvidenceStage stage;
  stage.seeds = test.getLoss().getN();
  stage.loss_mean = test.getLoss().getMean();
  stage.loss_sd = test.getLoss().getSd();
  stage.accuracy_mean = test.getAccuracy().getMean();
  stage.accuracy_sd = test.getAccuracy().getSd();
  stage.baseline_loss_mean = test.getBaselineLoss().getMean();
  stage.baseline_accuracy_mean = test.getBaselineAccuracy().getMean();
  stage.loss_low = test.getLossLow();
  stage.loss_high = test.getLossHigh();
  stage.accuracy_low = test.getAccuracyLow();
  stage.accuracy_high = test.getAccuracyHigh();
  stage.p_loss = test.getPLoss();
  stage.level = test.getLevel();
  stage.recall_bound = test.getRecallBound();
  stage.passed = test.getPassed();
  return stage;
}

Evidence evidence_of(msg::Evidence::Reader record) {
  Evidence evidence;
  switch (record.getVerdict()) {
    case msg::Verdict::NONE: break;
    case msg::Verdict::NOT_BETTER: evidence.verdict = "not better"; break;
    case msg::Verdict::NOT_CONFIRMED: evidence.verdict = "not confirmed"; break;
    case msg::Verdict::CONFIRMED: evidence.verdict = "confirmed"; break;
  }
  evidence.loss_baseline = record.getLossBaseline();
  evidence.recall_baseline = record.getRecallBaseline();
  evidence.verified = record.getVerified();
  evidence.seeds = record.getSeeds();
  evidence.screening = stage_of(record.getScreening());
  if (record.hasReplication()) evidence.replication = stage_of(record.getReplication());
  return evidence;
}

// The events that make the judgments, with what read_judgments needs of each.
struct LoggedEvent {
  enum class Kind { Result, Update, Stop } kind;
  uint64_t vtime_ns, seq, arch_id;
  msg::Fidelity fidelity;
  bool ok, baseline, breakthrough;
  double gpu_hours, tokens_per_second, fitness, loss, accuracy;
  bool ablation = false;  // a result of an ablation job: not an experiment of the budget
};

std::vector<LoggedEvent> read_logged_events(const RunStore& store) {
  std::vector<LoggedEvent> events;
  store.for_each_event([&](uint64_t seq, std::string_view bytes) {
    decode<msg::Event>(store, "events", bytes, [&](msg::Event::Reader event) {
      auto payload = event.getPayload();
      LoggedEvent e{LoggedEvent::Kind::Stop, event.getVtimeNs(), seq, 0, msg::Fidelity::EXPLORE, false, false, false, 0, 0, 0, 0, 0};
      if (payload.which() == msg::Payload::TRAIN_RESULT) {
        auto r = payload.getTrainResult();
        e.kind = LoggedEvent::Kind::Result;
        e.arch_id = r.getRef().getArchId();
        e.fidelity = r.getRef().getFidelity();
        e.baseline = r.getRef().getBaseline();
        e.gpu_hours = r.getGpuHours();
        e.tokens_per_second = r.getTokensPerSecond();
        e.ablation = r.getRef().getAblationOf() != 0;
      } else if (payload.which() == msg::Payload::POOL_UPDATE) {
        auto u = payload.getPoolUpdate();
        if (u.getOutcome() == msg::Outcome::REJECTED) return;
        e.kind = LoggedEvent::Kind::Update;
        e.arch_id = u.getArchId();
        e.fidelity = u.getFidelity();
        e.ok = u.getOutcome() == msg::Outcome::SCORED;
        e.breakthrough = u.getBreakthrough();
        e.fitness = u.getFitness();
        e.loss = u.getLoss();
        e.accuracy = u.getAccuracy();
      } else if (payload.which() != msg::Payload::STOP) {
        return;
      }
      events.push_back(e);
    });
  });
  return events;
}

}  // namespace


std::vector<Judgment> read_judgments(const RunStore& store) {
  std::vector<LoggedEvent> events = read_logged_events(store);
  const auto order = [](const LoggedEvent& e) { return std::make_tuple(e.vtime_ns, e.seq); };
  std::sort(events.begin(), events.end(), [&](const LoggedEvent& a, const LoggedEvent& b) { return order(a) < order(b); });
  // Delivery ends at the stop. A campaign still running has no stop yet: the analyst judges a
  // result when it is delivered, so its latest judgment is the present, and results timed later
  // are still in flight.
  auto end = std::find_if(events.begin(), events.end(), [](const LoggedEvent& e) { return e.kind == LoggedEvent::Kind::Stop; });
  if (end == events.end()) {
    const auto latest = std::find_if(events.rbegin(), events.rend(), [](const LoggedEvent& e) { return e.kind == LoggedEvent::Kind::Update; });
    const uint64_t now = latest == events.rend() ? 0 : latest->vtime_ns;
    end = std::find_if(events.begin(), events.end(), [now](const LoggedEvent& e) { return e.vtime_ns > now; });
  }

  std::map<std::pair<uint64_t, msg::Fidelity>, const LoggedEvent*> results;
  std::vector<Judgment> judgments;
  Judgment totals;
  for (auto it = events.begin(); it != end; ++it) {
    const LoggedEvent& e = *it;
    if (e.kind == LoggedEvent::Kind::Result) {
      totals.gpu_hours += e.gpu_hours;
      if (e.fidelity == msg::Fidelity::EXPLORE && !e.ablation) ++totals.experiments;
      results[{e.arch_id, e.fidelity}] = &e;
      continue;
    }
    Judgment j = totals;
    j.vtime_ns = e.vtime_ns;
    j.arch_id = e.arch_id;
    j.fidelity = e.fidelity;
    j.scored = e.ok;
    j.fitness = e.fitness;
    j.loss = e.loss;
    j.accuracy = e.accuracy;
    j.breakthrough = e.breakthrough;
    if (e.breakthrough) ++totals.breakthroughs;
    j.breakthroughs = totals.breakthroughs;
    if (const auto result = results.find({e.arch_id, e.fidelity}); result != results.end()) {
      j.tokens_per_second = result->second->tokens_per_second;
      j.baseline = result->second->baseline;
    }
    judgments.push_back(j);
  }
  return judgments;
}

const ArchOutcome* ArchEntry::best_scored() const {
  if (verified()) return &*verify;
  if (explore && explore->scored()) return &*explore;
  return nullptr;
}

Lineage::Lineage(const RunStore& store) {
  store.for_each_arch([&](uint64_t id, std::string_view bytes) {
    decode<msg::ArchRecord>(store, "archs", bytes, [&](msg::ArchRecord::Reader record) {
      ArchEntry& entry = archs_[id];
      entry.id = id;
      for (uint64_t parent : record.getParentIds()) entry.parent_ids.push_back(parent);
      entry.program = record.getProgram();
      entry.operator_name = record.getOperator();
      entry.motivation = record.getMotivation();
      entry.vtime_ns = record.getVtimeNs();
    });
  });
  store.for_each_result([&](uint64_t id, uint8_t fidelity, std::string_view bytes) {
    const auto entry = archs_.find(id);
    if (entry == archs_.end()) return;
    decode<msg::ResultRecord>(store, "results", bytes, [&](msg::ResultRecord::Reader record) {
      ArchOutcome outcome;
      // Trained results are "pending" until their judgment is found below; an ablation's result
      // is never judged as a candidate: it is "ablation" (trained) or "failed".
      // A failed training stays failed when no judgment follows (the engineer repaired it instead).
      outcome.outcome = record.getOutcome() == msg::Outcome::REJECTED ? "rejected" : record.getOutcome() == msg::Outcome::FAILED ? "failed" : "pending";
      if (entry->second.ablation()) outcome.outcome = record.getOutcome() == msg::Outcome::FAILED ? "failed" : "ablation";
      outcome.reason = record.getReason();
      outcome.loss = record.getLoss();
      outcome.accuracy = record.getAccuracy();
      outcome.gpu_hours = record.getGpuHours();
      outcome.fitness = record.getFitness();
      outcome.breakthrough = record.getBreakthrough();
      outcome.vtime_ns = record.getVtimeNs();
      for (auto seed : record.getSeeds()) outcome.seeds.push_back({seed.getReplicate(), seed.getOk(), seed.getLoss(), seed.getAccuracy()});
      if (record.hasEvidence()) outcome.evidence = evidence_of(record.getEvidence());
      (fidelity == 1 ? entry->second.verify : entry->second.explore) = outcome;
    });
  });
  judgments_ = read_judgments(store);
  for (const Judgment& j : judgments_) {
    const auto entry = archs_.find(j.arch_id);
    if (entry == archs_.end()) continue;
    auto& outcome = j.fidelity == msg::Fidelity::VERIFY ? entry->second.verify : entry->second.explore;
    if (!outcome) continue;
    outcome->outcome = j.scored ? "scored" : "failed";
    outcome->tokens_per_second = j.tokens_per_second;
  }
}

const ArchEntry* Lineage::find(uint64_t id) const {
  const auto it = archs_.find(id);
  return it == archs_.end() ? nullptr : &it->second;
}

std::vector<uint64_t> Lineage::ancestry(uint64_t id) const {
  if (!find(id)) return {};
  std::set<uint64_t> seen{id};
  std::vector<uint64_t> pending{id};
  while (!pending.empty()) {
    const ArchEntry* entry = find(pending.back());
    pending.pop_back();
    if (!entry) continue;
    for (uint64_t parent : entry->parent_ids) {
      if (seen.insert(parent).second) pending.push_back(parent);
    }
  }
  return {seen.begin(), seen.end()};
}

std::vector<const ArchEntry*> Lineage::ranking() const {
  std::vector<const ArchEntry*> ranked;
  for (const auto& [id, entry] : archs_) {
    if (entry.best_scored()) ranked.push_back(&entry);
  }
  const auto key = [](const ArchEntry* e) { return std::make_tuple(e->verified(), e->best_scored()->fitness); };
  std::stable_sort(ranked.begin(), ranked.end(), [&](const ArchEntry* a, const ArchEntry* b) { return key(a) > key(b); });
  return ranked;
}

std::optional<double> Lineage::fitness_change(uint64_t id) const {
  const ArchEntry* entry = find(id);
  if (!entry || !entry->explore || !entry->explore->scored()) return std::nullopt;
  std::optional<double> best_parent;
  for (uint64_t parent_id : entry->parent_ids) {
    const ArchEntry* parent = find(parent_id);
    if (parent && parent->explore && parent->explore->scored()) {
      best_parent = std::max(best_parent.value_or(-std::numeric_limits<double>::infinity()), parent->explore->fitness);
    }
  }
  if (!best_parent) return std::nullopt;
  return entry->explore->fitness - *best_parent;
}

}  // namespace asiarch::storage
