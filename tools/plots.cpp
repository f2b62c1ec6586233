#include "tools/plots.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace asiarch::tools {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw ExternalToolError("cannot write " + path.string() + "; check the disk and permissions");
}

// A gnuplot single-quoted string: nothing is escaped but the quote itself, which is doubled.
std::string gnuplot_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", value);
  return buffer;
}

}  // namespace

void run_external(const std::vector<std::string>& argv, const std::filesystem::path& work_dir, const std::string& package) {
  const std::filesystem::path err_path = work_dir / (argv.at(0) + ".stderr");
  const std::filesystem::path out_path = work_dir / (argv.at(0) + ".stdout");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    throw ExternalToolError("cannot run " + argv[0] + ": " + std::strerror(spawn_error) + "; install Debian's " + package +
                            " (`make deps` does)");
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string errors = read_text(err_path);
  std::filesystem::remove(err_path);
  std::filesystem::remove(out_path);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status)) : "was killed by a signal";
    throw ExternalToolError(argv[0] + " " + how + (errors.empty() ? "" : ":\n" + errors));
  }
}

std::string render_plot(const Plot& plot, const std::filesystem::path& base) {
  const std::filesystem::path data = base.string() + ".dat", script = base.string() + ".gp";
  std::string data_text, plot_clauses;
  size_t index = 0;
  for (const PlotSeries& series : plot.series) {
    if (series.points.empty()) continue;
    data_text += "# " + series.title + "\n";
    for (const auto& [x, y] : series.points) data_text += number(x) + " " + number(y) + "\n";
    data_text += "\n\n";  // two blank lines: the next gnuplot index
    plot_clauses += std::string(plot_clauses.empty() ? "" : ", \\\n     ") + gnuplot_quoted(data.string()) + " index " +
                    std::to_string(index++) + " using 1:2 with " + series.style + " " +
                    (series.title.empty() ? "notitle" : "title " + gnuplot_quoted(series.title));
  }
  // An empty plot still renders, with a note, so that a report never lacks a figure's place.
  if (plot_clauses.empty()) plot_clauses = "NaN notitle";
  std::string gp = "set terminal svg size 900,560 dynamic noenhanced font 'Sans,12' background rgb 'white'\n"
                   "set output " + gnuplot_quoted(base.string() + ".svg") + "\n"
                   "set title " + gnuplot_quoted(plot.title) + "\n"
                   "set xlabel " + gnuplot_quoted(plot.x_label) + "\n"
                   "set ylabel " + gnuplot_quoted(plot.y_label) + "\n"
                   "set grid\nset key left top\n";
  if (index == 0) gp += "set xrange [0:1]\nset yrange [0:1]\nset label 'no data yet' at 0.5,0.5 center\n";
  for (const std::string& setting : plot.settings) gp += setting + "\n";
  gp += "plot " + plot_clauses + "\n"
        "set terminal pngcairo size 1200,750 noenhanced font 'Sans,12' background rgb 'white'\n"
        "set output " + gnuplot_quoted(base.string() + ".png") + "\n"
        "replot\nunset output\n";
  write_text(data, data_text);
  write_text(script, gp);
  run_external({"gnuplot", script.string()}, base.parent_path(), "gnuplot-nox");
  return read_text(base.string() + ".svg");
}

std::string render_graph_svg(const std::string& dot_text, const std::filesystem::path& base) {
  const std::filesystem::path dot = base.string() + ".dot", svg = base.string() + ".svg";
  write_text(dot, dot_text);
  run_external({"dot", "-Tsvg", "-o", svg.string(), dot.string()}, base.parent_path(), "graphviz");
  return read_text(svg);
}

std::string palette_colour(size_t index) {
  static const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                         "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kPalette[index % (sizeof kPalette / sizeof kPalette[0])];
}

}  // namespace asiarch::tools
