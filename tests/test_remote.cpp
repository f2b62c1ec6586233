// Remote gpu-slots: a live campaign whose jobs are trained by `asiarch worker` processes over
// CAF's middleman on loopback. A worker killed while it holds a job has that job re-queued, the
// campaign completes with every job ended once (`asiarch check`), and the run replays from its
// log with no worker running. A worker without the run's secret is refused.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include "test_helpers.h"

using namespace asiarch::testing;

namespace {

// A TCP port on loopback that nothing listens on right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Waits until `ready` holds, checking every 50 ms for up to `seconds`.
template <class Ready>
bool eventually(Ready ready, int seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ready();
}

bool contains(const std::filesystem::path& file, const std::string& text) { return read_file(file).find(text) != std::string::npos; }

// The exit code of `pid` once it ends within `seconds`; -1 (and killed) when it does not or
// when a signal ended it.
int exit_code_within(pid_t pid, int seconds) {
  int status = 0;
  const bool ended = eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, seconds);
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The tiny live scenario with jobs of a few seconds, long enough to kill a worker during one.
std::string scenario_with_longer_jobs() {
  std::string text = kTinyLiveScenario;
  for (const std::string steps : {"steps = 12\n", "steps = 16\n"}) {
    const size_t at = text.find(steps);
    REQUIRE(at != std::string::npos);
    text.replace(at, steps.size(), "steps = 100\n");
  }
  return text;
}

// The resident memory of process `pid`, in KiB (0 when it cannot be read).
long resident_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// Connects to 127.0.0.1:port, sends `bytes`, and returns what comes back until the peer closes or
// 10 s pass.
std::string send_and_read(int port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[256];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return answer;
}

// A secret file readable by its owner only, as a worker requires.
std::string private_secret(const std::filesystem::path& dir) {
  const std::string secret = write_file(dir / "secret", "a test secret\n");
  std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return secret;
}

std::string digest_in(const std::string& output) {
  const std::string line = last_line(output);
  REQUIRE(line.rfind("digest: ", 0) == 0);
  return line.substr(8);
}

}  // namespace

TEST_CASE("a live campaign trains on two remote workers, survives one killed mid-job, and replays without them", "[remote]") {
  const auto dir = fresh_dir("remote");
  const auto logs = fresh_dir("remote-logs");
  std::filesystem::create_directories(logs);
  const std::string scenario = write_file(logs / "scenario.toml", scenario_with_longer_jobs());
  const std::string secret = private_secret(logs);
  const std::string port = std::to_string(free_port());
  const std::string worker = "worker --connect 127.0.0.1:" + port + " --secret-file " + secret;

  // The second worker starts before the run listens: it retries until the run is up. The run
  // starts once the worker has found no run, however long the worker took to start.
  const pid_t steady = start(cli(worker + " --slots 2"), (logs / "steady.log").string());
  const bool steady_waited = eventually([&] { return contains(logs / "steady.log", "no run listens"); }, 60);
  const pid_t run = start(cli("run " + scenario + " --out " + dir.string() + " --listen " + port + " --secret-file " + secret),
                          (logs / "run.log").string());
  const pid_t doomed = start(cli(worker + " --slots 1"), (logs / "doomed.log").string());

  // Kill the one-slot worker while it trains a job (it is the least busy, so it gets one).
  const bool doomed_got_job = eventually([&] { return contains(logs / "doomed.log", "running job"); }, 60);
  ::kill(doomed, SIGKILL);
  ::waitpid(doomed, nullptr, 0);
  INFO("doomed worker:\n" << read_file(logs / "doomed.log"));
  REQUIRE(doomed_got_job);
  CHECK(!contains(logs / "doomed.log", "finished job"));

  const int run_code = exit_code_within(run, 120);
  ::kill(steady, SIGTERM);
  const int steady_code = exit_code_within(steady, 30);
  const std::string run_output = read_file(logs / "run.log");
  INFO("run:\n" << run_output << "\nsteady worker:\n" << read_file(logs / "steady.log"));
  REQUIRE(run_code == 0);
  CHECK(steady_code == 0);  // SIGTERM ends a worker cleanly
  CHECK(steady_waited);
  CHECK(contains(logs / "steady.log", "running job"));
  CHECK(run_output.find("left") != std::string::npos);
  CHECK(run_output.find("re-queued what it held: job") != std::string::npos);
  const std::string digest = digest_in(run_output);

  // Every job ended exactly once, and the log replays twice to its digest with no worker up.
  const Result check = sh(cli("check " + dir.string()));
  INFO(check.output);
  CHECK(check.code == 0);
  for (int round = 0; round < 2; ++round) {
    const Result replay = sh(cli("replay " + dir.string()));
    INFO(replay.output);
    REQUIRE(replay.code == 0);
    CHECK(digest_in(replay.output) == digest);
  }
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(logs);
}

TEST_CASE("a remote worker must present the run's secret, bad usage exits 2", "[remote]") {
  const auto dir = fresh_dir("remote-secret");
  const auto logs = fresh_dir("remote-secret-logs");
  std::filesystem::create_directories(logs);
  const std::string scenario = write_file(logs / "scenario.toml", kTinyLiveScenario);
  const std::string port = std::to_string(free_port());
  const pid_t run = start(cli("run " + scenario + " --out " + dir.string() + " --listen " + port), (logs / "run.log").string());

  // The run makes its secret: random, private to the user.
  const auto secret_file = dir / "worker.secret";
  REQUIRE(eventually([&] { return contains(logs / "run.log", "listening for remote workers"); }, 30));
  const std::string secret = read_file(secret_file);
  CHECK(secret.size() == 65);  // 32 random bytes in hex, and a newline
  struct stat info {};
  REQUIRE(::stat(secret_file.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);

  const std::string wrong = write_file(logs / "wrong", secret.substr(0, 63) + (secret[63] == '0' ? "1" : "0") + "\n");
  const std::string connect = "worker --connect 127.0.0.1:" + port;
  const Result refused = sh(cli(connect + " --secret-file " + wrong));
  INFO(refused.output);
  CHECK(refused.code == 2);
  CHECK(refused.output.find("refused this worker: wrong secret") != std::string::npos);
  CHECK(refused.output.find("running job") == std::string::npos);

  // Strangers without the secret, each sending a CAF handshake header (client_handshake) that
  // announces a 256 MiB payload: the gate reads 48 bytes of each, answers 'R' and hangs up, and
  // the run's memory stays put (CAF itself would allocate the payload).
  std::string header(48, '\0');
  header[0] = 0x01;
  header[4] = 0x10;  // payload_len, big-endian: 0x10000000 bytes
  const long before = resident_kib(run);
  for (int stranger = 0; stranger < 3; ++stranger) CHECK(send_and_read(std::stoi(port), header) == "R");
  const long after = resident_kib(run);
  INFO("resident memory " << before << " KiB before the strangers, " << after << " KiB after");
  CHECK(before > 0);
  CHECK(after - before < 64 * 1024);

  // The right secret is welcomed and given work, once the run has jobs waiting (its first jobs
  // come after the engineer's functional probe has loaded libtorch).
  REQUIRE(eventually([&] { return contains(logs / "run.log", "wait for a remote worker"); }, 120));
  const pid_t welcomed = start(cli(connect + " --secret-file " + secret_file.string()), (logs / "welcomed.log").string());
  const bool given_work = eventually([&] { return contains(logs / "welcomed.log", "running job"); }, 30);
  ::kill(welcomed, SIGKILL);
  ::kill(run, SIGKILL);
  ::waitpid(welcomed, nullptr, 0);
  ::waitpid(run, nullptr, 0);
  INFO("run:\n" << read_file(logs / "run.log") << "\nworker:\n" << read_file(logs / "welcomed.log"));
  CHECK(given_work);
  CHECK(contains(logs / "run.log", "refused a worker"));

  CHECK(sh(cli("worker --connect nowhere --secret-file " + secret_file.string())).code == 2);
  CHECK(sh(cli(connect + " --secret-file " + (logs / "missing").string())).code == 2);
  CHECK(sh(cli("run " + source("scenarios/sim-smoke.toml") + " --out " + (logs / "sim").string() + " --listen " + port)).code == 2);
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(logs);
}

TEST_CASE("a frozen worker's job goes to another worker once it has been silent for 20 s", "[remote]") {
  const auto dir = fresh_dir("remote-frozen");
  const auto logs = fresh_dir("remote-frozen-logs");
  std::filesystem::create_directories(logs);
  const std::string scenario = write_file(logs / "scenario.toml", scenario_with_longer_jobs());
  const std::string secret = private_secret(logs);
  const std::string port = std::to_string(free_port());
  const std::string worker = "worker --connect 127.0.0.1:" + port + " --secret-file " + secret;
  const pid_t run = start(cli("run " + scenario + " --out " + dir.string() + " --listen " + port + " --secret-file " + secret),
                          (logs / "run.log").string());
  const pid_t frozen = start(cli(worker + " --slots 1"), (logs / "frozen.log").string());
  // Stopped (as by SIGSTOP or a hung machine) while it holds a job: its connection stays open.
  const bool frozen_got_job = eventually([&] { return contains(logs / "frozen.log", "running job"); }, 60);
  ::kill(frozen, SIGSTOP);
  // No other worker until the run has found the frozen one silent: the campaign cannot end
  // before, however fast the other worker would train.
  const bool found_silent = eventually([&] { return contains(logs / "run.log", "fell silent for 20 s"); }, 90);
  const pid_t steady = start(cli(worker + " --slots 2"), (logs / "steady.log").string());

  const int run_code = exit_code_within(run, 240);
  ::kill(frozen, SIGCONT);
  ::kill(frozen, SIGTERM);
  ::kill(steady, SIGTERM);
  const int frozen_code = exit_code_within(frozen, 30);
  const int steady_code = exit_code_within(steady, 30);
  const std::string run_output = read_file(logs / "run.log");
  INFO("run:\n" << run_output << "\nfrozen worker:\n" << read_file(logs / "frozen.log") << "\nsteady worker:\n" << read_file(logs / "steady.log"));
  REQUIRE(frozen_got_job);
  REQUIRE(found_silent);
  REQUIRE(run_code == 0);
  CHECK(frozen_code == 0);
  CHECK(steady_code == 0);
  CHECK(run_output.find("remote worker 1 fell silent for 20 s") != std::string::npos);
  CHECK(run_output.find("re-queued what it held: job") != std::string::npos);
  const Result check = sh(cli("check " + dir.string()));
  INFO(check.output);
  CHECK(check.code == 0);
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(logs);
}

TEST_CASE("a worker facing a server that never answers stops on SIGTERM within the gate's 10 s", "[remote]") {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 16) == 0);  // accepts connections (the kernel does) and never answers
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const auto logs = fresh_dir("remote-silent");
  std::filesystem::create_directories(logs);
  const std::string secret = private_secret(logs);
  const pid_t worker = start(cli("worker --connect 127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + " --secret-file " + secret),
                             (logs / "worker.log").string());
  REQUIRE(eventually([&] { return contains(logs / "worker.log", "Ctrl-C stops it"); }, 30));
  ::kill(worker, SIGTERM);
  const int code = exit_code_within(worker, 15);
  INFO(read_file(logs / "worker.log"));
  CHECK(code == 0);
  ::close(listener);
  std::filesystem::remove_all(logs);
}
