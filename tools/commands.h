#pragma once
// The `asiarch` subcommands. Each add_* registers its subcommands on the app; their callbacks
// set `exit_code` (0 success, 1 the work failed, 2 bad usage or bad input).
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "common/json_string.h"
#include "common/number_text.h"
#include "scenario/scenario.h"
#include "storage/lineage.h"

namespace asiarch::training {
struct TrainConfig;
}

namespace asiarch::storage {
struct ArchEntry;
class Lineage;
}

namespace asiarch::tools {

void add_campaign_commands(CLI::App& app, int& exit_code);  // run, resume, replay, inspect
void add_arch_commands(CLI::App& app, int& exit_code);      // arch list|show|check|ops
void add_bench_commands(CLI::App& app, int& exit_code);     // bench sim|kernels|train|search|noise
void add_noise_bench(CLI::App& bench, int& exit_code);      // bench noise
void add_check_commands(CLI::App& app, int& exit_code);     // check
void add_cognition_commands(CLI::App& app, int& exit_code); // cognition list|query
void add_train_commands(CLI::App& app, int& exit_code);     // train
void add_compare_commands(CLI::App& app, int& exit_code);   // compare
void add_lineage_commands(CLI::App& app, int& exit_code);   // lineage, top
void add_sweep_commands(CLI::App& app, int& exit_code);     // sweep
void add_report_commands(CLI::App& app, int& exit_code);    // report
void add_export_commands(CLI::App& app, int& exit_code);    // export
void add_worker_commands(CLI::App& app, int& exit_code);    // worker

// A program's text: a shipped program by name, or a file. Throws std::invalid_argument when it
// is neither.
struct ProgramSource {
  std::string text;
  std::string file;  // for messages
};
ProgramSource load_program(const std::string& name_or_file);

// Loads a scenario; on a bad one prints its FILE:LINE error and returns nothing (exit 2).
std::optional<Scenario> load_scenario_or_report(const std::string& path);

// The most libtorch threads a --threads option takes: more only adds start-up time on these small models.
constexpr int kMaxTorchThreads = 64;

// The --device option of the commands that train: "cpu" (the default), "cuda" or "cuda:N".
CLI::Option* add_device_option(CLI::App* cmd, std::string& device);
// Whether training can run on `device`. If not, prints why and what to do, and returns false:
// the command exits 2 before it writes anything.
bool device_ready(const std::string& device);
// What a device is to people: "cpu", or the GPU's model.
std::string device_name(const std::string& device);

// The text of a seed option: decimal digits, 0 to 2^64-1 (CLI11 alone reads "-1" as 2^64-1).
const CLI::Validator& seed_text();

// A JSON number that reads back as the same double, so that two runs compare exactly (null when
// it is not finite).
std::string json_number(double value);
// `steps` optimiser steps instead of the config's, warm-up keeping its share of the run (the
// --steps of train, compare and bench noise: short runs for tests and quick looks).
void set_steps(training::TrainConfig& config, int64_t steps);
// A number with `decimals` decimals, or "n/a" when it is not finite.
std::string fixed(double value, int decimals);
// The best `n` scored architectures as a table (and, with_baselines, every baseline below them).
void print_top_table(const storage::Lineage& lineage, size_t n, bool with_baselines);
// How an architecture is named to people: a baseline by its program's name, others "arch N".
std::string arch_label(const storage::ArchEntry& entry);
// A result's seeds as the tables show them: the mean with the half-width of its 95% t-interval
// over the selection seeds ("2.3943 ±0.0123"; one seed: the value alone), the seed counts
// ("3" or "3+5" with a replication), and the verdict of the breakthrough rule.
std::string interval_text(const storage::ArchOutcome& outcome, bool loss, int decimals);
std::string seeds_text(const storage::ArchOutcome& outcome);
std::string verdict_text(const storage::ArchOutcome& outcome);

}  // namespace asiarch::tools
