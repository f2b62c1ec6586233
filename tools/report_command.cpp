// asiarch report: DIR/report/index.html, one self-contained page about a campaign: its summary,
// the best architectures against the baselines with their programs and motivations, the lineage
// drawn by Graphviz, and plots drawn by gnuplot (embedded, so the page needs no other file).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <set>

#include "campaign/campaign.h"
#include "campaign/run_recorder.h"
#include "common/virtual_time.h"
#include "storage/lineage.h"
#include "tools/commands.h"
#include "tools/plots.h"

namespace asiarch::tools {
namespace {

// Campaigns with at most this many trained architectures are drawn whole; larger ones as the
// ancestry of the top architectures and of the best breakthroughs, so the graph stays readable.
constexpr size_t kWholeGraphLimit = 120;
constexpr size_t kGraphBreakthroughs = 25;

std::string html_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A dot string's contents: quotes and backslashes escaped, line breaks as dot's \n.
std::string dot_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* const kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t group = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) group |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) group |= static_cast<unsigned char>(bytes[i + 2]);
    out += kDigits[(group >> 18) & 63];
    out += kDigits[(group >> 12) & 63];
    out += i + 1 < bytes.size() ? kDigits[(group >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kDigits[group & 63] : '=';
  }
  return out;
}

// The baselines' best loss and accuracy at one fidelity: the bar a breakthrough clears at verify.
struct Bar {
  double loss = INFINITY, accuracy = -INFINITY;
};

Bar baseline_bar(const storage::Lineage& lineage, msg::Fidelity fidelity) {
  Bar bar;
  for (const auto& [id, entry] : lineage.archs()) {
    const auto& outcome = fidelity == msg::Fidelity::VERIFY ? entry.verify : entry.explore;
    if (!entry.baseline() || !outcome || !outcome->scored()) continue;
    bar.loss = std::min(bar.loss, outcome->loss);
    bar.accuracy = std::max(bar.accuracy, outcome->accuracy);
  }
  return bar;
}

std::string plot_image(const Plot& plot, const std::filesystem::path& base) {
  return "<figure><img alt=\"" + html_escaped(plot.title) + "\" src=\"data:image/svg+xml;base64," + base64(render_plot(plot, base)) +
         "\"><figcaption>" + html_escaped(plot.title) + " (" + base.filename().string() + ".svg, .png, .dat and .gp beside this page)</figcaption></figure>\n";
}

// "simulated" or "measured": what a campaign's GPU hours and throughputs are.
std::string figures_kind(const Scenario& scenario) { return scenario.mode == Mode::Simulation ? "simulated" : "measured"; }

std::string campaign_plots(const std::vector<storage::Judgment>& judgments, const Scenario& scenario, const std::filesystem::path& report_dir) {
  const std::string hours = "GPU hours (" + figures_kind(scenario) + ")";
  const size_t pool_size = scenario.campaign.pool_size;
  Plot fitness{"Fitness of every scored result over the campaign", hours, "fitness", {}, {}};
  PlotSeries explore{"explore", "points pt 7 ps 0.4 lc rgb '#9a9a9a'", {}}, verify{"verify", "points pt 7 ps 0.7 lc rgb '#1f77b4'", {}},
      found{"breakthrough", "points pt 3 ps 1.4 lw 2 lc rgb '#d62728'", {}}, baselines{"baseline", "points pt 5 ps 0.8 lc rgb '#2ca02c'", {}};
  Plot pool{"The pool's best over the campaign (explore fitness)", hours, "explore fitness", {"set key right bottom"}, {}};
  PlotSeries best{"best", "steps lw 2 lc rgb '#d62728'", {}}, pool_mean{"mean of the top " + std::to_string(pool_size), "steps lw 2 lc rgb '#1f77b4'", {}};
  Plot pareto{"Quality against throughput at explore scale", "training tokens per second (" + figures_kind(scenario) + ")", "explore fitness",
              {"set key right bottom"}, {}};
  PlotSeries candidates{"candidate", "points pt 7 ps 0.4 lc rgb '#9a9a9a'", {}}, starts{"baseline", "points pt 5 ps 1 lc rgb '#2ca02c'", {}},
      front{"Pareto front", "linespoints pt 7 ps 0.8 lw 2 lc rgb '#d62728'", {}};

  std::vector<double> pool_fitness;  // best first
  double min_speed = INFINITY, max_speed = 0;
  for (const storage::Judgment& j : judgments) {
    if (!j.scored) continue;
    const std::pair<double, double> point{j.gpu_hours, j.fitness};
    if (j.fidelity == msg::Fidelity::VERIFY) {
      (j.breakthrough ? found : verify).points.push_back(point);
      continue;
    }
    (j.baseline ? baselines : explore).points.push_back(point);
    pool_fitness.insert(std::upper_bound(pool_fitness.begin(), pool_fitness.end(), j.fitness, std::greater<double>()), j.fitness);
    if (pool_fitness.size() > pool_size) pool_fitness.pop_back();
    best.points.emplace_back(j.gpu_hours, pool_fitness.front());
    double sum = 0;
    for (double f : pool_fitness) sum += f;
    pool_mean.points.emplace_back(j.gpu_hours, sum / static_cast<double>(pool_fitness.size()));
    (j.baseline ? starts : candidates).points.emplace_back(j.tokens_per_second, j.fitness);
    if (j.tokens_per_second > 0) {
      min_speed = std::min(min_speed, j.tokens_per_second);
      max_speed = std::max(max_speed, j.tokens_per_second);
    }
  }
  // The front: no other result is both faster and fitter. Walk from the fastest down, keeping
  // each result fitter than every faster one.
  std::vector<std::pair<double, double>> all = candidates.points;
  all.insert(all.end(), starts.points.begin(), starts.points.end());
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second > b.second; });
  double fittest = -INFINITY;
  for (const auto& point : all) {
    if (point.second > fittest) {
      front.points.push_back(point);
      fittest = point.second;
    }
  }
  if (max_speed > 20 * min_speed) pareto.settings.push_back("set logscale x");

  fitness.series = {explore, baselines, verify, found};
  pool.series = {best, pool_mean};
  pareto.series = {candidates, starts, front};
  return plot_image(fitness, report_dir / "fitness") + plot_image(pool, report_dir / "pool_best") + plot_image(pareto, report_dir / "pareto");
}

// The architectures the lineage graph draws: every trained one in a small campaign; in a large
// one, the ancestry of the top architectures and of the best breakthroughs.
std::set<uint64_t> graph_nodes(const storage::Lineage& lineage, const std::vector<const storage::ArchEntry*>& top, bool& whole) {
  std::set<uint64_t> nodes;
  for (const auto& [id, entry] : lineage.archs()) {
    if (entry.explore && entry.explore->outcome != "rejected") nodes.insert(id);
  }
  whole = nodes.size() <= kWholeGraphLimit;
  if (whole) return nodes;
  nodes.clear();
  std::vector<const storage::ArchEntry*> roots = top;
  size_t breakthroughs = 0;
  for (const storage::ArchEntry* entry : lineage.ranking()) {
    if (entry->verified() && entry->verify->breakthrough && breakthroughs++ < kGraphBreakthroughs) roots.push_back(entry);
  }
  for (const storage::ArchEntry* root : roots) {
    for (uint64_t id : lineage.ancestry(root->id)) nodes.insert(id);
  }
  return nodes;
}

std::string lineage_graph(const storage::Lineage& lineage, const std::vector<const storage::ArchEntry*>& top, const std::filesystem::path& report_dir,
                          std::string& caption) {
  bool whole = false;
  const std::set<uint64_t> nodes = graph_nodes(lineage, top, whole);
  std::set<uint64_t> top_ids;
  for (const storage::ArchEntry* entry : top) top_ids.insert(entry->id);
  std::string dot = "digraph lineage {\n  graph [rankdir=TB, ranksep=0.35, nodesep=0.15, fontname=\"Sans\"];\n"
                    "  node [shape=ellipse, fontname=\"Sans\", fontsize=10, style=filled, fillcolor=\"#ffffff\"];\n"
                    "  edge [color=\"#777777\", arrowsize=0.6];\n";
  for (uint64_t id : nodes) {
    const storage::ArchEntry& e = *lineage.find(id);
    std::string label = arch_label(e);
    if (!e.baseline()) label += "\n" + e.operator_name;
    if (e.explore && e.explore->scored()) label += "\nfitness " + fixed(e.explore->fitness, 3);
    const bool breakthrough = e.verified() && e.verify->breakthrough;
    const char* fill = breakthrough ? "#f4a6a6" : e.baseline() ? "#d9ead3" : e.verified() ? "#cfe2f3" : "#ffffff";
    std::string attributes = "label=\"" + dot_escaped(label) + "\", tooltip=\"" + dot_escaped(e.motivation) + "\", fillcolor=\"" + fill + "\"";
    if (e.baseline()) attributes += ", shape=box";
    if (breakthrough) attributes += ", penwidth=2";
    if (top_ids.count(id)) attributes += ", color=\"#1f3b99\", penwidth=3, URL=\"#arch-" + std::to_string(id) + "\"";
    dot += "  a" + std::to_string(id) + " [" + attributes + "];\n";
    for (uint64_t parent : e.parent_ids) {
      if (nodes.count(parent)) dot += "  a" + std::to_string(parent) + " -> a" + std::to_string(id) + ";\n";
    }
  }
  dot += "}\n";
  caption = whole ? "every trained architecture (" + std::to_string(nodes.size()) + ")"
                  : std::to_string(nodes.size()) + " architectures: the ancestry of the top " + std::to_string(top.size()) +
                        " and of the best breakthroughs (the campaign trained more than " + std::to_string(kWholeGraphLimit) + ")";
  const std::string svg = render_graph_svg(dot, report_dir / "lineage");
  const size_t start = svg.find("<svg");
  return start == std::string::npos ? svg : svg.substr(start);
}

std::string delta(double value, double bar, int decimals) {
  if (!std::isfinite(bar)) return "";
  return " <span class=\"delta\">(" + std::string(value - bar >= 0 ? "+" : "") + fixed(value - bar, decimals) + ")</span>";
}

std::string summary_table(const CampaignSummary& s, const RecordedRun& run, const std::string& dir) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"run directory", dir},
      {"scenario", run.scenario.name + " (" + run.scenario.file + ")"},
      {"seed", std::to_string(run.seed)},
      {"status", s.finished ? "finished: " + s.stop_reason : (s.stop_reason.empty() ? "running" : s.stop_reason)},
      {"GPU slots", std::to_string(run.scenario.campaign.gpu_slots)},
      {"start programs", [&] {
         std::string names;
         for (const auto& name : run.scenario.campaign.start) names += (names.empty() ? "" : ", ") + name;
         return names + " (reference " + run.scenario.campaign.reference + ")";
       }()},
      {"events", grouped(s.events)},
      {"experiments", grouped(s.experiments) + " of " + grouped(s.target_experiments) + " (from " + grouped(s.proposals) + " proposals, " +
                          grouped(s.rejections) + " rejected before training)"},
      {"breakthroughs", std::to_string(s.breakthroughs)},
      {"GPU hours", grouped(s.gpu_hours, 1) + " (" + figures_kind(run.scenario) + ")"},
      {"virtual time", grouped(ns_to_hours(s.vtime_ns), 1) + " h"},
      {"digest", s.digest},
      {"recorded by", run.build},
  };
  std::string html = "<table class=\"summary\">\n";
  for (const auto& [name, value] : rows) {
    html += "<tr><th>" + html_escaped(name) + "</th><td>" + html_escaped(value) + "</td></tr>\n";
  }
  return html + "</table>\n";
}

std::string outcome_cells(const std::optional<storage::ArchOutcome>& o) {
  if (!o || !o->scored()) return "<td colspan=\"4\">" + html_escaped(o ? o->outcome : "not trained") + "</td>";
  return "<td>" + fixed(o->fitness, 4) + "</td><td>" + fixed(o->loss, 4) + "</td><td>" + fixed(o->accuracy, 3) + "</td><td>" +
         grouped(o->tokens_per_second, 0) + "</td>";
}

std::string baselines_table(const storage::Lineage& lineage) {
  std::string html = "<table><tr><th>id</th><th>baseline</th><th colspan=\"4\">explore: fitness, loss, accuracy, tokens/s</th>"
                     "<th colspan=\"4\">verify: fitness, loss, accuracy, tokens/s</th></tr>\n";
  for (const auto& [id, e] : lineage.archs()) {
    if (!e.baseline()) continue;
    html += "<tr><td>" + std::to_string(id) + "</td><td>" + html_escaped(arch_label(e)) + "</td>" + outcome_cells(e.explore) +
            outcome_cells(e.verify) + "</tr>\n";
  }
  return html + "</table>\n";
}

std::string top_table(const storage::Lineage& lineage, const std::vector<const storage::ArchEntry*>& top) {
  const Bar bars[2] = {baseline_bar(lineage, msg::Fidelity::EXPLORE), baseline_bar(lineage, msg::Fidelity::VERIFY)};
  std::string html = "<table><tr><th>rank</th><th>id</th><th>fidelity</th><th>fitness</th><th>loss &plusmn; 95% CI (vs best baseline)</th>"
                     "<th>accuracy &plusmn; 95% CI (vs best baseline)</th><th>seeds</th><th>tokens/s</th><th>operator</th><th>parents</th>"
                     "<th>breakthrough</th></tr>\n";
  for (size_t i = 0; i < top.size(); ++i) {
    const storage::ArchEntry& e = *top[i];
    const storage::ArchOutcome& o = *e.best_scored();
    const Bar& bar = bars[e.verified() ? 1 : 0];
    std::string parents;
    for (uint64_t p : e.parent_ids) parents += (parents.empty() ? "" : ", ") + std::to_string(p);
    html += std::string("<tr") + (o.breakthrough ? " class=\"breakthrough\"" : "") + "><td>" + std::to_string(i + 1) + "</td><td><a href=\"#arch-" +
            std::to_string(e.id) + "\">" + html_escaped(arch_label(e)) + "</a></td><td>" + (e.verified() ? "verify" : "explore") + "</td><td>" +
            fixed(o.fitness, 4) + "</td><td>" + html_escaped(interval_text(o, true, 4)) + delta(o.loss, bar.loss, 4) + "</td><td>" +
            html_escaped(interval_text(o, false, 3)) + delta(o.accuracy, bar.accuracy, 3) + "</td><td>" + seeds_text(o) + "</td><td>" +
            grouped(o.tokens_per_second, 0) + "</td><td>" + html_escaped(e.operator_name) + "</td><td>" + parents + "</td><td>" +
            html_escaped(verdict_text(o)) + "</td></tr>\n";
  }
  return html + "</table>\n";
}

std::string arch_sections(const storage::Lineage& lineage, const std::vector<const storage::ArchEntry*>& top) {
  std::string html;
  for (const storage::ArchEntry* e : top) {
    std::string ancestry;
    for (uint64_t id : lineage.ancestry(e->id)) {
      if (id != e->id) ancestry += (ancestry.empty() ? "" : " &rarr; ") + html_escaped(arch_label(*lineage.find(id)));
    }
    html += "<section class=\"arch\" id=\"arch-" + std::to_string(e->id) + "\"><h3>" + html_escaped(arch_label(*e)) + " &middot; " +
            html_escaped(e->operator_name) + (e->verified() && e->verify->breakthrough ? " &middot; <span class=\"bt\">breakthrough</span>" : "") +
            "</h3>\n<p><b>Motivation.</b> " + html_escaped(e->motivation) + "</p>\n" +
            (ancestry.empty() ? "" : "<p><b>Ancestry.</b> " + ancestry + "</p>\n") + "<pre>" + html_escaped(e->program) + "</pre></section>\n";
  }
  return html;
}

constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; background: #fff; }
h1 { border-bottom: 3px solid #1f3b99; padding-bottom: .3em; }
h2 { margin-top: 2em; color: #1f3b99; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #eef2fb; }
tr.breakthrough td { background: #fde2e2; }
.delta { color: #666; font-size: 12px; }
.bt { color: #c00; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: 1em; overflow-x: auto; font-size: 12px; }
figure { margin: 1em 0; }
figure img { width: 100%; max-width: 900px; border: 1px solid #eee; }
figcaption { color: #666; font-size: 13px; }
.graph { overflow: auto; max-height: 1400px; border: 1px solid #ddd; padding: .5em; }
section.arch { border-left: 4px solid #1f3b99; padding-left: 1em; margin: 1.5em 0; }
)";

int report(const std::string& dir, size_t n) {
  try {
    const CampaignSummary summary = read_summary(dir);  // before the store opens: one open environment per process
    const auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
    const RecordedRun run = read_recorded_run(*store);
    const storage::Lineage lineage(*store);
    std::vector<const storage::ArchEntry*> top = lineage.ranking();
    std::erase_if(top, [](const storage::ArchEntry* e) { return e->baseline(); });
    if (top.size() > n) top.resize(n);

    const std::filesystem::path report_dir = std::filesystem::path(dir) / "report";
    std::filesystem::create_directories(report_dir);
    std::string graph_caption;
    const std::string graph = lineage_graph(lineage, top, report_dir, graph_caption);
    const std::string plots = campaign_plots(lineage.judgments(), run.scenario, report_dir);

    std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>asiarch report: " + html_escaped(run.scenario.name) +
                       "</title><style>" + kStyle + "</style></head><body>\n<h1>Campaign " + html_escaped(run.scenario.name) + " (seed " +
                       std::to_string(run.seed) + ")</h1>\n" + summary_table(summary, run, dir) +
                       "<h2>Baselines</h2>\n<p>The programs the campaign started from; a breakthrough beats the best of them on both loss and "
                       "accuracy at verify scale.</p>\n" + baselines_table(lineage) +
                       "<h2>Best architectures</h2>\n<p>Verified architectures first, by verify fitness, then the others by explore fitness; loss "
                       "and accuracy are compared with the best baseline at the same fidelity.</p>\n" + top_table(lineage, top) +
                       "<h2>Lineage</h2>\n<p>" + html_escaped(graph_caption) +
                       ". Green boxes are baselines, red nodes breakthroughs, blue nodes other verified architectures, thick blue outlines the "
                       "best architectures "
                       "(click one for its program); hover a node for its motivation.</p>\n<div class=\"graph\" id=\"lineage\">" + graph +
                       "</div>\n<h2>Plots</h2>\n" + plots + "<h2>Programs of the best architectures</h2>\n" + arch_sections(lineage, top) +
                       "</body></html>\n";
    const std::filesystem::path index = report_dir / "index.html";
    std::ofstream out(index, std::ios::binary);
    out << html;
    out.close();
    if (!out) {
      std::cerr << "cannot write " << index.string() << "; check the disk and permissions" << std::endl;
      return 1;
    }
    std::cout << "wrote " << index.string() << " (" << top.size() << " best architectures, lineage of " << graph_caption << ")" << std::endl;
    return 0;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const ExternalToolError& e) {
    std::cerr << "the report could not draw its figures: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace

void add_report_commands(CLI::App& app, int& exit_code) {
  struct ReportArgs {
    std::string dir;
    size_t n = 10;
  };
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand(
      "report", "Write DIR/report/index.html: summary, best architectures against the baselines, lineage graph and plots, in one file");
  cmd->add_option("dir", args->dir, "Run directory (may still be running)")->required();
  cmd->add_option("-n", args->n, "How many of the best architectures to show")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = report(args->dir, args->n); });
}

}  // namespace asiarch::tools
