// asiarch: autonomous discovery of linear-attention token mixers.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <kj/exception.h>
#include <malloc.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>

#include "lang/program.h"
#include "training/training.h"
#include "storage/damage_guard.h"
#include "tools/commands.h"

namespace asiarch::tools {

const CLI::Validator& seed_text() {
  static const CLI::Validator validator(
      [](std::string& text) -> std::string {
        errno = 0;
        if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && (std::strtoull(text.c_str(), nullptr, 10), errno == 0)) return {};
        return "a seed is a whole number from 0 to 18446744073709551615, not '" + text + "'";
      },
      "SEED");
  return validator;
}

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

CLI::Option* add_device_option(CLI::App* cmd, std::string& device) {
  return cmd->add_option("--device", device, "Where to train: cpu, cuda (the first GPU) or cuda:N; CUDA needs a CUDA build (README, \"Training on GPUs\")")
      ->default_str("cpu");
}

bool device_ready(const std::string& device) {
  if (device == "cpu") return true;  // without loading libtorch
  const training::DeviceInfo info = training::device_info(device);
  if (info.problem.empty()) return true;
  std::cerr << "device " << device << ": " << info.problem << std::endl;
  return false;
}

std::string device_name(const std::string& device) { return device == "cpu" ? device : training::device_info(device).name; }

void set_steps(training::TrainConfig& config, int64_t steps) {
  config.warmup_steps = config.warmup_steps * steps / config.steps;
  config.steps = steps;
}

}  // namespace asiarch::tools

namespace {

int run_cli(int argc, char** argv) {
  // Keep freed memory in the heap: by default glibc hands it back to the kernel and every
  // campaign step page-faults it in again, which made `bench sim` swing between 1.1 s and 1.8 s
  // on these VMs (docs/ARCHITECTURE.md, "Timing traps").
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  // Progress and diagnostics go to stderr, so stdout carries only results.
  spdlog::set_default_logger(spdlog::stderr_color_mt("asiarch"));
  spdlog::set_pattern("%^[%l]%$ %v");

  CLI::App app{
      "asiarch: an engine that proposes linear-attention token mixers, trains and checks them, learns from\n"
      "the results, and records every step so that a campaign replays bit for bit."};
  app.require_subcommand(1);
  int exit_code = 0;
  asiarch::tools::add_campaign_commands(app, exit_code);
  asiarch::tools::add_arch_commands(app, exit_code);
  asiarch::tools::add_bench_commands(app, exit_code);
  asiarch::tools::add_check_commands(app, exit_code);
  asiarch::tools::add_cognition_commands(app, exit_code);
  asiarch::tools::add_train_commands(app, exit_code);
  asiarch::tools::add_compare_commands(app, exit_code);
  asiarch::tools::add_lineage_commands(app, exit_code);
  asiarch::tools::add_sweep_commands(app, exit_code);
  asiarch::tools::add_report_commands(app, exit_code);
  asiarch::tools::add_export_commands(app, exit_code);
  asiarch::tools::add_worker_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const kj::Exception& e) {
    // Commands turn damaged messages into clear errors; this is the net under them.
    std::cerr << "a stored message could not be decoded: " << e.getDescription().cStr() << std::endl;
    return 1;
  } catch (const asiarch::lang::ProgramError& e) {  // bad input that a command did not catch itself
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return 1;
  }
  return exit_code;
}

// The commands that read a run store someone may have damaged run under the damage guard.
bool reads_a_store(int argc, char** argv) {
  static const std::set<std::string> kReaders = {"inspect", "check", "replay", "resume", "top", "lineage", "report", "export", "retrain"};
  return argc > 1 && kReaders.count(argv[1]) > 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (reads_a_store(argc, argv)) return asiarch::storage::run_guarded([&] { return run_cli(argc, argv); });
  return run_cli(argc, argv);
}
