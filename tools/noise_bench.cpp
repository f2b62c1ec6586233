// asiarch bench noise: how much one baseline's metrics move from seed to seed, and from that the
// smallest difference a campaign with its seed counts can tell from noise.
#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "training/training.h"
#include "stats/stats.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

// The seed counts of a campaign's verify stage and of its replication (scenario defaults).
constexpr size_t kVerifySeeds = 3, kReplicationSeeds = 5;
// A run below this MQAR accuracy has not left the plateau (its accuracy is near chance).
constexpr double kPlateauAccuracy = 0.5;

struct NoiseArgs {
  std::string fidelity = "both";
  uint32_t seeds = 5;
  std::string programs;  // comma-separated; empty: every baseline
  int jobs = 0;
  int threads = 1;
  std::optional<int64_t> steps;
  bool json = false;
};

// One program at one fidelity: its seeds' metrics on both tasks.
struct ProgramNoise {
  std::string program;
  bool verify = false;
  stats::Summary lm, mqar;
  size_t plateau_runs = 0, failed_runs = 0;
};

// sqrt of the mean variance over programs: the typical seed sd of one program.
double pooled_sd(const std::vector<ProgramNoise>& rows, bool verify, bool lm) {
  double sum = 0;
  size_t count = 0;
  for (const auto& row : rows) {
    const stats::Summary& s = lm ? row.lm : row.mqar;
    if (row.verify != verify || s.n < 2) continue;
    sum += s.sd * s.sd;
    ++count;
  }
  return count ? std::sqrt(sum / static_cast<double>(count)) : std::nan("");
}

std::vector<std::string> program_names(const std::string& list) {
  std::vector<std::string> names;
  if (list.empty()) {
    for (const auto& b : lang::baselines())
      if (!b.discovery) names.push_back(b.name);
    return names;
  }
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');)
    if (!name.empty()) names.push_back(name);
  return names;
}

int bench_noise(const NoiseArgs& args) {
  if (!std::filesystem::is_regular_file(training::kDefaultCorpus)) {
    std::cerr << "corpus '" << training::kDefaultCorpus << "' not found: install Debian's dict-gcide (apt-get install dict-gcide)" << std::endl;
    return 2;
  }
  std::vector<lang::Program> programs;
  for (const std::string& name : program_names(args.programs)) {
    try {
      const ProgramSource source = load_program(name);
      programs.push_back(lang::parse(source.text, source.file));
    } catch (const std::exception& e) {
      std::cerr << e.what() << std::endl;
      return 2;
    }
  }
  std::vector<bool> fidelities;
  if (args.fidelity != "verify") fidelities.push_back(false);
  if (args.fidelity != "explore") fidelities.push_back(true);
  const training::Task tasks[] = {training::Task::Lm, training::Task::Mqar};

  // Run order: fidelity, program, task, seed; results come back in the same order.
  std::vector<training::TrainRun> runs;
  for (bool verify : fidelities)
    for (const auto& program : programs)
      for (training::Task task : tasks)
        for (uint32_t seed = 1; seed <= args.seeds; ++seed) {
          training::TrainConfig config = verify ? training::verify_config(task) : training::explore_config(task);
          config.seed = seed;
          config.threads = args.threads;
          if (args.steps) set_steps(config, *args.steps);
          runs.push_back({program, config});
        }
  const int jobs = args.jobs > 0 ? args.jobs : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / args.threads);
  spdlog::info("bench noise: {} program(s) x {} task(s) x {} seed(s) at {}: {} run(s) on {} job(s)", programs.size(), 2, args.seeds,
               args.fidelity, runs.size(), jobs);
  size_t finished = 0;
  const auto results = training::train_programs(runs, jobs, [&](size_t index, const training::TrainMetrics& m) {
    const auto& run = runs[index];
    const bool lm = run.config.task == training::Task::Lm;
    spdlog::info("[{}/{}] {} {} seed {}: {} ({:.0f} s)", ++finished, runs.size(), run.program.name, lm ? "lm" : "mqar", run.config.seed,
                 m.ok ? fixed(lm ? m.bits_per_byte : m.accuracy, 4) : "failed: " + m.failure, m.seconds);
  });

  std::vector<ProgramNoise> rows;
  size_t next = 0;
  for (bool verify : fidelities)
    for (const auto& program : programs) {
      ProgramNoise row;
      row.program = program.name;
      row.verify = verify;
      for (training::Task task : tasks) {
        std::vector<double> values;
        for (uint32_t seed = 1; seed <= args.seeds; ++seed) {
          const auto& m = results[next++];
          if (!m.ok) {
            ++row.failed_runs;
            continue;
          }
          const bool lm = task == training::Task::Lm;
          values.push_back(lm ? m.bits_per_byte : m.accuracy);
          if (!lm && m.accuracy < kPlateauAccuracy) ++row.plateau_runs;
        }
        (task == training::Task::Lm ? row.lm : row.mqar) = stats::summarize(values);
      }
      rows.push_back(row);
    }

  if (args.json) {
    std::cout << "{\"seeds\": " << args.seeds << ", \"threads\": " << args.threads << ", \"plateau_accuracy\": " << kPlateauAccuracy
              << ", \"programs\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      std::cout << (i ? ", " : "") << "{\"program\": " << json_string(r.program) << ", \"fidelity\": \"" << (r.verify ? "verify" : "explore")
                << "\", \"lm_bpb_mean\": " << json_number(r.lm.mean) << ", \"lm_bpb_sd\": " << json_number(r.lm.sd)
                << ", \"mqar_mean\": " << json_number(r.mqar.mean) << ", \"mqar_sd\": " << json_number(r.mqar.sd)
                << ", \"plateau_runs\": " << r.plateau_runs << ", \"failed_runs\": " << r.failed_runs << "}";
    }
    std::cout << "], \"detectable\": [";
    for (size_t f = 0; f < fidelities.size(); ++f) {
      const double lm_sd = pooled_sd(rows, fidelities[f], true), mqar_sd = pooled_sd(rows, fidelities[f], false);
      std::cout << (f ? ", " : "") << "{\"fidelity\": \"" << (fidelities[f] ? "verify" : "explore") << "\", \"lm_pooled_sd\": " << json_number(lm_sd)
                << ", \"mqar_pooled_sd\": " << json_number(mqar_sd);
      for (size_t n : {kVerifySeeds, kReplicationSeeds})
        std::cout << ", \"lm_min_difference_" << n << "_seeds\": " << json_number(stats::minimum_detectable_difference(lm_sd, n))
                  << ", \"mqar_min_difference_" << n << "_seeds\": " << json_number(stats::minimum_detectable_difference(mqar_sd, n));
      std::cout << "}";
    }
    std::cout << "]}" << std::endl;
    return 0;
  }
  std::printf("seed noise, seeds 1-%u, %d thread(s) a run; plateau: MQAR accuracy below %.1f\n\n", args.seeds, args.threads, kPlateauAccuracy);
  std::printf("%-20s %-8s %12s %8s %12s %8s %8s\n", "program", "fidelity", "lm bpb mean", "sd", "mqar mean", "sd", "plateau");
  for (const auto& r : rows)
    std::printf("%-20s %-8s %12s %8s %12s %8s %5zu/%zu%s\n", r.program.c_str(), r.verify ? "verify" : "explore", fixed(r.lm.mean, 4).c_str(),
                fixed(r.lm.sd, 4).c_str(), fixed(r.mqar.mean, 3).c_str(), fixed(r.mqar.sd, 3).c_str(), r.plateau_runs, r.mqar.n,
                r.failed_runs ? (" (" + std::to_string(r.failed_runs) + " failed)").c_str() : "");
  std::printf("\nsmallest true difference a one-sided Welch test at alpha 0.05 detects with power 0.8, at the pooled sd:\n");
  for (bool verify : fidelities) {
    const double lm_sd = pooled_sd(rows, verify, true), mqar_sd = pooled_sd(rows, verify, false);
    std::printf("  %-8s pooled sd: lm %s bpb, mqar %s", verify ? "verify" : "explore", fixed(lm_sd, 4).c_str(), fixed(mqar_sd, 3).c_str());
    for (size_t n : {kVerifySeeds, kReplicationSeeds})
      std::printf("; %zu seeds: lm %s, mqar %s", n, fixed(stats::minimum_detectable_difference(lm_sd, n), 4).c_str(),
                  fixed(stats::minimum_detectable_difference(mqar_sd, n), 3).c_str());
    std::printf("\n");
  }
  return 0;
}

}  // namespace

void add_noise_bench(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<NoiseArgs>();
  auto* cmd = bench.add_subcommand(
      "noise",
      "Seed noise: every baseline trained on LM and MQAR with seeds 1..N; the mean and sd of each, and the smallest difference a "
      "campaign's verify seeds (3) and replication seeds (5) can detect");
  cmd->add_option("--fidelity", args->fidelity, "explore, verify or both")->check(CLI::IsMember({"explore", "verify", "both"}))->capture_default_str();
  cmd->add_option("--seeds", args->seeds, "Seeds per program and task")->check(CLI::Range(2u, 1000u))->capture_default_str();
  cmd->add_option("--programs", args->programs, "Comma-separated programs (names or files; default: every baseline)");
  cmd->add_option("--jobs", args->jobs, "Runs trained at once (default: the cores / --threads); the results do not depend on it")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--threads", args->threads, "libtorch threads of each run")->check(CLI::Range(1, kMaxTorchThreads))->capture_default_str();
  cmd->add_option("--steps", args->steps, "Optimiser steps instead of the fidelity's (warm-up keeps its share)")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args, &exit_code] { exit_code = bench_noise(*args); });
}

}  // namespace asiarch::tools
