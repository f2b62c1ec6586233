// asiarch compare: is program A better than program B? Both are trained on several seeds, and
// the difference of their means gets Welch's 95% interval (stats/stats.h says why Welch).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include "training/training.h"
#include "stats/stats.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

struct CompareArgs {
  std::string a, b;
  std::string task = "lm";
  bool verify = false;
  uint32_t seeds = 5;
  uint64_t first_seed = 1;
  int jobs = 0;  // 0: the cores
  int threads = 1;
  std::optional<int64_t> steps;
  bool json = false;
};

// One task's comparison: the seeds and metrics of both sides, and the verdict.
struct TaskComparison {
  training::Task task;
  std::vector<uint64_t> seeds[2];
  std::vector<training::TrainMetrics> runs[2];
  std::vector<double> values[2];  // the metric of the runs that trained
  stats::Summary summary[2];
  std::optional<stats::Difference> difference;  // A - B
  std::string verdict;  // better, worse, no detectable difference, or why there is none
};

bool lower_is_better(training::Task task) { return task == training::Task::Lm; }
const char* metric_name(training::Task task) { return task == training::Task::Lm ? "bits per byte" : "MQAR accuracy"; }
const char* metric_key(training::Task task) { return task == training::Task::Lm ? "bits_per_byte" : "accuracy"; }
double metric_of(training::Task task, const training::TrainMetrics& m) { return task == training::Task::Lm ? m.bits_per_byte : m.accuracy; }

// Better means a lower loss or a higher accuracy, with the interval of A - B clear of zero.
std::string verdict_of(training::Task task, const std::optional<stats::Difference>& d) {
  if (!d) return "no verdict: fewer than 2 seeds trained on a side";
  const bool a_lower = d->high < 0, a_higher = d->low > 0;
  if (!a_lower && !a_higher) return "no detectable difference";
  return a_lower == lower_is_better(task) ? "better" : "worse";
}

void print_text(const CompareArgs& args, const std::string names[2], const TaskComparison& c) {
  const training::Task task = c.task;
  std::printf("\n%s (%s is better), %s, Welch's t on %u seeds a side\n", metric_name(task), lower_is_better(task) ? "lower" : "higher",
              args.verify ? "verify" : "explore", args.seeds);
  for (int side = 0; side < 2; ++side) {
    std::printf("  %s %s:", side == 0 ? "A" : "B", names[side].c_str());
    for (size_t i = 0; i < c.runs[side].size(); ++i) {
      const auto& m = c.runs[side][i];
      std::printf("  seed %llu %s", static_cast<unsigned long long>(c.seeds[side][i]),
                  m.ok ? fixed(metric_of(task, m), 4).c_str() : ("failed (" + m.failure + ")").c_str());
    }
    std::printf("\n      mean %s, sd %s (%zu seeds)\n", fixed(c.summary[side].mean, 4).c_str(), fixed(c.summary[side].sd, 4).c_str(),
                c.summary[side].n);
  }
  if (c.difference) {
    const auto& d = *c.difference;
    std::printf("  A - B: %+.4f, 95%% CI [%+.4f, %+.4f] (df %.1f, two-sided p %.4f)\n", d.estimate, d.low, d.high, d.df,
                std::min(1.0, 2 * std::min(d.p_below(), d.p_above())));
  }
  const bool decided = c.verdict == "better" || c.verdict == "worse";
  std::printf("  verdict: %s%s\n", decided ? "A is " : "", c.verdict.c_str());
}

void print_json(const CompareArgs& args, const std::string names[2], const std::vector<TaskComparison>& comparisons) {
  std::cout << "{\"a\": " << json_string(names[0]) << ", \"b\": " << json_string(names[1]) << ", \"fidelity\": \""
            << (args.verify ? "verify" : "explore") << "\", \"seeds\": " << args.seeds << ", \"threads\": " << args.threads
            << ", \"test\": \"welch\", \"confidence\": 0.95, \"tasks\": {";
  for (size_t t = 0; t < comparisons.size(); ++t) {
    const TaskComparison& c = comparisons[t];
    std::cout << (t ? ", " : "") << "\"" << (c.task == training::Task::Lm ? "lm" : "mqar") << "\": {\"metric\": \"" << metric_key(c.task)
              << "\", \"better\": \"" << (lower_is_better(c.task) ? "lower" : "higher") << "\"";
    for (int side = 0; side < 2; ++side) {
      std::cout << ", \"" << (side == 0 ? "a" : "b") << "\": {\"runs\": [";
      for (size_t i = 0; i < c.runs[side].size(); ++i) {
        const auto& m = c.runs[side][i];
        std::cout << (i ? ", " : "") << "{\"seed\": " << c.seeds[side][i] << ", \"status\": \"" << (m.ok ? "ok" : "failed")
                  << "\", \"failure\": " << json_string(m.failure) << ", \"" << metric_key(c.task) << "\": " << json_number(metric_of(c.task, m));
        if (c.task == training::Task::Mqar) {
          std::cout << ", \"rung_accuracy\": [";
          for (size_t r = 0; r < m.rung_accuracy.size(); ++r) std::cout << (r ? ", " : "") << json_number(m.rung_accuracy[r]);
          std::cout << "]";
        }
        std::cout << "}";
      }
      std::cout << "], \"mean\": " << json_number(c.summary[side].mean) << ", \"sd\": " << json_number(c.summary[side].sd) << ", \"n\": " << c.summary[side].n
                << "}";
    }
    if (c.difference) {
      std::cout << ", \"difference\": " << json_number(c.difference->estimate) << ", \"low\": " << json_number(c.difference->low)
                << ", \"high\": " << json_number(c.difference->high) << ", \"df\": " << json_number(c.difference->df);
    }
    std::cout << ", \"verdict\": " << json_string(c.verdict) << "}";
  }
  std::cout << "}}" << std::endl;
}

int compare(const CompareArgs& args) {
  std::vector<training::Task> tasks;
  if (args.task == "lm" || args.task == "both") tasks.push_back(training::Task::Lm);
  if (args.task == "mqar" || args.task == "both") tasks.push_back(training::Task::Mqar);
  lang::Program programs[2];
  std::string names[2];
  for (int side = 0; side < 2; ++side) {
    try {
      const ProgramSource source = load_program(side == 0 ? args.a : args.b);
      programs[side] = lang::parse(source.text, source.file);
      const int64_t width = (args.verify ? training::verify_config(training::Task::Lm) : training::explore_config(training::Task::Lm)).d_model;
      lang::check(programs[side], lang::ModelShape{width, lang::ModelShape{}.context}, source.file);
      names[side] = programs[side].name;
    } catch (const std::exception& e) {
      std::cerr << e.what() << std::endl;
      return 2;
    }
  }
  if (names[0] == names[1]) names[1] += " (B)";
  if (std::count(tasks.begin(), tasks.end(), training::Task::Lm) && !std::filesystem::is_regular_file(training::kDefaultCorpus)) {
    std::cerr << "corpus '" << training::kDefaultCorpus << "' not found: install Debian's dict-gcide (apt-get install dict-gcide)" << std::endl;
    return 2;
  }
  // A trains seeds S .. S+N-1 and B the next N: independent runs, as Welch's test assumes (with
  // shared seeds, a program compared with itself would repeat its runs exactly).
  std::vector<TaskComparison> comparisons;
  std::vector<training::TrainRun> runs;
  for (training::Task task : tasks) {
    TaskComparison c;
    c.task = task;
    for (int side = 0; side < 2; ++side) {
      for (uint32_t i = 0; i < args.seeds; ++i) {
        training::TrainConfig config = args.verify ? training::verify_config(task) : training::explore_config(task);
        config.seed = args.first_seed + static_cast<uint64_t>(side) * args.seeds + i;
        config.threads = args.threads;
        if (args.steps) set_steps(config, *args.steps);
        c.seeds[side].push_back(config.seed);
        runs.push_back({programs[side], config});
      }
    }
    comparisons.push_back(std::move(c));
  }
  const int jobs = args.jobs > 0 ? args.jobs : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / args.threads);
  spdlog::info("compare {} (A) with {} (B): {} run(s) of {} at {} on {} job(s) x {} thread(s)", names[0], names[1], runs.size(), args.task,
               args.verify ? "verify" : "explore", jobs, args.threads);
  size_t finished = 0;
  const auto results = training::train_programs(runs, jobs, [&](size_t index, const training::TrainMetrics& m) {
    const training::TrainConfig& config = runs[index].config;
    const int side = static_cast<int>(index / args.seeds % 2);
    spdlog::info("[{}/{}] {} {} seed {}: {} ({:.0f} s)", ++finished, runs.size(), names[side], config.task == training::Task::Lm ? "lm" : "mqar",
                 config.seed, m.ok ? fixed(metric_of(config.task, m), 4) : "failed: " + m.failure, m.seconds);
  });
  bool decided = true;
  for (size_t t = 0; t < comparisons.size(); ++t) {
    TaskComparison& c = comparisons[t];
    for (int side = 0; side < 2; ++side) {
      for (uint32_t i = 0; i < args.seeds; ++i) {
        const auto& m = results[(t * 2 + static_cast<size_t>(side)) * args.seeds + i];
        c.runs[side].push_back(m);
        if (m.ok) c.values[side].push_back(metric_of(c.task, m));
      }
      c.summary[side] = stats::summarize(c.values[side]);
    }
    c.difference = stats::welch(c.summary[0], c.summary[1]);
    c.verdict = verdict_of(c.task, c.difference);
    decided = decided && c.difference.has_value();
  }
  if (args.json) print_json(args, names, comparisons);
  else {
    std::printf("A: %s, B: %s; A trains seeds %llu-%llu, B seeds %llu-%llu\n", names[0].c_str(), names[1].c_str(),
                static_cast<unsigned long long>(args.first_seed), static_cast<unsigned long long>(args.first_seed + args.seeds - 1),
                static_cast<unsigned long long>(args.first_seed + args.seeds),
                static_cast<unsigned long long>(args.first_seed + 2 * args.seeds - 1));
    for (const TaskComparison& c : comparisons) print_text(args, names, c);
  }
  return decided ? 0 : 1;
}

}  // namespace

void add_compare_commands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand(
      "compare",
      "Is program A better than B? Trains both on several seeds (in parallel) and gives the difference of the means with its 95% "
      "interval (Welch's t) and a verdict: better, worse or no detectable difference");
  cmd->add_option("a", args->a, "Program A: a shipped program's name (see `arch list`) or a program file")->required();
  cmd->add_option("b", args->b, "Program B, the one A is compared with")->required();
  cmd->add_option("--task", args->task, "lm (held-out bits per byte), mqar (recall over the ladder) or both")
      ->check(CLI::IsMember({"lm", "mqar", "both"}))
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--fidelity", [args](const std::string& f) { args->verify = f == "verify"; }, "explore (tiny, seconds per run) or verify")
      ->check(CLI::IsMember({"explore", "verify"}));
  cmd->add_option("--seeds", args->seeds, "Seeds per program: A trains seeds S..S+N-1, B the next N")
      ->check(CLI::Range(2u, 1000u))
      ->capture_default_str();
  cmd->add_option("--seed", args->first_seed, "S, the first seed")->check(seed_text())->capture_default_str();
  cmd->add_option("--jobs", args->jobs, "Runs trained at once (default: the cores / --threads); the results do not depend on it")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--threads", args->threads, "libtorch threads of each run (results are bit-identical at a fixed count)")
      ->check(CLI::Range(1, kMaxTorchThreads))
      ->capture_default_str();
  cmd->add_option("--steps", args->steps, "Optimiser steps instead of the fidelity's (warm-up keeps its share)")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "Print one JSON object: every run, the means, the interval and the verdict per task");
  cmd->callback([args, &exit_code] { exit_code = compare(*args); });
}

}  // namespace asiarch::tools
