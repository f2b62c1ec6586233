// asiarch bench sim: whole-system throughput of a simulated campaign, with and without the log.
// asiarch bench kernels: the fused recurrence kernels against their libtorch-op references.
// asiarch bench train: training throughput and seconds per explore experiment.
// asiarch bench search: breakthroughs of the researcher's strategies at equal budget.
// asiarch bench cli: how fast the commands that do not train answer.
// asiarch bench noise lives in noise_bench.cpp.
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <iostream>
#include <map>

#include "actors/gpu_slot.h"
#include "campaign/campaign.h"
#include "kernels/kernel_bench.h"
#include "tools/commands.h"
#include "training/training.h"

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
  spdlog::info("benchmarking {} ({} experiments), best of {} runs per variant", scenario.name, scenario.campaign.max_experiments, args.repeat);
  CampaignSummary summary;
  // The reference, measured in the same process: the same campaign with no log at all.
  const double no_log = best_seconds(args.repeat, [&] {
    CampaignSummary run = simulate_campaign(scenario, scenario.seed, LogMode::None);
    if (summary.loop_seconds == 0 || run.loop_seconds < summary.loop_seconds) summary = std::move(run);
  });
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
  // Where the reference's time goes: each actor's handlers, and the loop around them (queue,
  // scheduling, summary), so that a regression in one actor shows at once.
  std::printf("\nshare of the reference's time (its best run, %.3f s)\n", summary.loop_seconds);
  double in_actors = 0;
  for (const auto& [actor, seconds] : summary.actor_seconds) {
    std::printf("  %-14s %7.3f s %6.1f%%\n", actor.c_str(), seconds, 100.0 * seconds / summary.loop_seconds);
    in_actors += seconds;
  }
  const double rest = summary.loop_seconds - in_actors;
  std::printf("  %-14s %7.3f s %6.1f%%\n", "loop", rest, 100.0 * rest / summary.loop_seconds);
  return 0;
}

struct CliBenchArgs {
  std::string scenario = "scenarios/sim-smoke.toml";
  int repeat = 10;
  bool json = false;
};

// Seconds `argv` takes from spawn to exit, output discarded; -1 when it exits other than 0.
double seconds_to_run(const std::vector<std::string>& argv) {
  std::vector<char*> pointers;
  for (const auto& arg : argv) pointers.push_back(const_cast<char*>(arg.c_str()));
  pointers.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, pointers[0], &actions, nullptr, pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? seconds : -1;
}

// asiarch bench cli: how long the commands that neither train nor measure take to answer, each
// the median of `repeat` runs, against /bin/true started the same way in the same run.
int bench_cli(const CliBenchArgs& args) {
  std::error_code error;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", error).string();
  if (error) {
    std::cerr << "bench cli: cannot find this binary through /proc/self/exe: " << error.message() << std::endl;
    return 1;
  }
  // A small finished run for the commands that read one.
  const std::optional<Scenario> smoke = load_scenario_or_report(args.scenario);
  if (!smoke) return 2;
  const auto dir = std::filesystem::temp_directory_path() / ("asiarch-bench-cli-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  run_campaign(*smoke, smoke->seed, dir);
  const std::string run = dir.string();
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"/bin/true (reference)", {"/bin/true"}},
      {"--help", {self, "--help"}},
      {"arch list", {self, "arch", "list"}},
      {"arch check deltanet", {self, "arch", "check", "deltanet"}},
      {"cognition list", {self, "cognition", "list"}},
      {"inspect RUN", {self, "inspect", run}},
      {"top RUN", {self, "top", run}},
      {"lineage RUN --arch 1", {self, "lineage", run, "--arch", "1"}},
  };
  auto median_seconds = [&](const std::vector<std::string>& argv) {
    std::vector<double> times;
    for (int i = 0; i < args.repeat; ++i) {
      const double t = seconds_to_run(argv);
      if (t < 0) return -1.0;
      times.push_back(t);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
  };
  std::vector<double> medians;
  for (const auto& [name, argv] : commands) medians.push_back(median_seconds(argv));
  std::filesystem::remove_all(dir);
  const double reference = medians.front();
  int failed = 0;
  if (args.json) std::printf("[");
  else std::printf("%-24s %10s %12s\n", "command", "ms", "vs true");
  for (size_t i = 0; i < commands.size(); ++i) {
    if (medians[i] < 0) ++failed;
    if (args.json) {
      std::printf("%s{\"command\": %s, \"ms\": %s}", i ? ", " : "", json_string(commands[i].first).c_str(),
                  medians[i] < 0 ? "null" : json_number(1000.0 * medians[i]).c_str());
    } else if (medians[i] < 0) {
      std::printf("%-24s %10s\n", commands[i].first.c_str(), "failed");
    } else {
      std::printf("%-24s %10.1f %11.1fx\n", commands[i].first.c_str(), 1000.0 * medians[i], medians[i] / reference);
    }
  }
  if (args.json) std::printf("]\n");
  if (failed > 0) std::cerr << failed << " command(s) did not exit 0" << std::endl;
  return failed > 0 ? 1 : 0;
}

struct KernelBenchArgs {
  kernel_bench::Options options;
  bool json = false;
};

int bench_kernels(const KernelBenchArgs& args) {
  const kernel_bench::Options& o = args.options;
  if (!device_ready(o.device)) return 2;
  spdlog::info("benchmarking the recurrence kernels: batch {}, heads {}, length {}, {} thread(s), on {}, at least {} s each", o.batch, o.heads,
               o.length, o.threads, o.device, o.min_seconds);
  const std::vector<kernel_bench::Result> results = kernel_bench::run(o);
  if (args.json) {
    std::printf("[\n");
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      std::printf("  {\"name\": %s, \"head_size\": %lld, \"tokens_per_second\": %.1f, ", json_string(r.name).c_str(),
                  static_cast<long long>(r.head_size), r.tokens_per_second);
      std::printf("\"chunkwise_tokens_per_second\": %.1f, \"reference_tokens_per_second\": %.1f, \"speedup\": %.2f}%s\n",
                  r.chunkwise_tokens_per_second, r.reference_tokens_per_second, r.speedup, i + 1 < results.size() ? "," : "");
    }
    std::printf("]\n");
    return 0;
  }
  const kernel_bench::Environment env = kernel_bench::environment(o.threads);
  std::printf("forward + backward, float32, batch %lld, heads %lld, length %lld, swa window %lld; tokens = batch x length\n",
              static_cast<long long>(o.batch), static_cast<long long>(o.heads), static_cast<long long>(o.length),
              static_cast<long long>(o.window));
  std::printf("threads: %d, BLAS: %s, CPU: %s, kernel loops: %s, device: %s\n", env.threads, env.blas.c_str(), env.cpu.c_str(),
              env.instruction_set.c_str(), device_name(o.device).c_str());
  std::printf("%-20s %5s %14s %16s %16s %8s\n", "kernel", "head", "fused tok/s", "chunkwise tok/s", "op-by-op tok/s", "speedup");
  for (const auto& r : results)
    std::printf("%-20s %5lld %14s %16s %16s %7.1fx\n", r.name.c_str(), static_cast<long long>(r.head_size),
                grouped(r.tokens_per_second, 0).c_str(), grouped(r.chunkwise_tokens_per_second, 0).c_str(),
                grouped(r.reference_tokens_per_second, 0).c_str(), r.speedup);
  std::printf("speedup: fused against op-by-op; the chunkwise forms are what runs where the fused kernels do not (CUDA, half precision)\n");
  return 0;
}

struct TrainBenchArgs {
  int threads = 1;
  int steps = 100;
  std::string device = "cpu";
  std::string scenario;  // sizes from this live scenario's fidelities instead of the defaults
  std::optional<int> experiment_steps;  // of the explore experiment's two runs; default: the fidelity's
  bool json = false;
};

// Training tokens per second of every baseline at both fidelities, each against softmax
// attention at the same fidelity; then seconds per explore experiment of DeltaNet against
// softmax attention's two training runs (softmax attention would stop at the complexity check).
// Everything is measured in the same run.
int bench_train(const TrainBenchArgs& args) {
  if (!device_ready(args.device)) return 2;
  // The experiment at each fidelity: the defaults, or a scenario's sizes (its seed, job 0).
  std::function<training::ExperimentConfig(msg::Fidelity)> experiment_at = [](msg::Fidelity fidelity) {
    training::ExperimentConfig experiment;
    if (fidelity == msg::Fidelity::VERIFY) {
      experiment.lm = training::verify_config(training::Task::Lm);
      experiment.mqar = training::verify_config(training::Task::Mqar);
    }
    return experiment;
  };
  if (!args.scenario.empty()) {
    const std::optional<Scenario> scenario = load_scenario_or_report(args.scenario);
    if (!scenario) return 2;
    experiment_at = [settings = LiveJobSettings::of(*scenario), seed = scenario->seed](msg::Fidelity fidelity) {
      return live_experiment_config(settings, seed, fidelity, 0);
    };
  }
  struct Throughput {
    std::string fidelity, program;
    double tokens_per_second, ratio;
  };
  std::vector<Throughput> rows;
  auto fail = [](const std::string& what, const std::string& failure) {
    std::cerr << "a benchmark run failed (" << what << "): " << failure << std::endl;
    return 1;
  };
  for (const bool verify : {false, true}) {
    training::TrainConfig config = experiment_at(verify ? msg::Fidelity::VERIFY : msg::Fidelity::EXPLORE).lm;
    set_steps(config, args.steps);
    config.threads = args.threads;
    config.device = args.device;
    const std::string fidelity = verify ? "verify" : "explore";
    spdlog::info("{}: {} LM steps of {} x {} bytes per baseline (D={}, {} layers), {} thread(s), on {}", fidelity, config.steps, config.batch,
                 config.lm.seq_len, config.d_model, config.layers, args.threads, args.device);
    std::vector<Throughput> at_fidelity;
    double reference = 0;
    for (const lang::Baseline& baseline : lang::baselines()) {
      const training::TrainMetrics m = training::train_program(lang::parse(baseline.text, baseline.name), config);
      if (!m.ok) return fail(fidelity + " " + baseline.name, m.failure);
      if (baseline.name == "softmax_attention") reference = m.tokens_per_second;
      at_fidelity.push_back({fidelity, baseline.name, m.tokens_per_second, 0});
    }
    for (auto& row : at_fidelity) row.ratio = row.tokens_per_second / reference;
    rows.insert(rows.end(), at_fidelity.begin(), at_fidelity.end());
  }

  spdlog::info("an explore experiment of deltanet, then softmax attention's two training runs");
  auto program = [](const char* name) { return lang::parse(lang::find_baseline(name)->text, name); };
  const lang::Program deltanet = program("deltanet"), softmax = program("softmax_attention");
  training::ExperimentConfig experiment = experiment_at(msg::Fidelity::EXPLORE);
  experiment.measure.threads = args.threads;
  for (training::TrainConfig* config : {&experiment.lm, &experiment.mqar}) {
    if (args.experiment_steps) set_steps(*config, *args.experiment_steps);
    config->threads = args.threads;
    config->device = args.device;
  }
  const training::ExperimentMetrics run = training::run_experiment(deltanet, experiment);
  if (!run.ok) return fail("deltanet experiment", run.failure);
  const training::TrainMetrics reference_lm = training::train_program(softmax, experiment.lm);
  if (!reference_lm.ok) return fail("softmax_attention LM", reference_lm.failure);
  const training::TrainMetrics reference_mqar = training::train_program(softmax, experiment.mqar);
  if (!reference_mqar.ok) return fail("softmax_attention MQAR", reference_mqar.failure);
  const double reference_seconds = reference_lm.seconds + reference_mqar.seconds;

  if (args.json) {
    std::printf("{\"threads\": %d, \"steps\": %d, \"device\": %s, \"throughput\": [", args.threads, args.steps,
                json_string(device_name(args.device)).c_str());
    for (size_t i = 0; i < rows.size(); ++i) {
      std::printf("{\"fidelity\": \"%s\", \"program\": \"%s\", \"tokens_per_second\": %.1f, \"vs_softmax\": %.3f}%s", rows[i].fidelity.c_str(),
                  rows[i].program.c_str(), rows[i].tokens_per_second, rows[i].ratio, i + 1 < rows.size() ? ", " : "");
    }
    std::printf("], \"experiment_seconds\": %.2f, \"reference_seconds\": %.2f, \"experiment_seconds_ratio\": %.3f}\n", run.seconds,
                reference_seconds, run.seconds / reference_seconds);
    return 0;
  }
  const kernel_bench::Environment env = kernel_bench::environment(args.threads);
  std::printf("threads: %d, BLAS: %s, CPU: %s, device: %s; %d LM steps per run%s\n", env.threads, env.blas.c_str(), env.cpu.c_str(),
              device_name(args.device).c_str(), args.steps, args.scenario.empty() ? "" : (", sizes of " + args.scenario).c_str());
  std::printf("%-9s %-22s %14s %11s\n", "fidelity", "training", "tokens/s", "vs softmax");
  for (const auto& row : rows) {
    std::printf("%-9s %-22s %14s %10.2fx\n", row.fidelity.c_str(), (row.program + (row.program == "softmax_attention" ? " (ref)" : "")).c_str(),
                grouped(row.tokens_per_second, 0).c_str(), row.ratio);
  }
  std::printf("%-52s %14s %10s\n", "seconds per explore experiment", "seconds", "vs softmax");
  std::printf("%-52s %14.1f %9.2fx\n", "deltanet: checks, LM and MQAR", run.seconds, run.seconds / reference_seconds);
  std::printf("%-52s %14.1f %9.2fx\n", "softmax_attention: LM and MQAR training (reference)", reference_seconds, 1.0);
  std::printf("deltanet at explore: %.4f bits per byte, MQAR accuracy %.4f\n", run.loss, run.accuracy);
  return 0;
}

struct SearchBenchArgs {
  std::string scenario = "scenarios/search.toml";
  int seeds = 10;
  bool json = false;
};

// The researcher's strategies at equal budget: the same scenario in worlds 1..N, once per
// strategy; breakthroughs per campaign, and the full researcher's ratio to the others.
int bench_search(const SearchBenchArgs& args) {
  const std::optional<Scenario> loaded = load_scenario_or_report(args.scenario);
  if (!loaded) return 2;
  if (loaded->mode != Mode::Simulation) {
    std::cerr << args.scenario << ": bench search runs simulated campaigns; give a scenario with mode = \"simulation\"" << std::endl;
    return 2;
  }
  const std::vector<Strategy> kinds = {Strategy::Full, Strategy::Random, Strategy::NoCognition};
  std::vector<std::string> strategies;
  for (const Strategy kind : kinds) strategies.push_back(name_of(kind));
  std::map<std::string, std::vector<uint32_t>> found;
  spdlog::info("search benchmark: {} ({} experiments per campaign), {} strategies x {} worlds", loaded->name, loaded->campaign.max_experiments,
               strategies.size(), args.seeds);
  for (int seed = 1; seed <= args.seeds; ++seed) {
    for (const Strategy kind : kinds) {
      const std::string strategy = name_of(kind);
      Scenario scenario = *loaded;
      scenario.oracle.world_seed = static_cast<uint64_t>(seed);
      scenario.researcher.strategy = kind;
      const CampaignSummary summary = simulate_campaign(scenario, scenario.seed, LogMode::None);
      found[strategy].push_back(summary.breakthroughs);
      spdlog::info("world {}: {} found {} breakthroughs in {} experiments", seed, strategy, summary.breakthroughs, summary.experiments);
    }
  }
  std::map<std::string, double> mean;
  for (const auto& [strategy, counts] : found) {
    double total = 0;
    for (uint32_t c : counts) total += c;
    mean[strategy] = total / static_cast<double>(counts.size());
  }
  auto ratio = [&](const std::string& other) { return mean[other] > 0 ? mean["full"] / mean[other] : INFINITY; };
  if (args.json) {
    std::printf("{\"scenario\": %s, \"seeds\": [", json_string(loaded->name).c_str());
    for (int seed = 1; seed <= args.seeds; ++seed) std::printf("%s%d", seed > 1 ? ", " : "", seed);
    std::printf("], \"full\": %.3f, \"random\": %.3f, \"no_cognition\": %.3f, ", mean["full"], mean["random"], mean["no_cognition"]);
    for (const auto& strategy : strategies) {
      std::printf("\"%s_per_seed\": [", strategy.c_str());
      for (size_t i = 0; i < found[strategy].size(); ++i) std::printf("%s%u", i ? ", " : "", found[strategy][i]);
      std::printf("], ");
    }
    std::printf("\"full_over_random\": %.3f, \"full_over_no_cognition\": %.3f}\n", ratio("random"), ratio("no_cognition"));
    return 0;
  }
  std::printf("scenario: %s, %s experiments per campaign, worlds 1..%d; breakthroughs per campaign\n", loaded->name.c_str(),
              grouped(loaded->campaign.max_experiments).c_str(), args.seeds);
  std::printf("%-14s %8s  %s\n", "strategy", "mean", "per world");
  for (const auto& strategy : strategies) {
    std::string per_seed;
    for (uint32_t c : found[strategy]) per_seed += (per_seed.empty() ? "" : " ") + std::to_string(c);
    std::printf("%-14s %8.2f  %s\n", strategy.c_str(), mean[strategy], per_seed.c_str());
  }
  std::printf("full / random:       %.2fx\nfull / no_cognition: %.2fx\n", ratio("random"), ratio("no_cognition"));
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

  auto kernel_args = std::make_shared<KernelBenchArgs>();
  auto* kernels = bench->add_subcommand("kernels", "Recurrence kernels, forward + backward: fused CPU kernels and chunkwise forms against op-by-op libtorch ops");
  kernels->add_flag("--json", kernel_args->json, "Print a JSON array, one object per kernel and head size");
  kernels->add_option("--length", kernel_args->options.length, "Tokens per sequence")->check(CLI::PositiveNumber)->capture_default_str();
  kernels->add_option("--batch", kernel_args->options.batch, "Sequences per batch")->check(CLI::PositiveNumber)->capture_default_str();
  kernels->add_option("--heads", kernel_args->options.heads, "Heads")->check(CLI::PositiveNumber)->capture_default_str();
  kernels->add_option("--threads", kernel_args->options.threads, "Torch intra-op threads")
      ->check(CLI::Range(1, kMaxTorchThreads))
      ->capture_default_str();
  add_device_option(kernels, kernel_args->options.device);
  kernels->callback([kernel_args, &exit_code] { exit_code = bench_kernels(*kernel_args); });

  auto train_args = std::make_shared<TrainBenchArgs>();
  auto* train = bench->add_subcommand(
      "train", "Training tokens per second of every baseline at explore and verify, and seconds per explore experiment of DeltaNet, vs softmax attention");
  train->add_flag("--json", train_args->json, "Print one JSON object");
  train->add_option("--steps", train_args->steps, "LM steps per throughput run")->check(CLI::Range(10, 100000))->capture_default_str();
  train->add_option("--threads", train_args->threads, "Torch intra-op threads")->check(CLI::Range(1, kMaxTorchThreads))->capture_default_str();
  add_device_option(train, train_args->device);
  train->add_option("--scenario", train_args->scenario,
                    "Train at the sizes of this live scenario's fidelities (e.g. scenarios/gpu.toml) instead of the defaults; --steps still applies");
  train->add_option("--experiment-steps", train_args->experiment_steps, "Steps of the explore experiment's LM and MQAR runs (default: the fidelity's)")
      ->check(CLI::Range(10, 100000));
  train->callback([train_args, &exit_code] { exit_code = bench_train(*train_args); });

  auto search_args = std::make_shared<SearchBenchArgs>();
  auto* search = bench->add_subcommand(
      "search", "Breakthroughs per simulated campaign of the full researcher, random mutation and the researcher without cognition, at equal budget");
  search->add_option("--seeds", search_args->seeds, "World seeds 1..N; one campaign per seed and strategy")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  search->add_option("--scenario", search_args->scenario, "Simulation scenario every campaign runs (its strategy is overridden)")
      ->capture_default_str();
  search->add_flag("--json", search_args->json, "Print one JSON object: mean breakthroughs of full, random and no_cognition, and the seeds");
  search->callback([search_args, &exit_code] { exit_code = bench_search(*search_args); });

  auto cli_args = std::make_shared<CliBenchArgs>();
  auto* cli = bench->add_subcommand("cli", "Milliseconds to answer of the commands that neither train nor measure, against /bin/true");
  cli->add_option("--scenario", cli_args->scenario, "A small simulation whose run inspect, top and lineage read")->capture_default_str();
  cli->add_option("--repeat", cli_args->repeat, "Runs per command; the median is reported")->check(CLI::PositiveNumber)->capture_default_str();
  cli->add_flag("--json", cli_args->json, "Print a JSON array, one object per command with its median milliseconds");
  cli->callback([cli_args, &exit_code] { exit_code = bench_cli(*cli_args); });

  add_noise_bench(*bench, exit_code);
}

}  // namespace asiarch::tools
