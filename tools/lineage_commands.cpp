// asiarch lineage | top: an architecture's ancestry, and the best architectures of a run. Both
// read a read-only store, so they work while the campaign is still running.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "lang/program.h"
#include "stats/stats.h"
#include "storage/lineage.h"
#include "tools/commands.h"

namespace asiarch::tools {

// The seeds a verify result's mean is over: the selection seeds (replicates are numbered after
// them); every seed when the result was not judged with evidence.
static bool selection_seed(const storage::ArchOutcome& o, const storage::SeedRun& seed) {
  return !o.evidence || o.evidence->seeds == 0 || seed.replicate < o.evidence->seeds;
}

std::string interval_text(const storage::ArchOutcome& o, bool loss, int decimals) {
  std::vector<double> values;
  for (const auto& seed : o.seeds) {
    if (seed.ok && selection_seed(o, seed)) values.push_back(loss ? seed.loss : seed.accuracy);
  }
  if (values.empty()) return fixed(loss ? o.loss : o.accuracy, decimals);
  const stats::Summary s = stats::summarize(values);
  if (s.n < 2) return fixed(s.mean, decimals);
  const double half = stats::student_t_quantile(0.975, static_cast<double>(s.n - 1)) * s.sd / std::sqrt(static_cast<double>(s.n));
  return fixed(s.mean, decimals) + " ±" + fixed(half, decimals);
}

std::string seeds_text(const storage::ArchOutcome& o) {
  size_t selection = 0;
  for (const auto& seed : o.seeds) selection += selection_seed(o, seed) ? 1 : 0;
  const size_t replication = o.seeds.size() - selection;
  return std::to_string(std::max<size_t>(selection, 1)) + (replication ? "+" + std::to_string(replication) : "");
}

std::string verdict_text(const storage::ArchOutcome& o) {
  if (o.evidence && !o.evidence->verdict.empty()) return o.evidence->verdict;
  return o.breakthrough ? "yes" : "";
}

namespace {

std::string signed_fixed(double value, int decimals) { return (value >= 0 ? "+" : "") + fixed(value, decimals); }

std::string parent_list(const storage::ArchEntry& entry) {
  std::string out;
  for (uint64_t parent : entry.parent_ids) out += (out.empty() ? "#" : ", #") + std::to_string(parent);
  return out;
}

std::string stage_text(const char* name, const storage::EvidenceStage& s) {
  return std::string(name) + ": " + std::to_string(s.seeds) + " seeds, loss " + fixed(s.loss_mean, 4) + " (sd " + fixed(s.loss_sd, 4) +
         ") vs " + fixed(s.baseline_loss_mean, 4) + ", difference 95% CI [" + signed_fixed(s.loss_low, 4) + ", " + signed_fixed(s.loss_high, 4) +
         "], p " + fixed(s.p_loss, 4) + " (level " + fixed(s.level, 4) + "); recall " + fixed(s.accuracy_mean, 3) + " vs " +
         fixed(s.baseline_accuracy_mean, 3) + ", lower bound " + signed_fixed(s.recall_bound, 3) + (s.passed ? ": passed" : ": failed");
}

std::string outcome_text(const storage::Lineage& lineage, const std::optional<storage::ArchOutcome>& outcome) {
  if (!outcome) return "not trained";
  if (!outcome->scored()) return outcome->outcome + (outcome->reason.empty() ? "" : " (" + outcome->reason + ")");
  std::string text = "fitness " + fixed(outcome->fitness, 4) + ", loss " + interval_text(*outcome, true, 4) + ", accuracy " +
                     interval_text(*outcome, false, 3) + (outcome->breakthrough ? ", BREAKTHROUGH" : "");
  if (!outcome->evidence || outcome->evidence->verdict.empty()) return text;
  const storage::Evidence& e = *outcome->evidence;
  auto name = [&](uint64_t id) { const auto* entry = lineage.find(id); return entry ? arch_label(*entry) : "arch " + std::to_string(id); };
  text += "\n  verdict: " + e.verdict + " (against " + name(e.loss_baseline) + " on loss, " + name(e.recall_baseline) +
          " on recall; candidate " + std::to_string(e.verified) + " verified)\n    " + stage_text("screening", e.screening);
  if (e.replication) text += "\n    " + stage_text("replication on fresh seeds", *e.replication);
  return text;
}

int lineage(const std::string& dir, uint64_t id) {
  try {
    const auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
    const storage::Lineage lineage(*store);
    if (!lineage.find(id)) {
      std::cerr << dir << " has no architecture " << id
                << (lineage.archs().empty() ? " (it has none yet)"
                                            : "; its ids run from " + std::to_string(lineage.archs().begin()->first) + " to " +
                                                  std::to_string(lineage.archs().rbegin()->first))
                << "; `asiarch top " << dir << "` lists the best" << std::endl;
      return 2;
    }
    const std::vector<uint64_t> ancestry = lineage.ancestry(id);
    std::cout << "ancestry of " << arch_label(*lineage.find(id)) << ": " << ancestry.size() - 1 << " ancestor(s), oldest first\n";
    for (uint64_t step_id : ancestry) {
      const storage::ArchEntry& step = *lineage.find(step_id);
      std::cout << "\n#" << step.id << "  " << arch_label(step);
      if (step.baseline()) std::cout << "  (start program)";
      else std::cout << "  <- " << parent_list(step) << " by " << step.operator_name;
      if (const auto change = lineage.fitness_change(step.id)) std::cout << "  explore fitness " << signed_fixed(*change, 4) << " over its parent";
      std::cout << "\n  explore: " << outcome_text(lineage, step.explore) << "\n";
      if (step.verify) std::cout << "  verify:  " << outcome_text(lineage, step.verify) << "\n";
      std::cout << "  motivation: " << step.motivation << "\n";
    }
    std::cout.flush();
    return 0;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
}

int top(const std::string& dir, size_t n, bool json) {
  try {
    const auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
    const storage::Lineage lineage(*store);
    std::vector<const storage::ArchEntry*> ranked = lineage.ranking();
    if (ranked.size() > n) ranked.resize(n);
    if (json) {
      std::cout << "[";
      for (size_t i = 0; i < ranked.size(); ++i) {
        const storage::ArchEntry& e = *ranked[i];
        const storage::ArchOutcome& o = *e.best_scored();
        std::cout << (i > 0 ? ",\n " : "\n ") << "{\"rank\": " << i + 1 << ", \"id\": " << e.id << ", \"name\": " << json_string(arch_label(e))
                  << ", \"fidelity\": \"" << (e.verified() ? "verify" : "explore") << "\", \"fitness\": " << fixed(o.fitness, 6)
                  << ", \"loss\": " << fixed(o.loss, 6) << ", \"accuracy\": " << fixed(o.accuracy, 6)
                  << ", \"operator\": " << json_string(e.operator_name) << ", \"parents\": [";
        for (size_t p = 0; p < e.parent_ids.size(); ++p) std::cout << (p > 0 ? ", " : "") << e.parent_ids[p];
        std::cout << "], \"breakthrough\": " << (o.breakthrough ? "true" : "false") << "}";
      }
      std::cout << (ranked.empty() ? "]" : "\n]") << std::endl;
      return 0;
    }
    print_top_table(lineage, n, false);
    return 0;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
}

}  // namespace

void print_top_table(const storage::Lineage& lineage, size_t n, bool with_baselines) {
  const std::vector<const storage::ArchEntry*> ranked = lineage.ranking();
  std::printf("%4s  %10s  %-20s %-8s %8s %16s %14s %5s  %-21s %s\n", "rank", "id", "name", "fidelity", "fitness", "loss (95% CI)",
              "recall (95% CI)", "seeds", "operator", "breakthrough");
  for (size_t i = 0; i < ranked.size(); ++i) {
    const storage::ArchEntry& e = *ranked[i];
    if (i >= n && !(with_baselines && e.baseline())) continue;
    const storage::ArchOutcome& o = *e.best_scored();
    std::printf("%4zu  %10llu  %-20s %-8s %8.4f %16s %14s %5s  %-21s %s\n", i + 1, static_cast<unsigned long long>(e.id), arch_label(e).c_str(),
                e.verified() ? "verify" : "explore", o.fitness, interval_text(o, true, 4).c_str(), interval_text(o, false, 3).c_str(),
                seeds_text(o).c_str(), e.operator_name.c_str(), verdict_text(o).c_str());
  }
  if (ranked.empty()) std::cout << "(no architecture has been scored yet)\n";
  std::cout.flush();
}

std::string fixed(double value, int decimals) { return std::isfinite(value) ? asiarch::fixed(value, decimals) : "n/a"; }

std::string arch_label(const storage::ArchEntry& entry) {
  if (entry.baseline()) {
    try {
      return lang::parse(entry.program).name;
    } catch (const std::exception&) {
      // A baseline whose text this build no longer parses is still shown, by id.
    }
  }
  return "arch " + std::to_string(entry.id);
}

void add_lineage_commands(CLI::App& app, int& exit_code) {
  struct LineageArgs {
    std::string dir;
    uint64_t id = 0;
  };
  auto lineage_args = std::make_shared<LineageArgs>();
  auto* lineage_cmd = app.add_subcommand(
      "lineage", "Print an architecture's ancestry back to the baselines: each step's operator, motivation and fitness change");
  lineage_cmd->add_option("dir", lineage_args->dir, "Run directory (may still be running)")->required();
  lineage_cmd->add_option("--arch", lineage_args->id, "Architecture id (`asiarch top DIR` lists the best)")->required();
  lineage_cmd->callback([lineage_args, &exit_code] { exit_code = lineage(lineage_args->dir, lineage_args->id); });

  struct TopArgs {
    std::string dir;
    size_t n = 10;
    bool json = false;
  };
  auto top_args = std::make_shared<TopArgs>();
  auto* top_cmd = app.add_subcommand(
      "top",
      "The best scored architectures: verified ones first by verify fitness, then the rest by explore fitness (the pool's order)");
  top_cmd->add_option("dir", top_args->dir, "Run directory (may still be running)")->required();
  top_cmd->add_option("-n", top_args->n, "How many to list")->check(CLI::PositiveNumber)->capture_default_str();
  top_cmd->add_flag("--json", top_args->json, "One JSON array of objects instead of a table");
  top_cmd->callback([top_args, &exit_code] { exit_code = top(top_args->dir, top_args->n, top_args->json); });
}

}  // namespace asiarch::tools
