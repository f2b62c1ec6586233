#include "campaign/sweep.h"

#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include "campaign/campaign.h"
#include "campaign/run_recorder.h"
#include "common/number_text.h"
#include "common/suggest.h"
#include "storage/run_lock.h"
#include "storage/run_store.h"

namespace asiarch {
namespace {

// A campaign directory that holds a run of another scenario or seed.
class ForeignRunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& file, const toml::source_region& where, const std::string& message) {
  throw ScenarioError(file + ":" + std::to_string(where.begin.line) + ": " + message);
}

template <typename T>
std::vector<T> integer_list(const toml::table& sweep, const std::string& file, const char* key, int64_t min, int64_t max, const char* example) {
  const toml::node* node = sweep.get(key);
  if (!node) throw ScenarioError(file + ":" + std::to_string(sweep.source().begin.line) + ": [sweep] has no '" + key + "'; add for example " + key + " = " + example);
  std::vector<T> values;
  bool valid = node->is_array() && !node->as_array()->empty();
  for (size_t i = 0; valid && i < node->as_array()->size(); ++i) {
    const auto* integer = node->as_array()->get(i)->as_integer();
    valid = integer && integer->get() >= min && integer->get() <= max;
    if (valid) values.push_back(static_cast<T>(integer->get()));
  }
  if (!valid) {
    fail(file, node->source(), std::string("'") + key + "' in [sweep] must be a non-empty array of integers from " + std::to_string(min) + " to " +
                                   std::to_string(max) + "; write for example " + key + " = " + example);
  }
  std::sort(values.begin(), values.end());
  if (std::adjacent_find(values.begin(), values.end()) != values.end()) fail(file, node->source(), std::string("'") + key + "' in [sweep] lists a value twice; list each once");
  return values;
}

}  // namespace

SweepSpec read_sweep(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ScenarioError(file + ": cannot read the sweep file (missing or unreadable); check the path, e.g. scenarios/scaling.toml");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string text = bytes.str();
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    throw ScenarioError(file + ":" + std::to_string(e.source().begin.line) + ": not valid TOML: " + std::string(e.description()) +
                        "; see scenarios/README.md for the format");
  }
  const toml::table* sweep = root["sweep"].as_table();
  if (!sweep) {
    throw ScenarioError(file + ":1: no [sweep] table; a sweep file is a scenario followed by [sweep] with budgets, seeds and "
                        "horizon_gpu_hours (see scenarios/README.md and scenarios/scaling.toml)");
  }
  const std::vector<std::string> known = {"budgets", "seeds", "horizon_gpu_hours"};
  for (const auto& [key, node] : *sweep) {
    const std::string name(key.str());
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    const std::string suggestion = closest_match(name, known);
    fail(file, key.source(), "unknown key '" + name + "' in [sweep]; " +
                                 (suggestion.empty() ? "the keys here are budgets, seeds and horizon_gpu_hours" : "did you mean '" + suggestion + "'?") +
                                 " (see scenarios/README.md)");
  }

  SweepSpec spec;
  spec.budgets = integer_list<uint32_t>(*sweep, file, "budgets", 1, 100000, "[1, 4, 16, 64]");  // gpu_slots' range
  spec.seeds = integer_list<uint64_t>(*sweep, file, "seeds", 0, std::numeric_limits<int64_t>::max(), "[1, 2, 3, 4, 5]");
  const toml::node* horizon = sweep->get("horizon_gpu_hours");
  if (!horizon) throw ScenarioError(file + ":" + std::to_string(sweep->source().begin.line) + ": [sweep] has no 'horizon_gpu_hours'; add for example horizon_gpu_hours = 20000.0");
  const auto hours = horizon->value<double>();
  if (!hours || !(*hours > 0) || !std::isfinite(*hours)) fail(file, horizon->source(), "'horizon_gpu_hours' in [sweep] must be a positive number; write for example horizon_gpu_hours = 20000.0");
  spec.horizon_gpu_hours = *hours;
  const uint32_t sweep_line = sweep->source().begin.line;
  size_t cut = 0;
  for (uint32_t line = 1; line < sweep_line && cut != std::string::npos; ++line) {
    cut = text.find('\n', cut);
    if (cut != std::string::npos) ++cut;
  }
  // The file up to [sweep], less the comments and blank lines right above it: they describe the
  // sweep, not a campaign.
  std::vector<std::string> lines;
  std::istringstream head(text.substr(0, cut == std::string::npos ? text.size() : cut));
  for (std::string line; std::getline(head, line);) lines.push_back(line);
  while (!lines.empty()) {
    const size_t first = lines.back().find_first_not_of(" \t\r");
    if (first != std::string::npos && lines.back()[first] != '#') break;
    lines.pop_back();
  }
  for (const std::string& line : lines) spec.base_text += line + "\n";
  toml::table without_sweep = root;
  without_sweep.erase("sweep");
  bool same = false;
  try {
    same = toml::parse(spec.base_text, file) == without_sweep;
  } catch (const toml::parse_error&) {
  }
  if (!same) fail(file, sweep->source(), "[sweep] must be the last table of the file, after every scenario key; move it to the end");
  return spec;
}

namespace {

std::string number_text(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// The scenario of one budget: the file's text up to [sweep], with [campaign]'s gpu_slots and
// max_gpu_hours set by editing their lines (a run records its scenario's text, so the text is
// what changes, never the parsed struct).
Scenario campaign_scenario(const SweepSpec& spec, const std::string& file, uint32_t budget) {
  const toml::table root = toml::parse(spec.base_text, file);
  const toml::table* campaign = root["campaign"].as_table();
  if (!campaign) return parse_scenario(spec.base_text, file);  // reports the missing [campaign] table
  std::vector<std::string> lines;
  std::istringstream in(spec.base_text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const std::vector<std::pair<const char*, std::string>> settings = {{"gpu_slots", std::to_string(budget)},
                                                                     {"max_gpu_hours", number_text(spec.horizon_gpu_hours)}};
  std::vector<std::string> inserted;
  for (const auto& [key, value] : settings) {
    const std::string line = std::string(key) + " = " + value + "  # set by asiarch sweep";
    if (const toml::node* node = campaign->get(key)) lines.at(node->source().begin.line - 1) = line;
    else inserted.push_back(line);
  }
  const size_t header = campaign->source().begin.line;  // the [campaign] line; new keys go right after it
  lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(std::min(header, lines.size())), inserted.begin(), inserted.end());
  std::string text = "# A campaign of the sweep " + file + ": " + std::to_string(budget) + " simulated GPU slots up to " +
                     number_text(spec.horizon_gpu_hours) + " GPU hours.\n";
  for (const std::string& line : lines) text += line + "\n";
  Scenario scenario = parse_scenario(text, file);
  if (scenario.mode != Mode::Simulation) {
    const toml::node* mode = root.get("mode");
    throw ScenarioError(file + ":" + std::to_string(mode ? mode->source().begin.line : 1) +
                        ": a sweep runs simulated campaigns, and this scenario is " + name_of(scenario.mode) + "; write mode = \"simulation\"");
  }
  if (scenario.campaign.gpu_slots != budget || scenario.campaign.max_gpu_hours != spec.horizon_gpu_hours) {
    throw ScenarioError(file + ":" + std::to_string(header) + ": cannot set gpu_slots and max_gpu_hours in [campaign]; write [campaign] as a table with one key per line");
  }
  return scenario;
}

std::string campaign_name(const SweepCampaign& c) { return "budget " + std::to_string(c.budget) + ", seed " + std::to_string(c.seed); }

// Runs, resumes or skips one campaign. Throws on a failure; returns what was done, for the log.
std::string run_one(const SweepCampaign& c) {
  if (std::filesystem::exists(c.dir / "data.mdb")) {
    bool logged = false;
    {
      // Opened for writing, under the writer lock: a store killed before its tables existed gets
      // them instead of reading as damaged. A campaign that logged nothing starts again.
      const auto lock = storage::RunLock::acquire(c.dir);
      logged = storage::RunStore::open(c.dir, storage::RunStore::Mode::ReadWrite)->meta(meta_key::kHeader).has_value();
      if (!logged) {
        std::filesystem::remove(c.dir / "data.mdb");
        std::filesystem::remove(c.dir / "lock.mdb");
      }
    }
    if (logged) {
      const RecordedRun recorded = read_recorded_run(*storage::RunStore::open(c.dir, storage::RunStore::Mode::ReadOnly));
      if (recorded.scenario.bytes != c.scenario.bytes || recorded.seed != c.seed) {
        throw ForeignRunError(c.dir.string() + " holds a campaign of another scenario or seed (the sweep file changed?); "
                              "choose another --out directory or remove it");
      }
      if (read_summary(c.dir).finished) return "finished before; not run again";
      const CampaignSummary s = resume_campaign(c.dir);
      return "resumed: " + grouped(s.experiments) + " experiments, " + std::to_string(s.breakthroughs) + " breakthroughs";
    }
  }
  const CampaignSummary s = run_campaign(c.scenario, c.seed, c.dir);
  return grouped(s.experiments) + " experiments, " + std::to_string(s.breakthroughs) + " breakthroughs, " + grouped(s.gpu_hours, 0) + " GPU hours";
}

}  // namespace

std::vector<SweepCampaign> plan_sweep(const SweepSpec& spec, const std::string& file, std::string& out) {
  std::vector<SweepCampaign> campaigns;
  for (uint32_t budget : spec.budgets) {
    const Scenario scenario = campaign_scenario(spec, file, budget);
    if (out.empty()) out = "runs/" + scenario.name + "-sweep";
    for (uint64_t seed : spec.seeds) {
      campaigns.push_back({budget, seed, std::filesystem::path(out) / "runs" / (std::to_string(budget) + "-" + std::to_string(seed)), scenario, "", false});
    }
  }
  return campaigns;
}

void run_sweep(std::vector<SweepCampaign>& campaigns, int jobs) {
  std::atomic<size_t> next{0}, done{0};
  std::mutex log_mutex;
  const auto work = [&] {
    for (size_t i = next++; i < campaigns.size(); i = next++) {
      SweepCampaign& c = campaigns[i];
      const auto start = std::chrono::steady_clock::now();
      std::string what;
      try {
        what = run_one(c);
      } catch (const ForeignRunError& e) {
        c.error = e.what();
        c.foreign = true;
      } catch (const std::exception& e) {
        c.error = e.what();
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const std::lock_guard<std::mutex> lock(log_mutex);
      const size_t count = ++done;
      if (c.error.empty()) spdlog::info("[{}/{}] {}: {} ({:.1f} s)", count, campaigns.size(), campaign_name(c), what, seconds);
      else spdlog::error("[{}/{}] {}: {}", count, campaigns.size(), campaign_name(c), c.error);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min<int>(jobs, static_cast<int>(campaigns.size())); ++t) threads.emplace_back(work);
  for (auto& thread : threads) thread.join();
}

}  // namespace asiarch
