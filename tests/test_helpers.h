#pragma once
// Shared by the tests: driving the `asiarch` binary as a user would (run a command line, read
// its exit code and output), and scenarios made by editing a shipped scenario's text.
// ASIARCH_BIN and ASIARCH_SOURCE_DIR come from tests/CMakeLists.txt.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <sstream>
#include <string>

#include "actors/actor_state.h"
#include "scenario/scenario.h"

namespace asiarch::testing {

struct Result {
  int code;            // exit code, -1 when killed by a signal
  std::string output;  // stdout and stderr
};

inline Result sh(const std::string& command) {
  Result r{-1, ""};
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed for: " + command);
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) r.output.append(buffer, n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `asiarch ARGS` as a command line.
inline std::string cli(const std::string& args) { return std::string(ASIARCH_BIN) + " " + args; }
// A path in the source tree, e.g. source("scenarios/sim-smoke.toml").
inline std::string source(const std::string& path) { return std::string(ASIARCH_SOURCE_DIR) + "/" + path; }

// This test process's scratch folder under the system temp folder. It is removed with
// everything in it when the process exits, so that test runs leave nothing behind; forked
// children leave with _exit and do not remove it.
inline const std::filesystem::path& scratch_root() {
  struct Root {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("asiarch-test-" + std::to_string(::getpid()));
    Root() {
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
    }
    ~Root() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Root root;
  return root.path;
}

// A path in this process's scratch folder, removed if it exists.
inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = scratch_root() / name;
  std::filesystem::remove_all(dir);
  return dir;
}

inline std::string last_line(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  return trimmed.substr(trimmed.rfind('\n') + 1);
}

inline std::string write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path.string();
}

// A file's whole contents ("" when it cannot be read).
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A shipped file's text with one piece replaced; throws when the piece is not there.
inline std::string edited_text(const std::string& file, const std::string& from, const std::string& to) {
  std::string text = read_file(source(file));
  const size_t at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error(file + " does not contain '" + from + "'");
  return text.replace(at, from.size(), to);
}

// Drives one actor state with one payload and returns the decoded outbox.
struct Delivery {
  std::string bytes;
  msg::CanonicalView<msg::Outbox> view;
  explicit Delivery(std::string b) : bytes(std::move(b)), view(bytes) {}
  capnp::List<msg::Outgoing>::Reader messages() { return view.root().getMessages(); }
};

template <typename Fill>
Delivery deliver(ActorState& state, Fill fill) {
  capnp::MallocMessageBuilder message;
  auto event = message.initRoot<msg::Event>();
  event.setSeq(1);
  event.setFrom("test");
  fill(event.initPayload());
  msg::CanonicalView<msg::Event> canonical(msg::canonical_bytes(event.asReader()));
  msg::OutboxWriter out;
  state.handle(canonical.root(), out);
  return Delivery(out.finish());
}

// A shipped scenario with one piece of its text replaced, e.g.
// edited_scenario("scenarios/sim-smoke.toml", "max_experiments = 100", "max_experiments = 10").
// Runs record the text, so a test changes the text, never the parsed struct.
inline Scenario edited_scenario(const std::string& file, const std::string& from, const std::string& to) {
  return parse_scenario(edited_text(file, from, to), source(file));
}

// A live scenario small enough that a job trains in a second or two on one thread.
inline const char* kTinyLiveScenario = R"(name = "live-tiny"
mode = "live"
seed = 3

[campaign]
max_experiments = 5
gpu_slots = 2
start = ["deltanet", "linear_attention"]
reference = "deltanet"

[model]
param_tolerance = 1.2

[fidelity]
promote_top = 1

[fidelity.explore]
d_model = 32
layers = 1
steps = 12
batch = 8

[fidelity.verify]
d_model = 32
layers = 1
steps = 16
batch = 8

[task.mqar]
vocab = 64
seq_len = 32
kv_pairs = 4
test_examples = 32

[task.lm]
seq_len = 32
eval_bytes = 2048

[live]
threads = 1
measure_context = 64
)";

// Starts a command line in the background, its stdout and stderr going to `output` (discarded
// by default); returns its pid.
inline pid_t start(const std::string& command, const std::string& output = "/dev/null") {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + command + " > '" + output + "' 2>&1").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// `asiarch ARGS` started in the background and paused at `pause_at` (storage/crash_point.h)
// until `release` exists. Returns its pid once it has paused, or -1 when it ended first. A test
// reads the run while it certainly runs, however fast the machine, then calls finish_paused.
inline pid_t start_paused(const std::string& pause_at, const std::filesystem::path& release, const std::string& args) {
  const pid_t pid = start("env ASIARCH_PAUSE_AT=" + pause_at + " ASIARCH_PAUSE_UNTIL=" + release.string() + " " + cli(args));
  while (!std::filesystem::exists(release.string() + ".paused")) {
    if (::waitpid(pid, nullptr, WNOHANG) != 0) return -1;
    ::usleep(2000);
  }
  return pid;
}

// Lets a run started by start_paused go on and waits for it; returns its wait status, or -1.
inline int finish_paused(pid_t pid, const std::filesystem::path& release) {
  write_file(release, "");
  int status = 0;
  const bool waited = ::waitpid(pid, &status, 0) == pid;
  std::filesystem::remove(release);
  std::filesystem::remove(release.string() + ".paused");
  return waited ? status : -1;
}

// `asiarch ARGS` with its process killed by SIGKILL at the crash point `crash_at`
// (storage/crash_point.h): a kill at a chosen event, the same on an idle machine and a busy one.
inline Result crashed_at(const std::string& crash_at, const std::string& args) {
  return sh("ASIARCH_CRASH_AT=" + crash_at + " exec " + cli(args));
}

}  // namespace asiarch::testing
