// asiarch sweep: one simulated campaign per (GPU budget, seed) of a sweep file, the scaling law
// of breakthroughs against GPU hours fitted over them, compared with the ASI-Arch paper, and
// plotted. The sweep file is a scenario plus a [sweep] table (scenarios/README.md).
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include "actors/campaign.h"
#include "actors/run_recorder.h"
#include "common/suggest.h"
#include "common/virtual_time.h"
#include "storage/lineage.h"
#include "storage/run_lock.h"
#include "tools/commands.h"
#include "tools/plots.h"
#include "tools/scaling_fit.h"

namespace asiarch::tools {
namespace {

// The run the paper reports (ASI-Arch, Liu et al. 2025, arXiv:2507.18074): 106
// breakthroughs in 1,773 experiments and about 20,000 GPU hours; the count stays near zero for
// the first ~800 GPU hours and then rises about linearly.
struct PaperRun {
  static constexpr double kBreakthroughs = 106, kExperiments = 1773, kGpuHours = 20000, kOnsetGpuHours = 800;
  // The slope of that linear rise: 106 breakthroughs over the 19,200 GPU hours after the onset.
  static constexpr double kSlopePer1000 = kBreakthroughs / (kGpuHours - kOnsetGpuHours) * 1000;
};

// Each campaign's curve is sampled at this many equal steps of the horizon for the fits, so that
// every stretch of GPU hours weighs the same whatever the number of results in it.
constexpr int kFitSteps = 100;

struct SweepArgs {
  std::string file;
  std::string out;  // default: runs/<scenario name>-sweep
  int jobs = 0;
};

struct SweepSpec {
  std::vector<uint32_t> budgets;
  std::vector<uint64_t> seeds;
  double horizon_gpu_hours = 0;
  std::string base_text;  // the file up to its [sweep] table
};

struct Campaign {
  uint32_t budget;
  uint64_t seed;
  std::filesystem::path dir;
  Scenario scenario;
  std::string error;     // set when it could not be run
  bool foreign = false;  // its directory holds another campaign: bad input, not a failure
};

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

// Reads the [sweep] table and the scenario text before it. The table must come last, so that
// the campaigns' scenarios are the file's own text up to it.
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
  if (scenario.gpu_slots != budget || scenario.max_gpu_hours != spec.horizon_gpu_hours) {
    throw ScenarioError(file + ":" + std::to_string(header) + ": cannot set gpu_slots and max_gpu_hours in [campaign]; write [campaign] as a table with one key per line");
  }
  return scenario;
}

std::string campaign_name(const Campaign& c) { return "budget " + std::to_string(c.budget) + ", seed " + std::to_string(c.seed); }

// Runs, resumes or skips one campaign. Throws on a failure; returns what was done, for the log.
std::string run_one(const Campaign& c) {
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

// Runs every campaign on `jobs` threads. Each campaign is a pure function of its scenario and
// seed, and has its own actor system and run store, so the threads change no digest.
void run_all(std::vector<Campaign>& campaigns, int jobs) {
  std::atomic<size_t> next{0}, done{0};
  std::mutex log_mutex;
  const auto work = [&] {
    for (size_t i = next++; i < campaigns.size(); i = next++) {
      Campaign& c = campaigns[i];
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

struct CampaignCurve {
  const Campaign* campaign;
  std::vector<storage::Judgment> judgments;
  CampaignSummary summary;
  std::vector<double> grid_x, grid_y;  // the curve sampled at kFitSteps steps of the horizon
  std::optional<LineFit> fit;
  std::optional<double> first_breakthrough_gpu_hours;
};

CampaignCurve read_curve(const Campaign& c, double horizon) {
  CampaignCurve curve{&c, {}, read_summary(c.dir), {}, {}, {}, {}};
  curve.judgments = storage::read_judgments(*storage::RunStore::open(c.dir, storage::RunStore::Mode::ReadOnly));
  const double end = curve.judgments.empty() ? 0 : curve.judgments.back().gpu_hours;
  size_t at = 0;
  uint32_t breakthroughs = 0;
  for (int k = 0; k <= kFitSteps; ++k) {
    const double x = horizon * k / kFitSteps;
    if (x > end) break;
    while (at < curve.judgments.size() && curve.judgments[at].gpu_hours <= x) breakthroughs = curve.judgments[at++].breakthroughs;
    curve.grid_x.push_back(x);
    curve.grid_y.push_back(breakthroughs);
  }
  if (curve.grid_x.size() >= 2) curve.fit = fit_line(curve.grid_x, curve.grid_y);
  for (const storage::Judgment& j : curve.judgments) {
    if (j.breakthroughs > 0) {
      curve.first_breakthrough_gpu_hours = j.gpu_hours;
      break;
    }
  }
  return curve;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double mean_of(const std::vector<double>& values) { return values.empty() ? kNaN : mean_interval(values).mean; }

// What a group of campaigns (one budget's, or all) shows.
struct GroupStats {
  size_t campaigns = 0;
  MeanInterval slope_per_1000;  // the campaigns' own slopes, per 1,000 GPU hours, with a 95% t-interval
  double r2_mean = kNaN, breakthroughs_mean = kNaN, experiments_mean = kNaN, virtual_hours_mean = kNaN;
  double first_breakthrough_gpu_hours_mean = kNaN;  // over the campaigns that made one
  std::vector<double> mean_curve;  // mean breakthroughs at each grid step, over the campaigns that reached it
};

GroupStats group_stats(const std::vector<const CampaignCurve*>& group) {
  GroupStats g;
  g.campaigns = group.size();
  std::vector<double> slopes, r2s, counts, runs, hours, onsets;
  std::vector<std::vector<double>> at_step(kFitSteps + 1);
  for (const CampaignCurve* curve : group) {
    if (curve->fit) {
      slopes.push_back(curve->fit->slope * 1000);
      r2s.push_back(curve->fit->r2);
    }
    counts.push_back(curve->summary.breakthroughs);
    runs.push_back(static_cast<double>(curve->summary.experiments));
    hours.push_back(ns_to_hours(curve->summary.vtime_ns));
    if (curve->first_breakthrough_gpu_hours) onsets.push_back(*curve->first_breakthrough_gpu_hours);
    for (size_t k = 0; k < curve->grid_y.size(); ++k) at_step[k].push_back(curve->grid_y[k]);
  }
  g.slope_per_1000 = mean_interval(slopes);
  g.r2_mean = mean_of(r2s);
  g.breakthroughs_mean = mean_of(counts);
  g.experiments_mean = mean_of(runs);
  g.virtual_hours_mean = mean_of(hours);
  g.first_breakthrough_gpu_hours_mean = mean_of(onsets);
  for (const auto& values : at_step) {
    if (!values.empty()) g.mean_curve.push_back(mean_of(values));
  }
  return g;
}

struct SweepFit {
  LineFit pooled;  // every campaign's grid points together
  GroupStats all;
  std::vector<GroupStats> per_budget;  // in the order of spec.budgets
};

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

std::string interval_json(const MeanInterval& m) {
  return "{\"mean\": " + json_number(m.mean) + ", \"low\": " + json_number(m.low) + ", \"high\": " + json_number(m.high) +
         ", \"sd\": " + json_number(m.sd) + ", \"n\": " + std::to_string(m.n) + "}";
}

std::string group_json(const GroupStats& g) {
  return "\"campaigns\": " + std::to_string(g.campaigns) + ", \"slope_per_1000_gpu_hours_ci95\": " + interval_json(g.slope_per_1000) +
         ", \"r2_mean\": " + json_number(g.r2_mean) + ", \"breakthroughs_mean\": " + json_number(g.breakthroughs_mean) +
         ", \"experiments_mean\": " + json_number(g.experiments_mean) + ", \"virtual_hours_mean\": " + json_number(g.virtual_hours_mean) +
         ", \"first_breakthrough_gpu_hours_mean\": " + json_number(g.first_breakthrough_gpu_hours_mean);
}

// One row per change of a campaign's totals, from (0, 0) on.
bool write_csv(const std::vector<CampaignCurve>& curves, const std::filesystem::path& path) {
  std::ofstream csv(path);
  csv << "budget,seed,gpu_hours,breakthroughs,experiments,virtual_hours\n";
  for (const CampaignCurve& curve : curves) {
    const std::string key = std::to_string(curve.campaign->budget) + "," + std::to_string(curve.campaign->seed) + ",";
    std::string previous = "0,0,0";
    csv << key << previous << ",0\n";
    for (const storage::Judgment& j : curve.judgments) {
      const std::string totals = json_number(j.gpu_hours) + "," + std::to_string(j.breakthroughs) + "," + std::to_string(j.experiments);
      if (totals == previous) continue;
      csv << key << totals << "," << json_number(ns_to_hours(j.vtime_ns)) << "\n";
      previous = totals;
    }
  }
  csv.close();
  return static_cast<bool>(csv);
}

std::string fit_json(const SweepSpec& spec, const std::string& file, const std::vector<CampaignCurve>& curves, const std::filesystem::path& out,
                     const SweepFit& fit) {
  const MeanInterval& slopes = fit.all.slope_per_1000;
  const bool paper_in_ci = slopes.n >= 2 && PaperRun::kSlopePer1000 >= slopes.low && PaperRun::kSlopePer1000 <= slopes.high;
  std::ostringstream json;
  json << "{\n  \"sweep\": " << json_string(file) << ",\n  \"horizon_gpu_hours\": " << json_number(spec.horizon_gpu_hours)
       << ",\n  \"campaigns\": " << curves.size() << ",\n  \"method\": "
       << json_string("least squares of cumulative breakthroughs on GPU hours; each campaign's curve sampled at " + std::to_string(kFitSteps) +
                      " equal steps of the horizon; the pooled fit takes every campaign's samples, the interval is a 95% t-interval of "
                      "the campaigns' own slopes")
       << ",\n  \"slope_per_1000_gpu_hours\": " << json_number(fit.pooled.slope * 1000) << ",\n  \"intercept\": " << json_number(fit.pooled.intercept)
       << ",\n  \"r2\": " << json_number(fit.pooled.r2) << ",\n  \"across_campaigns\": {" << group_json(fit.all) << "},\n  \"per_budget\": [";
  for (size_t b = 0; b < spec.budgets.size(); ++b) {
    json << (b > 0 ? ",\n    " : "\n    ") << "{\"budget\": " << spec.budgets[b] << ", " << group_json(fit.per_budget[b]) << "}";
  }
  json << "\n  ],\n  \"per_campaign\": [";
  for (size_t i = 0; i < curves.size(); ++i) {
    const CampaignCurve& c = curves[i];
    json << (i > 0 ? ",\n    " : "\n    ") << "{\"budget\": " << c.campaign->budget << ", \"seed\": " << c.campaign->seed
         << ", \"run\": " << json_string(c.campaign->dir.lexically_relative(out).string())
         << ", \"slope_per_1000_gpu_hours\": " << json_number(c.fit ? c.fit->slope * 1000 : kNaN)
         << ", \"intercept\": " << json_number(c.fit ? c.fit->intercept : kNaN) << ", \"r2\": " << json_number(c.fit ? c.fit->r2 : kNaN)
         << ", \"breakthroughs\": " << c.summary.breakthroughs << ", \"experiments\": " << c.summary.experiments
         << ", \"gpu_hours\": " << json_number(c.summary.gpu_hours)
         << ", \"virtual_hours\": " << json_number(ns_to_hours(c.summary.vtime_ns))
         << ", \"first_breakthrough_gpu_hours\": " << json_number(c.first_breakthrough_gpu_hours.value_or(kNaN))
         << ", \"stop_reason\": " << json_string(c.summary.stop_reason) << ", \"digest\": " << json_string(c.summary.digest) << "}";
  }
  json << "\n  ],\n  \"paper\": {\"source\": \"ASI-Arch (Liu et al. 2025, arXiv:2507.18074)\", \"breakthroughs\": "
       << json_number(PaperRun::kBreakthroughs) << ", \"experiments\": " << json_number(PaperRun::kExperiments)
       << ", \"gpu_hours\": " << json_number(PaperRun::kGpuHours) << ", \"onset_gpu_hours\": " << json_number(PaperRun::kOnsetGpuHours)
       << ", \"slope_per_1000_gpu_hours\": " << json_number(PaperRun::kSlopePer1000)
       << ", \"breakthroughs_per_experiment\": " << json_number(PaperRun::kBreakthroughs / PaperRun::kExperiments) << "},\n"
       << "  \"comparison\": {\"slope_ratio_to_paper\": " << json_number(fit.pooled.slope * 1000 / PaperRun::kSlopePer1000)
       << ", \"paper_slope_within_ci95\": " << (paper_in_ci ? "true" : "false")
       << ", \"fit_breakthroughs_at_paper_gpu_hours\": " << json_number(fit.pooled.intercept + fit.pooled.slope * PaperRun::kGpuHours)
       << ", \"first_breakthrough_gpu_hours_mean\": " << json_number(fit.all.first_breakthrough_gpu_hours_mean)
       << ", \"breakthroughs_per_experiment\": " << json_number(fit.all.breakthroughs_mean / fit.all.experiments_mean) << "}\n}\n";
  return json.str();
}

void print_fit(const SweepSpec& spec, const SweepFit& fit) {
  std::printf("%6s  %9s  %13s  %11s  %-34s %5s\n", "budget", "campaigns", "breakthroughs", "experiments", "slope per 1,000 GPU h (95% CI)", "R2");
  for (size_t b = 0; b < spec.budgets.size(); ++b) {
    const GroupStats& g = fit.per_budget[b];
    const std::string slope = fixed(g.slope_per_1000.mean, 2) + " (" + fixed(g.slope_per_1000.low, 2) + " to " + fixed(g.slope_per_1000.high, 2) + ")";
    std::printf("%6u  %9zu  %13.1f  %11.1f  %-34s %5.3f\n", spec.budgets[b], g.campaigns, g.breakthroughs_mean, g.experiments_mean, slope.c_str(),
                g.r2_mean);
  }
  const MeanInterval& s = fit.all.slope_per_1000;
  std::printf("pooled fit over %zu campaigns: %s breakthroughs per 1,000 GPU hours (95%% CI of the campaigns' slopes %s to %s), intercept %s, R2 %s\n",
              fit.all.campaigns, fixed(fit.pooled.slope * 1000, 2).c_str(), fixed(s.low, 2).c_str(), fixed(s.high, 2).c_str(),
              fixed(fit.pooled.intercept, 1).c_str(), fixed(fit.pooled.r2, 3).c_str());
  std::printf("paper (ASI-Arch): 106 breakthroughs in 1,773 experiments and ~20,000 GPU hours, about %s per 1,000 GPU hours after the first ~800;\n"
              "  this fit gives %s at 20,000 GPU hours; the first breakthrough came after %s GPU hours on average\n",
              fixed(PaperRun::kSlopePer1000, 2).c_str(), fixed(fit.pooled.intercept + fit.pooled.slope * PaperRun::kGpuHours, 1).c_str(),
              fixed(fit.all.first_breakthrough_gpu_hours_mean, 0).c_str());
  std::fflush(stdout);
}

std::string budget_title(uint32_t budget) { return std::to_string(budget) + (budget == 1 ? " GPU slot" : " GPU slots"); }

PlotSeries fit_series(const SweepSpec& spec, const LineFit& fit) {
  return {"fit: " + fixed(fit.slope * 1000, 2) + " per 1,000 GPU h, R2 " + fixed(fit.r2, 2), "lines lw 3 lc rgb 'black'",
          {{0, fit.intercept}, {spec.horizon_gpu_hours, fit.intercept + fit.slope * spec.horizon_gpu_hours}}};
}

PlotSeries paper_series() {
  return {"ASI-Arch paper: 106 in ~20,000 GPU h", "lines dt 2 lw 2 lc rgb '#555555'",
          {{0, 0}, {PaperRun::kOnsetGpuHours, 0}, {PaperRun::kGpuHours, PaperRun::kBreakthroughs}}};
}

// Every campaign's curve, coloured by budget, with the pooled fit and the paper's run.
Plot campaigns_plot(const SweepSpec& spec, const std::vector<CampaignCurve>& curves, const SweepFit& fit) {
  Plot plot{"Cumulative breakthroughs against GPU hours (" + std::to_string(curves.size()) + " simulated campaigns)", "GPU hours (simulated)",
            "breakthroughs", {"set xrange [0:" + number_text(spec.horizon_gpu_hours) + "]", "set yrange [0:*]"}, {}};
  for (size_t b = 0; b < spec.budgets.size(); ++b) {
    bool titled = false;
    for (const CampaignCurve& curve : curves) {
      if (curve.campaign->budget != spec.budgets[b]) continue;
      PlotSeries series{titled ? "" : budget_title(spec.budgets[b]), "steps lw 1 lc rgb '" + palette_colour(b) + "'", {{0, 0}}};
      for (const storage::Judgment& j : curve.judgments) series.points.emplace_back(j.gpu_hours, j.breakthroughs);
      plot.series.push_back(std::move(series));
      titled = true;
    }
  }
  plot.series.push_back(fit_series(spec, fit.pooled));
  plot.series.push_back(paper_series());
  return plot;
}

// Each budget's mean curve over its seeds, with the pooled fit and the paper's run.
Plot budgets_plot(const SweepSpec& spec, const SweepFit& fit) {
  Plot plot{"Mean cumulative breakthroughs per GPU budget (" + std::to_string(spec.seeds.size()) + " seeds each)", "GPU hours (simulated)",
            "breakthroughs (mean over seeds)", {"set xrange [0:" + number_text(spec.horizon_gpu_hours) + "]", "set yrange [0:*]"}, {}};
  for (size_t b = 0; b < spec.budgets.size(); ++b) {
    const GroupStats& g = fit.per_budget[b];
    PlotSeries series{budget_title(spec.budgets[b]) + ": " + fixed(g.slope_per_1000.mean, 2) + " per 1,000 GPU h",
                      "lines lw 2 lc rgb '" + palette_colour(b) + "'", {}};
    for (size_t k = 0; k < g.mean_curve.size(); ++k) series.points.emplace_back(spec.horizon_gpu_hours * static_cast<double>(k) / kFitSteps, g.mean_curve[k]);
    plot.series.push_back(std::move(series));
  }
  plot.series.push_back(fit_series(spec, fit.pooled));
  plot.series.push_back(paper_series());
  return plot;
}

int write_results(const SweepSpec& spec, const std::string& file, const std::vector<Campaign>& campaigns, const std::filesystem::path& out) {
  std::vector<CampaignCurve> curves;
  for (const Campaign& c : campaigns) curves.push_back(read_curve(c, spec.horizon_gpu_hours));
  if (!write_csv(curves, out / "scaling.csv")) {
    std::cerr << "cannot write " << (out / "scaling.csv").string() << "; check the disk and permissions" << std::endl;
    return 1;
  }

  SweepFit fit;
  std::vector<double> all_x, all_y;
  std::vector<const CampaignCurve*> all;
  for (const CampaignCurve& curve : curves) {
    all_x.insert(all_x.end(), curve.grid_x.begin(), curve.grid_x.end());
    all_y.insert(all_y.end(), curve.grid_y.begin(), curve.grid_y.end());
    all.push_back(&curve);
  }
  try {
    fit.pooled = fit_line(all_x, all_y);
  } catch (const std::invalid_argument&) {
    std::cerr << "the campaigns used too few GPU hours to fit a line; raise horizon_gpu_hours (now " << spec.horizon_gpu_hours << ")" << std::endl;
    return 1;
  }
  fit.all = group_stats(all);
  for (uint32_t budget : spec.budgets) {
    std::vector<const CampaignCurve*> group;
    for (const CampaignCurve& curve : curves) {
      if (curve.campaign->budget == budget) group.push_back(&curve);
    }
    fit.per_budget.push_back(group_stats(group));
  }

  std::ofstream fit_file(out / "fit.json");
  fit_file << fit_json(spec, file, curves, out, fit);
  fit_file.close();
  if (!fit_file) {
    std::cerr << "cannot write " << (out / "fit.json").string() << "; check the disk and permissions" << std::endl;
    return 1;
  }
  print_fit(spec, fit);
  try {
    render_plot(campaigns_plot(spec, curves, fit), out / "scaling");
    render_plot(budgets_plot(spec, fit), out / "scaling_by_budget");
  } catch (const ExternalToolError& e) {
    std::cerr << "the scaling plots failed: " << e.what() << std::endl;
    return 1;
  }
  std::cout << "wrote " << (out / "scaling.csv").string() << ", " << (out / "fit.json").string() << ", " << (out / "scaling.svg").string()
            << " and " << (out / "scaling_by_budget.svg").string() << " (and .png)" << std::endl;
  return 0;
}

int sweep(const SweepArgs& args) {
  SweepSpec spec;
  std::vector<Campaign> campaigns;
  std::string out = args.out;
  try {
    spec = read_sweep(args.file);
    for (uint32_t budget : spec.budgets) {
      const Scenario scenario = campaign_scenario(spec, args.file, budget);
      if (out.empty()) out = "runs/" + scenario.name + "-sweep";
      for (uint64_t seed : spec.seeds) {
        campaigns.push_back({budget, seed, std::filesystem::path(out) / "runs" / (std::to_string(budget) + "-" + std::to_string(seed)), scenario, "", false});
      }
    }
  } catch (const ScenarioError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
  const int jobs = args.jobs > 0 ? args.jobs : std::max(1u, std::thread::hardware_concurrency());
  spdlog::info("sweep {}: {} budgets x {} seeds = {} campaigns up to {} GPU hours each, {} at a time -> {}", args.file, spec.budgets.size(),
               spec.seeds.size(), campaigns.size(), grouped(spec.horizon_gpu_hours, 0), jobs, out);
  const auto start = std::chrono::steady_clock::now();
  run_all(campaigns, jobs);
  spdlog::info("campaigns done in {:.1f} s", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  const auto failed = std::count_if(campaigns.begin(), campaigns.end(), [](const Campaign& c) { return !c.error.empty(); });
  if (failed > 0) {
    std::cerr << failed << " of " << campaigns.size() << " campaigns could not be run (see above); the others are kept, and `asiarch sweep` "
              << "again resumes the sweep" << std::endl;
    const bool bad_input = std::all_of(campaigns.begin(), campaigns.end(), [](const Campaign& c) { return c.error.empty() || c.foreign; });
    return bad_input ? 2 : 1;
  }
  try {
    return write_results(spec, args.file, campaigns, out);
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 1;
  }
}

}  // namespace

void add_sweep_commands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand(
      "sweep",
      "Run one simulated campaign per (GPU budget, seed) of a sweep file, fit breakthroughs against GPU hours, compare with the\n"
      "ASI-Arch paper and plot: DIR/scaling.csv, DIR/fit.json, DIR/scaling.svg and DIR/scaling_by_budget.svg (with PNGs).\n"
      "Finished campaigns are not run again; an unfinished one is resumed");
  cmd->add_option("scenario", args->file, "Sweep file: a scenario plus a [sweep] table, e.g. scenarios/scaling.toml")->required();
  cmd->add_option("--out", args->out, "Output directory (default: runs/<name>-sweep); campaigns go to DIR/runs/<budget>-<seed>");
  cmd->add_option("--jobs", args->jobs, "Campaigns run at once (default: the number of cores)")->check(CLI::PositiveNumber);
  cmd->callback([args, &exit_code] { exit_code = sweep(*args); });
}

}  // namespace asiarch::tools
