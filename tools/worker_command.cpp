// asiarch worker: serve gpu-slots of a live campaign from this process (remote/remote_workers.h).
#include <signal.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <iostream>

#include "remote/remote_workers.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

std::atomic<bool> stop_requested{false};

void request_stop(int) { stop_requested = true; }

struct WorkerArgs {
  std::string connect;
  uint32_t slots = 1;
  std::string secret_file;
  std::string device;
};

int worker(const WorkerArgs& args) {
  const size_t colon = args.connect.rfind(':');
  WorkerOptions options;
  try {
    if (colon == std::string::npos || colon == 0) throw std::invalid_argument("no port");
    options.host = args.connect.substr(0, colon);
    size_t used = 0;
    const unsigned long port = std::stoul(args.connect.substr(colon + 1), &used);
    if (used != args.connect.size() - colon - 1 || port == 0 || port > 65535) throw std::invalid_argument("bad port");
    options.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    std::cerr << "--connect " << args.connect << ": write HOST:PORT, e.g. --connect 127.0.0.1:7100 (the run's --listen port)" << std::endl;
    return 2;
  }
  options.slots = args.slots;
  options.secret_file = args.secret_file;
  options.device = args.device;
  if (!options.device.empty() && !device_ready(options.device)) return 2;
  // Ctrl-C and SIGTERM end the worker between polls: its training threads are cancelled and
  // joined, and the run re-queues what it held.
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  spdlog::info("worker for {} with {} slot(s); Ctrl-C stops it", args.connect, options.slots);
  return serve_as_worker(options, stop_requested);
}

}  // namespace

void add_worker_commands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<WorkerArgs>();
  auto* cmd = app.add_subcommand(
      "worker", "Train a live campaign's jobs for a run started with `asiarch run --listen PORT` (here or on another machine)");
  cmd->add_option("--connect", args->connect, "The run's address, HOST:PORT (its --bind and --listen)")->required();
  cmd->add_option("--slots", args->slots, "Jobs trained at once (default 1)")->check(CLI::Range(1, 256));
  cmd->add_option("--secret-file", args->secret_file,
                  "File holding the run's worker secret: RUN_DIR/worker.secret, or the file given to `run --secret-file`")
      ->required();
  cmd->add_option("--device", args->device, "Where this worker trains: cpu, cuda (its slots spread over the GPUs) or cuda:N (default: the campaign's [live] device)");
  cmd->callback([args, &exit_code] { exit_code = worker(*args); });
}

}  // namespace asiarch::tools
