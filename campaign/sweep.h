#pragma once
// Sweeps (`asiarch sweep`): one simulated campaign per (GPU budget, seed) of a sweep file, a
// scenario followed by a [sweep] table (scenarios/README.md). Read, planned, and run on several
// threads, a campaign resumed where it stopped or skipped when it finished. The scaling fit and
// the plots over the results are the command's (tools/sweep_command.cpp).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "scenario/scenario.h"

namespace asiarch {

struct SweepSpec {
  std::vector<uint32_t> budgets;
  std::vector<uint64_t> seeds;
  double horizon_gpu_hours = 0;
  std::string base_text;  // the file up to its [sweep] table
};

// Reads the [sweep] table and the scenario text before it. The table must come last, so that
// the campaigns' scenarios are the file's own text up to it. Throws ScenarioError naming the
// file and line.
SweepSpec read_sweep(const std::string& file);

struct SweepCampaign {
  uint32_t budget;
  uint64_t seed;
  std::filesystem::path dir;
  Scenario scenario;
  std::string error;     // set when it could not be run
  bool foreign = false;  // its directory holds another campaign: bad input, not a failure
};

// The campaigns of a sweep, by budget then seed, in out/runs/BUDGET-SEED; an empty `out` becomes
// runs/<scenario name>-sweep.
std::vector<SweepCampaign> plan_sweep(const SweepSpec& spec, const std::string& file, std::string& out);

// Runs every campaign on `jobs` threads, resuming one that stopped and skipping one that
// finished. Each is a pure function of its scenario and seed, with its own actor system and run
// store, so the threads change no digest. A campaign that could not run keeps why in `error`.
void run_sweep(std::vector<SweepCampaign>& campaigns, int jobs);

}  // namespace asiarch
