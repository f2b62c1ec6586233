// A campaign killed at any moment continues from its log with `asiarch resume` and ends with the
// digest of an uninterrupted run; a run directory has one writer at a time.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <random>
#include <thread>

#include "actors/campaign.h"
#include "storage/run_lock.h"
#include "storage/run_store.h"
#include "tests/test_helpers.h"

namespace fs = std::filesystem;
using namespace asiarch;
using namespace asiarch::testing;

namespace {

// Starts `asiarch run` (or resume), kills it with SIGKILL after `delay`, and reaps it.
void kill_after(const std::string& command, std::chrono::microseconds delay) {
  const pid_t pid = start(command);
  std::this_thread::sleep_for(delay);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// False also when the process was killed before its first commit (the store holds no table).
bool has_header(const fs::path& dir) {
  if (!fs::exists(dir / "data.mdb")) return false;
  try {
    return storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly)->meta("header").has_value();
  } catch (const storage::StorageError& e) {
    if (std::string(e.what()).find("holds no run") != std::string::npos) return false;
    throw;
  }
}

}  // namespace

TEST_CASE("a simulated campaign killed at 20 random points resumes to the uninterrupted digest", "[resume]") {
  const std::string scenario_file = source("scenarios/paper-scale.toml");
  const Scenario scenario = load_scenario(scenario_file);
  const std::string expected = simulate_campaign(scenario, scenario.seed).digest;
  REQUIRE(simulate_campaign(scenario, scenario.seed).digest == expected);

  std::mt19937_64 random(20261123);
  // The binary takes most of a second to start (it loads libtorch) and the campaign a second or
  // two more on a loaded machine: the kills spread over both.
  std::uniform_int_distribution<int> delay_ms(200, 3000);
  int killed_mid_run = 0;
  for (int attempt = 0; attempt < 100 && killed_mid_run < 20; ++attempt) {
    const fs::path dir = fresh_dir("resume");
    kill_after(cli("run " + scenario_file + " --out " + dir.string()), std::chrono::milliseconds(delay_ms(random)));
    if (!has_header(dir)) continue;  // killed before the run logged anything: nothing to resume
    const CampaignSummary before = read_summary(dir);
    if (before.finished) continue;  // the kill came too late
    ++killed_mid_run;
    // Every other time, the resume is killed too, and resumed again.
    if (killed_mid_run % 2 == 0) kill_after(cli("resume " + dir.string()), std::chrono::milliseconds(delay_ms(random) / 2));
    const Result resumed = sh(cli("resume " + dir.string()));
    INFO("killed after " << before.events << " committed events\n" << resumed.output);
    CHECK(resumed.code == 0);
    CHECK(last_line(resumed.output) == "digest: " + expected);
    fs::remove_all(dir);
  }
  CHECK(killed_mid_run == 20);
}

TEST_CASE("a run directory has one writer at a time", "[resume]") {
  const fs::path dir = fresh_dir("locked");
  const Scenario scenario = edited_scenario("scenarios/sim-smoke.toml", "max_experiments = 100", "max_experiments = 10");
  const CampaignSummary first = run_campaign(scenario, 1, dir);
  CHECK(simulate_campaign(scenario, 1).digest == first.digest);
  {
    const auto held = storage::RunLock::acquire(dir);
    const Result refused = sh(cli("resume " + dir.string()));
    CHECK(refused.code == 2);
    CHECK(refused.output.find("in use by another asiarch process (pid " + std::to_string(::getpid()) + ")") != std::string::npos);
  }
  // Released with its holder: a finished run resumes to itself.
  const Result finished = sh(cli("resume " + dir.string()));
  CHECK(finished.code == 0);
  CHECK(last_line(finished.output) == "digest: " + first.digest);
  CHECK(sh(cli("resume " + fresh_dir("nothing").string())).code == 2);
  fs::remove_all(dir);
}

TEST_CASE("a log that this binary does not reproduce is not continued", "[resume]") {
  const fs::path dir = fresh_dir("foreign-log");
  const std::string scenario_file = source("scenarios/paper-scale.toml");
  // An unfinished run whose log this binary does not reproduce: the first 5,000 events of a
  // finished run, without its summary, with one stored event changed. Resuming must refuse it,
  // not build on it. (Made from a finished run rather than by a kill, so no timing decides it.)
  const Result run = sh(cli("run " + scenario_file + " --out " + dir.string()));
  REQUIRE(run.code == 0);
  {
    auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadWrite);
    std::string event = *store->event(50);
    event[event.size() - 3] ^= 0x01;
    REQUIRE(store->last_seq() > 5000);
    const uint64_t last = 5000;
    // Rewrite the log from seq 50 on through a fresh store with the changed event.
    std::vector<std::string> events;
    for (uint64_t seq = 1; seq <= last; ++seq) events.push_back(seq == 50 ? event : *store->event(seq));
    const std::string header = *store->meta("header");
    store.reset();
    fs::remove(dir / "data.mdb");
    fs::remove(dir / "lock.mdb");
    auto rewritten = storage::RunStore::create(dir);
    rewritten->put_meta("header", header);
    rewritten->begin_chain(header);
    for (uint64_t seq = 1; seq <= last; ++seq) rewritten->append_event(seq, events[seq - 1]);
    rewritten->commit();
  }
  const Result refused = sh(cli("resume " + dir.string()));
  CHECK(refused.code == 1);
  CHECK(refused.output.find("differs from this binary's campaign at seq 50") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a damaged summary is reported, not crashed on, and resume rewrites it", "[resume]") {
  const fs::path dir = fresh_dir("damaged-summary");
  const Scenario scenario = edited_scenario("scenarios/sim-smoke.toml", "max_experiments = 100", "max_experiments = 10");
  const CampaignSummary first = run_campaign(scenario, 1, dir);
  CHECK(simulate_campaign(scenario, 1).digest == first.digest);
  {
    auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadWrite);
    store->put_meta("summary", std::string(40, '\xff'));
    store->commit();
  }
  const Result inspect = sh(cli("inspect " + dir.string()));
  CHECK(inspect.code == 2);
  CHECK(inspect.output.find("summary") != std::string::npos);
  CHECK(inspect.output.find("damaged") != std::string::npos);
  const Result resumed = sh(cli("resume " + dir.string()));
  CHECK(resumed.code == 0);
  CHECK(last_line(resumed.output) == "digest: " + first.digest);
  CHECK(read_summary(dir).digest == first.digest);
  fs::remove_all(dir);
}
