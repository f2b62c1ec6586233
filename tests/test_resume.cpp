// A campaign killed at any moment continues from its log with `asiarch resume` and ends with the
// digest of an uninterrupted run; a run directory has one writer at a time.
#include <catch2/catch.hpp>

#include "campaign/campaign.h"
#include "storage/run_lock.h"
#include "storage/run_store.h"
#include "tests/test_helpers.h"

namespace fs = std::filesystem;
using namespace asiarch;
using namespace asiarch::testing;

namespace {

// A shortened paper-scale campaign (about 7,500 events, so a commit at event 4,096 falls
// inside it) and its uninterrupted digest.
struct CrashCampaign {
  std::string file;
  std::string digest;
  uint64_t events = 0;
  explicit CrashCampaign(const std::string& name) {
    const std::string text = edited_text("scenarios/paper-scale.toml", "max_experiments = 1773", "max_experiments = 600");
    file = write_file(fresh_dir(name + ".toml"), text);
    const Scenario scenario = parse_scenario(text, file);
    const CampaignSummary uninterrupted = simulate_campaign(scenario, scenario.seed);
    digest = uninterrupted.digest;
    events = uninterrupted.events;
  }

  // Runs the campaign with a crash at `point`; when it crashed, resumes it (every other time the
  // resume crashes too, at its first fsync, and is resumed again) and checks the digest. Returns
  // false when the point lies past the run's end, so that it finished uncrashed.
  bool crash_and_resume(const std::string& point, bool crash_the_resume) const {
    const fs::path dir = fresh_dir("crash");
    const Result crashed = crashed_at(point, "run " + file + " --out " + dir.string());
    INFO("crashed at " << point << "\n" << crashed.output);
    if (crashed.code != -1) {
      CHECK(crashed.code == 0);
      CHECK(last_line(crashed.output) == "digest: " + digest);
      fs::remove_all(dir);
      return false;
    }
    if (crash_the_resume) crashed_at("sync:1", "resume " + dir.string());
    Result resumed = sh(cli("resume " + dir.string()));
    if (resumed.output.find("which reuses the directory") != std::string::npos) {
      // Killed before its first commits were done: nothing was logged, and `run` starts again in the same directory.
      CHECK(resumed.code == 2);
      resumed = sh(cli("run " + file + " --out " + dir.string()));
    }
    INFO(resumed.output);
    CHECK(resumed.code == 0);
    CHECK(last_line(resumed.output) == "digest: " + digest);
    fs::remove_all(dir);
    return true;
  }
};

}  // namespace

// Crashes are placed at chosen commits, fsyncs, page writes and events rather than after a delay,
// so the tests cover the same points on an idle and on a busy machine: 40 points or more in all.
namespace {

// Crashes at the first, second, ... point of each site until one lies past the run's end; returns
// how many crashed.
int crash_at_every_point(const CrashCampaign& campaign, const std::vector<std::string>& sites) {
  int points = 0;
  for (const std::string& site : sites) {
    for (uint64_t n = 1; campaign.crash_and_resume(site + ":" + std::to_string(n), points % 2 == 1); ++n) ++points;
  }
  return points;
}

}  // namespace

TEST_CASE("a simulated campaign crashed before and after every commit resumes to the uninterrupted digest", "[resume]") {
  CHECK(crash_at_every_point(CrashCampaign("crash-commits"), {"commit", "committed"}) >= 10);
}

TEST_CASE("a simulated campaign crashed in every fsync and page write resumes to the uninterrupted digest", "[resume]") {
  CHECK(crash_at_every_point(CrashCampaign("crash-syncs"), {"sync", "write"}) >= 18);
}

TEST_CASE("a simulated campaign crashed at chosen events resumes to the uninterrupted digest", "[resume]") {
  const CrashCampaign campaign("crash-events");
  const uint64_t last = campaign.events;
  const std::vector<uint64_t> seqs = {1, 2, 3, 100, 4095, 4096, 4097, 4098, last / 3, last / 2, last - 1, last};
  for (size_t i = 0; i < seqs.size(); ++i) CHECK(campaign.crash_and_resume("event:" + std::to_string(seqs[i]), i % 2 == 1));
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
    // The lock is on the directory: deleting the files beside the store does not make room for a second writer.
    fs::remove(dir / "writer.lock");
    fs::remove(dir / "lock.mdb");
    const Result still_refused = sh(cli("resume " + dir.string()));
    INFO(still_refused.output);
    CHECK(still_refused.code == 2);
    CHECK(still_refused.output.find("in use by another asiarch process") != std::string::npos);
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
  // The head file names the finished run's last commit: without it the store is a run killed at event 5,000.
  fs::remove(dir / "head");
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

TEST_CASE("a run killed in its first commits starts again in its directory, a killed resume keeps the committed count, and a dead run reads as stopped", "[resume]") {
  const std::string text = edited_text("scenarios/paper-scale.toml", "max_experiments = 1773", "max_experiments = 600");
  const std::string scenario_file = write_file(fresh_dir("early-kill.toml"), text);
  const std::string expected = simulate_campaign(parse_scenario(text, scenario_file), 1).digest;

  const fs::path early = fresh_dir("early-kill");
  REQUIRE(crashed_at("committed:1", "run " + scenario_file + " --out " + early.string()).code == -1);
  const Result nothing = sh(cli("resume " + early.string()));
  CHECK(nothing.code == 2);
  CHECK(nothing.output.find("asiarch run SCENARIO --out " + early.string() + "`, which reuses the directory") != std::string::npos);
  const Result again = sh(cli("run " + scenario_file + " --out " + early.string()));
  INFO(again.output);
  CHECK(again.code == 0);
  CHECK(last_line(again.output) == "digest: " + expected);
  fs::remove_all(early);

  // Killed after the commit at event 4,096, then its resume killed before it passed that event.
  const fs::path dir = fresh_dir("killed-resume");
  REQUIRE(crashed_at("event:5000", "run " + scenario_file + " --out " + dir.string()).code == -1);
  REQUIRE(crashed_at("event:4500", "resume " + dir.string()).code == -1);
  const Result inspect = sh(cli("inspect " + dir.string()));
  INFO(inspect.output);
  CHECK(inspect.code == 0);
  CHECK(inspect.output.find("events:        4,096") != std::string::npos);
  CHECK(inspect.output.find("stopped: no process is writing the run") != std::string::npos);
  const Result resumed = sh(cli("resume " + dir.string()));
  CHECK(last_line(resumed.output) == "digest: " + expected);
  fs::remove_all(dir);
}

TEST_CASE("a full disk is named as such, and the run it stopped reads as stopped", "[resume]") {
  const CrashCampaign campaign("full-disk");
  const fs::path mount = fresh_dir("full-disk");
  fs::create_directories(mount);
  const std::string run = (mount / "run").string();
  // A 2 MiB file system in a mount namespace of its own (root only): the run fills it.
  const Result r = sh("unshare -m sh -c 'mount -t tmpfs -o size=2m tmpfs " + mount.string() + " || exit 77; " + cli("run " + campaign.file + " --out " + run) +
                      "; echo \"run exit $?\"; " + cli("inspect " + run) + "'");
  fs::remove_all(mount);
  if (r.code == 77 || r.code == 127) {
    WARN("a small file system cannot be mounted here (it takes root and unshare): the full-disk case was not run");
    return;
  }
  INFO(r.output);
  CHECK(r.output.find("run exit 1") != std::string::npos);
  CHECK(r.output.find("MiB free: free some disk space and resume the run") != std::string::npos);
  CHECK(r.output.find("stopped: no process is writing the run") != std::string::npos);
}
