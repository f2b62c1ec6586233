// asiarch bench sim: whole-system throughput of a simulated campaign, with and without the log.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "actors/campaign.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

struct BenchArgs {
  std::string scenario = "scenarios/paper-scale.toml";
  int repeat = 3;
};

template <typename F>
double best_seconds(int repeat, F&& body) {
  double best = 1e300;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

int bench_sim(const BenchArgs& args) {
  const std::optional<Scenario> loaded = load_scenario_or_report(args.scenario);
  if (!loaded) return 2;
  const Scenario& scenario = *loaded;
  spdlog::info("benchmarking {} ({} experiments), best of {} runs per variant", scenario.name, scenario.max_experiments, args.repeat);
  CampaignSummary summary;
  // The reference, measured in the same process: the same campaign with no log at all.
  const double no_log = best_seconds(args.repeat, [&] { summary = simulate_campaign(scenario, scenario.seed, LogMode::None); });
  const double chain = best_seconds(args.repeat, [&] { simulate_campaign(scenario, scenario.seed, LogMode::ChainOnly); });
  const auto dir = std::filesystem::temp_directory_path() / ("asiarch-bench-" + std::to_string(::getpid()));
  const double full = best_seconds(args.repeat, [&] {
    std::filesystem::remove_all(dir);
    run_campaign(scenario, scenario.seed, dir);
  });
  std::filesystem::remove_all(dir);

  const double experiments = static_cast<double>(summary.experiments);
  std::printf("scenario: %s, %s experiments, %s events, %u breakthroughs\n", scenario.name.c_str(), grouped(summary.experiments).c_str(),
              grouped(summary.events).c_str(), summary.breakthroughs);
  std::printf("%-34s %9s %16s %10s\n", "variant", "seconds", "experiments/s", "vs no log");
  auto row = [&](const char* name, double seconds) {
    std::printf("%-34s %9.3f %16s %9.2fx\n", name, seconds, grouped(experiments / seconds, 0).c_str(), seconds / no_log);
  };
  row("no log (reference)", no_log);
  row("hash chain in memory", chain);
  row("LMDB event log + chain + lineage", full);
  std::printf("share of time spent logging: %.1f%%\n", 100.0 * (full - no_log) / full);
  return 0;
}

}  // namespace

void add_bench_commands(CLI::App& app, int& exit_code) {
  auto* bench = app.add_subcommand("bench", "Whole-system benchmarks (ratios against a reference measured in the same run)");
  bench->require_subcommand(1);
  auto args = std::make_shared<BenchArgs>();
  auto* sim = bench->add_subcommand("sim", "Simulated experiments per second, and the share of time spent in the event log");
  sim->add_option("--scenario", args->scenario, "Scenario to run")->capture_default_str();
  sim->add_option("--repeat", args->repeat, "Runs per variant; the best is reported")->check(CLI::PositiveNumber)->capture_default_str();
  sim->callback([args, &exit_code] { exit_code = bench_sim(*args); });
}

}  // namespace asiarch::tools
