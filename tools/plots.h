#pragma once
// Figures through external programs: plots through gnuplot (Debian's gnuplot-nox) and graphs
// through Graphviz's dot. Each plot is written as a data file and a gnuplot script beside its
// SVG and PNG, so a figure can be restyled by editing the script and running gnuplot again.
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace asiarch::tools {

// An external program that is missing or failed: what() names it, its exit status and stderr.
class ExternalToolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs argv[0] (looked up in PATH) with stdout and stderr to files under `work_dir`; throws
// ExternalToolError when it cannot start or exits non-zero. `package` is the Debian package to
// name when it is missing.
void run_external(const std::vector<std::string>& argv, const std::filesystem::path& work_dir, const std::string& package);

struct PlotSeries {
  std::string title;  // legend entry; "" for none
  std::string style;  // gnuplot's "with" clause, e.g. "steps lw 1 lc rgb '#1f77b4'"
  std::vector<std::pair<double, double>> points;
};

struct Plot {
  std::string title, x_label, y_label;
  std::vector<std::string> settings;  // extra gnuplot commands, e.g. "set key left top"
  std::vector<PlotSeries> series;
};

// Writes BASE.dat, BASE.gp, BASE.svg and BASE.png (BASE is a path without extension) and returns
// the SVG's text. Series with no points are left out. Throws ExternalToolError when gnuplot fails.
std::string render_plot(const Plot& plot, const std::filesystem::path& base);

// Renders a Graphviz graph (dot language) to SVG text, keeping BASE.dot and BASE.svg.
std::string render_graph_svg(const std::string& dot_text, const std::filesystem::path& base);

// A colour per index from a fixed palette (the same budget or series keeps its colour).
std::string palette_colour(size_t index);

}  // namespace asiarch::tools
