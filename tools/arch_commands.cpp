// asiarch arch list | show | check | ops
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "lang/program.h"
#include "training/training.h"
#include "tools/commands.h"

namespace asiarch::tools {

ProgramSource load_program(const std::string& name_or_file) {
  if (const lang::Baseline* b = lang::find_baseline(name_or_file)) return {b->text, b->name};
  if (std::filesystem::is_regular_file(name_or_file)) {
    std::ifstream in(name_or_file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return {text.str(), name_or_file};
  }
  throw std::invalid_argument("'" + name_or_file + "' is neither a shipped program nor a file; see `asiarch arch list`, or give a path to a program file");
}

namespace {

struct ShapeArgs {
  int64_t d_model = lang::ModelShape{}.d_model;
  int64_t context = lang::ModelShape{}.context;
  lang::ModelShape shape() const { return {d_model, context}; }
};

void add_shape_options(CLI::App* cmd, ShapeArgs& shape) {
  cmd->add_option("--d-model", shape.d_model, "Model width D the program is checked at")->check(CLI::Range(1, 1 << 16))->capture_default_str();
  cmd->add_option("--context", shape.context, "Context length T for FLOPs and state")->check(CLI::Range(1, 1 << 24))->capture_default_str();
}

void print_figures(const lang::Figures& f, const lang::ModelShape& shape) {
  std::cout << "at D=" << shape.d_model << ", T=" << shape.context << ":\n"
            << "  parameters:       " << grouped(static_cast<uint64_t>(f.params)) << " per layer\n"
            << "  FLOPs per token:  " << grouped(f.flops_per_token, 0) << " per layer\n"
            << "  recurrent state:  " << grouped(static_cast<uint64_t>(f.state_size)) << " floats per sequence per layer\n"
            << "  causal:           " << (f.causal ? "yes" : "NO: an operator looks at future tokens") << "\n"
            << "  sub-quadratic:    " << (f.subquadratic ? "yes" : "NO: cost per token grows with the context") << "\n";
}

int list(const ShapeArgs& args) {
  std::printf("%-20s %12s %16s %14s  %s\n", "name", "params", "FLOPs/token", "state", "notes");
  for (const auto* shipped : {&lang::baselines(), &lang::discoveries()}) {
    for (const auto& b : *shipped) {
      const lang::Figures f = lang::derive(lang::parse(b.text, b.name), args.shape());
      std::printf("%-20s %12s %16s %14s  %s\n", b.name.c_str(), grouped(static_cast<uint64_t>(f.params)).c_str(),
                  grouped(f.flops_per_token, 0).c_str(), grouped(static_cast<uint64_t>(f.state_size)).c_str(),
                  b.reference_only ? "reference only (quadratic)" : b.discovery ? "discovered by ASI-Arch (arXiv:2507.18074)" : "");
    }
  }
  std::cout << "(per layer, at D=" << args.d_model << ", T=" << args.context << ")" << std::endl;
  return 0;
}

// The checks by measurement at the explore fidelity's probe size; 1 naming the failed check.
int measure(const lang::Program& program) {
  const training::MeasureConfig config = training::ExperimentConfig{}.measure;
  std::cout << "checks by measurement at D=" << config.d_model << ", T=" << config.context << ":\n";
  for (const training::MeasuredCheck& check : training::measure_checks(program, config)) {
    std::printf("  %-11s %-7s %s\n", check.check.c_str(), check.passed ? "passed" : "FAILED", check.detail.c_str());
    if (!check.passed) {
      std::cerr << "failed check: " << check.check << std::endl;
      return 1;
    }
  }
  return 0;
}

int show_or_check(const std::string& what, const ShapeArgs& args, bool show, bool measured) {
  try {
    const ProgramSource source = load_program(what);
    const lang::Program program = lang::parse(source.text, source.file);
    lang::check(program, args.shape(), source.file);
    const lang::Figures figures = lang::derive(program, args.shape());
    if (show) std::cout << lang::print(program) << "\n";
    else std::cout << source.file << ": ok, the program type-checks\n";
    print_figures(figures, args.shape());
    std::cout << "structural hash:    " << lang::structural_hash(program) << std::endl;
    return measured ? measure(program) : 0;
  } catch (const lang::ProgramError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
}

int ops() {
  // The attribute column is as wide as its widest entry (fir's k=, dirac=, noise=).
  std::vector<std::string> attrs;
  size_t width = 0;
  for (const auto& op : lang::operators()) {
    std::string keys;
    for (const auto& a : op.attrs) keys += (keys.empty() ? "" : ", ") + a + "=";
    width = std::max(width, keys.size());
    attrs.push_back(std::move(keys));
  }
  for (size_t i = 0; i < attrs.size(); ++i) {
    const lang::OpInfo& op = lang::operators()[i];
    std::printf("%-18s %-*s %s%s\n", op.name.c_str(), static_cast<int>(width), attrs[i].c_str(), op.summary.c_str(),
                op.causal ? "" : " [not causal]");
  }
  return 0;
}

}  // namespace

void add_arch_commands(CLI::App& app, int& exit_code) {
  auto* arch = app.add_subcommand("arch", "The architecture language: shipped programs, checks and derived figures");
  arch->require_subcommand(1);

  auto list_shape = std::make_shared<ShapeArgs>();
  auto* list_cmd = arch->add_subcommand("list", "List the shipped programs (the baselines) with their figures");
  add_shape_options(list_cmd, *list_shape);
  list_cmd->callback([list_shape, &exit_code] { exit_code = list(*list_shape); });

  for (const bool show : {true, false}) {
    auto target = std::make_shared<std::string>();
    auto shape = std::make_shared<ShapeArgs>();
    auto* cmd = show ? arch->add_subcommand("show", "Print a program with its parameter count, FLOPs, state size and hash")
                     : arch->add_subcommand("check", "Type-check a program: exit 0 when valid, 2 with FILE:LINE and the fix when not, "
                                                "1 when a check by measurement fails (--measure)");
    cmd->add_option("program", *target, "A shipped program's name (see `arch list`) or a program file")->required();
    add_shape_options(cmd, *shape);
    auto measured = std::make_shared<bool>(false);
    if (!show) {
      cmd->add_flag("--measure", *measured,
                    "Then build a probe model and run the checks by measurement (causality, complexity, parameters, finite); "
                    "exit 1 naming the first that fails");
    }
    cmd->callback([target, shape, show, measured, &exit_code] { exit_code = show_or_check(*target, *shape, show, *measured); });
  }

  auto* ops_cmd = arch->add_subcommand("ops", "List the operators of the language (lang/LANGUAGE.md has the details)");
  ops_cmd->callback([&exit_code] { exit_code = ops(); });
}

}  // namespace asiarch::tools
