// asiarch sweep: the campaigns of a sweep file run (campaign/sweep.h), then the scaling law of
// breakthroughs against GPU hours fitted over them, compared with the ASI-Arch paper, and
// plotted. The sweep file is a scenario plus a [sweep] table (scenarios/README.md).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>

#include "campaign/campaign.h"
#include "campaign/sweep.h"
#include "common/virtual_time.h"
#include "storage/lineage.h"
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

struct CampaignCurve {
  const SweepCampaign* campaign;
  std::vector<storage::Judgment> judgments;
  CampaignSummary summary;
  std::vector<double> grid_x, grid_y;  // the curve sampled at kFitSteps steps of the horizon
  std::optional<LineFit> fit;
  std::optional<double> first_breakthrough_gpu_hours;
};

CampaignCurve read_curve(const SweepCampaign& c, double horizon) {
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

// A figure of scaling.csv and fit.json: 6 significant digits, which the fits and plots need
// (the CLI's json_number writes 17, to read back the same double), null when not finite.
std::string figure_json(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

std::string interval_json(const MeanInterval& m) {
  return "{\"mean\": " + figure_json(m.mean) + ", \"low\": " + figure_json(m.low) + ", \"high\": " + figure_json(m.high) +
         ", \"sd\": " + figure_json(m.sd) + ", \"n\": " + std::to_string(m.n) + "}";
}

std::string group_json(const GroupStats& g) {
  return "\"campaigns\": " + std::to_string(g.campaigns) + ", \"slope_per_1000_gpu_hours_ci95\": " + interval_json(g.slope_per_1000) +
         ", \"r2_mean\": " + figure_json(g.r2_mean) + ", \"breakthroughs_mean\": " + figure_json(g.breakthroughs_mean) +
         ", \"experiments_mean\": " + figure_json(g.experiments_mean) + ", \"virtual_hours_mean\": " + figure_json(g.virtual_hours_mean) +
         ", \"first_breakthrough_gpu_hours_mean\": " + figure_json(g.first_breakthrough_gpu_hours_mean);
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
      const std::string totals = figure_json(j.gpu_hours) + "," + std::to_string(j.breakthroughs) + "," + std::to_string(j.experiments);
      if (totals == previous) continue;
      csv << key << totals << "," << figure_json(ns_to_hours(j.vtime_ns)) << "\n";
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
  json << "{\n  \"sweep\": " << json_string(file) << ",\n  \"horizon_gpu_hours\": " << figure_json(spec.horizon_gpu_hours)
       << ",\n  \"campaigns\": " << curves.size() << ",\n  \"method\": "
       << json_string("least squares of cumulative breakthroughs on GPU hours; each campaign's curve sampled at " + std::to_string(kFitSteps) +
                      " equal steps of the horizon; the pooled fit takes every campaign's samples, the interval is a 95% t-interval of "
                      "the campaigns' own slopes")
       << ",\n  \"slope_per_1000_gpu_hours\": " << figure_json(fit.pooled.slope * 1000) << ",\n  \"intercept\": " << figure_json(fit.pooled.intercept)
       << ",\n  \"r2\": " << figure_json(fit.pooled.r2) << ",\n  \"across_campaigns\": {" << group_json(fit.all) << "},\n  \"per_budget\": [";
  for (size_t b = 0; b < spec.budgets.size(); ++b) {
    json << (b > 0 ? ",\n    " : "\n    ") << "{\"budget\": " << spec.budgets[b] << ", " << group_json(fit.per_budget[b]) << "}";
  }
  json << "\n  ],\n  \"per_campaign\": [";
  for (size_t i = 0; i < curves.size(); ++i) {
    const CampaignCurve& c = curves[i];
    json << (i > 0 ? ",\n    " : "\n    ") << "{\"budget\": " << c.campaign->budget << ", \"seed\": " << c.campaign->seed
         << ", \"run\": " << json_string(c.campaign->dir.lexically_relative(out).string())
         << ", \"slope_per_1000_gpu_hours\": " << figure_json(c.fit ? c.fit->slope * 1000 : kNaN)
         << ", \"intercept\": " << figure_json(c.fit ? c.fit->intercept : kNaN) << ", \"r2\": " << figure_json(c.fit ? c.fit->r2 : kNaN)
         << ", \"breakthroughs\": " << c.summary.breakthroughs << ", \"experiments\": " << c.summary.experiments
         << ", \"gpu_hours\": " << figure_json(c.summary.gpu_hours)
         << ", \"virtual_hours\": " << figure_json(ns_to_hours(c.summary.vtime_ns))
         << ", \"first_breakthrough_gpu_hours\": " << figure_json(c.first_breakthrough_gpu_hours.value_or(kNaN))
         << ", \"stop_reason\": " << json_string(c.summary.stop_reason) << ", \"digest\": " << json_string(c.summary.digest) << "}";
  }
  json << "\n  ],\n  \"paper\": {\"source\": \"ASI-Arch (Liu et al. 2025, arXiv:2507.18074)\", \"breakthroughs\": "
       << figure_json(PaperRun::kBreakthroughs) << ", \"experiments\": " << figure_json(PaperRun::kExperiments)
       << ", \"gpu_hours\": " << figure_json(PaperRun::kGpuHours) << ", \"onset_gpu_hours\": " << figure_json(PaperRun::kOnsetGpuHours)
       << ", \"slope_per_1000_gpu_hours\": " << figure_json(PaperRun::kSlopePer1000)
       << ", \"breakthroughs_per_experiment\": " << figure_json(PaperRun::kBreakthroughs / PaperRun::kExperiments) << "},\n"
       << "  \"comparison\": {\"slope_ratio_to_paper\": " << figure_json(fit.pooled.slope * 1000 / PaperRun::kSlopePer1000)
       << ", \"paper_slope_within_ci95\": " << (paper_in_ci ? "true" : "false")
       << ", \"fit_breakthroughs_at_paper_gpu_hours\": " << figure_json(fit.pooled.intercept + fit.pooled.slope * PaperRun::kGpuHours)
       << ", \"first_breakthrough_gpu_hours_mean\": " << figure_json(fit.all.first_breakthrough_gpu_hours_mean)
       << ", \"breakthroughs_per_experiment\": " << figure_json(fit.all.breakthroughs_mean / fit.all.experiments_mean) << "}\n}\n";
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
            "breakthroughs", {"set xrange [0:" + figure_json(spec.horizon_gpu_hours) + "]", "set yrange [0:*]"}, {}};
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
            "breakthroughs (mean over seeds)", {"set xrange [0:" + figure_json(spec.horizon_gpu_hours) + "]", "set yrange [0:*]"}, {}};
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

int write_results(const SweepSpec& spec, const std::string& file, const std::vector<SweepCampaign>& campaigns, const std::filesystem::path& out) {
  std::vector<CampaignCurve> curves;
  for (const SweepCampaign& c : campaigns) curves.push_back(read_curve(c, spec.horizon_gpu_hours));
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
  std::vector<SweepCampaign> campaigns;
  std::string out = args.out;
  try {
    spec = read_sweep(args.file);
    campaigns = plan_sweep(spec, args.file, out);
  } catch (const ScenarioError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
  const int jobs = args.jobs > 0 ? args.jobs : std::max(1u, std::thread::hardware_concurrency());
  spdlog::info("sweep {}: {} budgets x {} seeds = {} campaigns up to {} GPU hours each, {} at a time -> {}", args.file, spec.budgets.size(),
               spec.seeds.size(), campaigns.size(), grouped(spec.horizon_gpu_hours, 0), jobs, out);
  const auto start = std::chrono::steady_clock::now();
  run_sweep(campaigns, jobs);
  spdlog::info("campaigns done in {:.1f} s", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  const auto failed = std::count_if(campaigns.begin(), campaigns.end(), [](const SweepCampaign& c) { return !c.error.empty(); });
  if (failed > 0) {
    std::cerr << failed << " of " << campaigns.size() << " campaigns could not be run (see above); the others are kept, and `asiarch sweep` "
              << "again resumes the sweep" << std::endl;
    const bool bad_input = std::all_of(campaigns.begin(), campaigns.end(), [](const SweepCampaign& c) { return c.error.empty() || c.foreign; });
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
