#pragma once
// The `asiarch` subcommands. Each add_* registers its subcommands on the app; their callbacks
// set `exit_code` (0 success, 1 the work failed, 2 bad usage or bad input).
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "actors/scenario.h"

namespace asiarch::tools {

void add_campaign_commands(CLI::App& app, int& exit_code);  // run, resume, replay, inspect
void add_arch_commands(CLI::App& app, int& exit_code);      // arch list|show|check|ops
void add_bench_commands(CLI::App& app, int& exit_code);     // bench sim
void add_check_commands(CLI::App& app, int& exit_code);     // check
void add_cognition_commands(CLI::App& app, int& exit_code); // cognition list|query

// Loads a scenario; on a bad one prints its FILE:LINE error and returns nothing (exit 2).
std::optional<Scenario> load_scenario_or_report(const std::string& path);

// Human-readable numbers for summaries: 12,345 and 1,234.5.
std::string grouped(uint64_t value);
std::string grouped(double value, int decimals);
// A JSON string literal.
std::string json_string(const std::string& text);

}  // namespace asiarch::tools
