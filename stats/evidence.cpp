#include "stats/evidence.h"

#include <algorithm>

#include "common/rng.h"

namespace asiarch::stats {

std::optional<Comparison> compare_to_baselines(const Seeds& candidate, const Seeds& best_loss_baseline,
                                               const Seeds& best_recall_baseline, double level, const EvidenceRule& rule) {
  Comparison c;
  c.loss = summarize(candidate.loss);
  c.accuracy = summarize(candidate.accuracy);
  c.baseline_loss = summarize(best_loss_baseline.loss);
  c.baseline_accuracy = summarize(best_recall_baseline.accuracy);
  const auto loss = welch(c.loss, c.baseline_loss);
  const auto accuracy = welch(c.accuracy, c.baseline_accuracy);
  if (!loss || !accuracy) return std::nullopt;
  c.loss_difference = *loss;
  c.accuracy_difference = *accuracy;
  c.p_loss = loss->p_below();
  c.level = level;
  c.recall_bound = accuracy->lower_bound(rule.alpha);
  c.loss_better = c.p_loss < level;
  c.recall_not_worse = c.recall_bound > -rule.recall_margin;
  return c;
}

double replication_level(const EvidenceRule& rule, uint64_t verified) { return rule.alpha / static_cast<double>(std::max<uint64_t>(1, verified)); }

namespace {

std::vector<double> draw_losses(Rng& rng, const SeedNoise& noise, double mean, uint32_t n) {
  std::vector<double> values;
  for (uint32_t i = 0; i < n; ++i) values.push_back(mean + noise.loss_sd * rng.normal());
  return values;
}

std::vector<double> draw_accuracies(Rng& rng, const SeedNoise& noise, double capacity, uint32_t n) {
  std::vector<double> values;
  for (uint32_t i = 0; i < n; ++i) values.push_back(draw_accuracy(rng, noise, capacity));
  return values;
}

Seeds draw_seeds(Rng& rng, const SeedNoise& noise, double loss, double accuracy, uint32_t n) {
  Seeds seeds;
  seeds.loss = draw_losses(rng, noise, loss, n);
  seeds.accuracy = draw_accuracies(rng, noise, accuracy, n);
  return seeds;
}

}  // namespace

double draw_accuracy(Rng& rng, const SeedNoise& noise, double capacity) {
  if (rng.chance(noise.plateau_rate)) return noise.plateau_low + (noise.plateau_high - noise.plateau_low) * rng.uniform();
  return std::clamp(capacity + noise.accuracy_sd * rng.normal(), 0.0, 1.0);
}

FalsePositiveRate null_false_positive_rate(const SeedNoise& noise, double true_loss, double true_accuracy, uint32_t seeds,
                                           uint32_t replication_seeds, uint32_t candidates, uint64_t campaigns,
                                           const EvidenceRule& rule, uint64_t seed) {
  FalsePositiveRate rate;
  for (uint64_t campaign = 0; campaign < campaigns; ++campaign) {
    Rng rng(seed, "null campaign", campaign);
    const Seeds baseline = draw_seeds(rng, noise, true_loss, true_accuracy, seeds);
    std::optional<Seeds> baseline_replication;  // drawn when the first candidate needs it, as a campaign does
    bool any_false = false;
    for (uint32_t verified = 1; verified <= candidates; ++verified) {
      ++rate.candidates;
      const Seeds candidate = draw_seeds(rng, noise, true_loss, true_accuracy, seeds);
      if (candidate.loss[0] < baseline.loss[0] && candidate.accuracy[0] > baseline.accuracy[0]) ++rate.single_seed_false;
      const auto screen = compare_to_baselines(candidate, baseline, baseline, rule.alpha, rule);
      if (!screen || !screen->passed()) continue;
      ++rate.screened;
      if (!baseline_replication) baseline_replication = draw_seeds(rng, noise, true_loss, true_accuracy, replication_seeds);
      const Seeds fresh = draw_seeds(rng, noise, true_loss, true_accuracy, replication_seeds);
      const auto replication = compare_to_baselines(fresh, *baseline_replication, *baseline_replication, replication_level(rule, verified), rule);
      if (!replication || !replication->passed()) continue;
      ++rate.confirmed;
      any_false = true;
    }
    ++rate.campaigns;
    if (any_false) ++rate.campaigns_with_false;
  }
  return rate;
}

}  // namespace asiarch::stats
