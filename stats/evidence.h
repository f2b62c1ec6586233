#pragma once
// The rule that turns trained seeds into a breakthrough (README, "Breakthroughs with evidence").
//
// A verified candidate is compared with the best baselines at the verify fidelity, seeds against
// seeds, by Welch's test (stats.h):
//   - loss: its mean held-out loss must be lower than that of the baseline with the lowest mean
//     loss, with a one-sided p-value below the level of the stage;
//   - recall: its mean MQAR accuracy may fall short of the baseline with the highest mean
//     accuracy by at most `recall_margin`: the one-sided (1 - alpha) lower bound of the
//     difference must lie above -recall_margin (non-inferiority).
// Screening uses the candidate's first `seeds` verify seeds at level alpha. A candidate that
// passes is replicated: trained again on `replication_seeds` fresh seeds, which took no part in
// selecting it, and compared with fresh seeds of the same baselines at level alpha / m, where m
// is the number of candidates the campaign has verified so far (it included). It is confirmed
// only when the replication passes too.
//
// Why this controls false discoveries: for a candidate no better than the best baseline, screening
// passes with probability at most alpha, and the independent replication with at most alpha / m,
// so it is confirmed with probability at most alpha^2 / m; over a whole campaign of M verified
// candidates the chance of any false confirmation is at most alpha^2 * (1 + 1/2 + ... + 1/M),
// below alpha for any campaign of fewer than 10^8 verified candidates at alpha = 0.05. Holm's
// step-down needs every p-value at once and would withdraw confirmations as later candidates
// arrive, which a campaign that rewards its researcher online cannot do; the running count m
// (an online Bonferroni) never withdraws one. The rate is measured, not only bounded:
// null_false_positive_rate below, in tests/test_stats.cpp and the README.
#include <cstdint>
#include <optional>
#include <vector>

#include "common/rng.h"
#include "stats/stats.h"

namespace asiarch::stats {

struct EvidenceRule {
  double alpha = 0.05;
  double recall_margin = 0.05;
};

// Per-seed results of one program at one fidelity.
struct Seeds {
  std::vector<double> loss;
  std::vector<double> accuracy;
};

struct Comparison {
  Summary loss, accuracy;                // the candidate's
  Summary baseline_loss, baseline_accuracy;  // the comparators' (best loss, best recall)
  Difference loss_difference;            // candidate - baseline, with its 95% interval
  Difference accuracy_difference;
  double p_loss = 1;        // one-sided: how likely a loss this much lower is without a real gain
  double level = 0;         // the level p_loss was tested at
  double recall_bound = 0;  // one-sided (1 - alpha) lower bound of the accuracy difference
  bool loss_better = false;
  bool recall_not_worse = false;
  bool passed() const { return loss_better && recall_not_worse; }
};

// nullopt when a side has fewer than 2 seeds.
std::optional<Comparison> compare_to_baselines(const Seeds& candidate, const Seeds& best_loss_baseline,
                                               const Seeds& best_recall_baseline, double level, const EvidenceRule& rule);

// The level of a replication: alpha / (candidates verified so far).
double replication_level(const EvidenceRule& rule, uint64_t verified);

// How one seed of a small model scatters around what the program can do (measured with
// `asiarch bench noise`): the loss is normal around its mean; MQAR accuracy is near the program's
// capacity, except in runs that stay on the plateau, which end far below it.
struct SeedNoise {
  double loss_sd = 0.013;        // absolute, in the loss's unit
  double accuracy_sd = 0.01;     // spread of runs that leave the plateau
  double plateau_rate = 0.0;     // share of runs that do not leave it
  double plateau_low = 0.1, plateau_high = 0.45;  // where those end (uniform)
};

// One seed's MQAR accuracy for a program whose runs that leave the plateau reach `capacity`.
double draw_accuracy(Rng& rng, const SeedNoise& noise, double capacity);

// The counts of a null experiment: every candidate has the same true loss and recall as the
// best baseline, and seeds scatter as `noise` says.
struct FalsePositiveRate {
  uint64_t campaigns = 0;
  uint64_t candidates = 0;            // compared, over all campaigns
  uint64_t screened = 0;              // passed screening
  uint64_t confirmed = 0;             // passed replication too: false breakthroughs
  uint64_t campaigns_with_false = 0;  // campaigns with at least one false breakthrough
  uint64_t single_seed_false = 0;     // what the single-seed rule ("beats the best baseline on
                                      // both loss and recall, one seed each") declared
  double per_candidate() const { return candidates ? static_cast<double>(confirmed) / static_cast<double>(candidates) : 0; }
  double per_campaign() const { return campaigns ? static_cast<double>(campaigns_with_false) / static_cast<double>(campaigns) : 0; }
  double single_seed_per_candidate() const {
    return candidates ? static_cast<double>(single_seed_false) / static_cast<double>(candidates) : 0;
  }
};

// Simulates `campaigns` campaigns that each verify `candidates` null candidates against one
// baseline (seeded, so the figures repeat).
FalsePositiveRate null_false_positive_rate(const SeedNoise& noise, double true_loss, double true_accuracy, uint32_t seeds,
                                           uint32_t replication_seeds, uint32_t candidates, uint64_t campaigns,
                                           const EvidenceRule& rule, uint64_t seed);

}  // namespace asiarch::stats
