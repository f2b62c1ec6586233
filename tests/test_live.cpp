// A live campaign trains for real. Its results are input events: replay serves them from the log
// and never trains, retrain trains a logged job again and finds the same metrics, and a live
// campaign killed during training resumes without losing or repeating a logged result.
// Measured durations are inputs, so two live runs have different digests; what must be equal is
// a run and every replay of it.
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "messages/codec.h"
#include "scenario/run_header.h"
#include "scenario/scenario.h"
#include "storage/run_store.h"
#include "test_helpers.h"

using namespace asiarch::testing;
namespace storage = asiarch::storage;
namespace msg = asiarch::msg;

namespace {

std::string digest_of(const std::string& output) {
  const std::string line = last_line(output);
  REQUIRE(line.rfind("digest: ", 0) == 0);
  return line.substr(8);
}

struct LoggedResult {
  uint64_t seq, job_id, arch_id;
  uint32_t replicate;
  std::string bytes;
};

// The live results in a run's log: trainResult input events, in log order.
std::vector<LoggedResult> logged_results(const std::filesystem::path& dir) {
  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  std::vector<LoggedResult> results;
  store->for_each_event([&](uint64_t seq, std::string_view bytes) {
    msg::CanonicalView<msg::Event> view(bytes);
    if (view.root().getPayload().which() != msg::Payload::TRAIN_RESULT) return;
    REQUIRE(view.root().getInput());  // a live run never derives a result
    auto ref = view.root().getPayload().getTrainResult().getRef();
    results.push_back(LoggedResult{seq, ref.getJobId(), ref.getArchId(), ref.getReplicate(), std::string(bytes)});
  });
  return results;
}

}  // namespace

TEST_CASE("a live campaign trains, replays from its log without training, and retrains bit for bit", "[live]") {
  const auto dir = fresh_dir("live");
  const std::string scenario = write_file(fresh_dir("live-scenario.toml"), kTinyLiveScenario);
  const Result run = sh(cli("run " + scenario + " --out " + dir.string()));
  INFO(run.output);
  REQUIRE(run.code == 0);
  const std::string digest = digest_of(run.output);

  const auto results = logged_results(dir);
  CHECK(results.size() >= 5);
  // Verify trains several seeds of an architecture (the scenario's default 3): replicates 1 and 2
  // are logged results too, and replay, check and retrain take them as any other.
  CHECK(std::count_if(results.begin(), results.end(), [](const LoggedResult& r) { return r.replicate == 2; }) >= 1);

  // Replay recomputes every derived event around the logged inputs, twice to the same digest.
  for (int round = 0; round < 2; ++round) {
    const Result replay = sh(cli("replay " + dir.string()));
    INFO(replay.output);
    REQUIRE(replay.code == 0);
    CHECK(digest_of(replay.output) == digest);
  }
  const Result check = sh(cli("check " + dir.string()));
  INFO(check.output);
  CHECK(check.code == 0);

  const Result retrain = sh(cli("retrain " + dir.string() + " --arch " + std::to_string(results.front().arch_id)));
  INFO(retrain.output);
  CHECK(retrain.code == 0);
  CHECK(retrain.output.find("retrain identical") != std::string::npos);

  CHECK(sh(cli("retrain " + dir.string() + " --arch 999999")).code == 2);

  // Every result says where it trained and with which libtorch.
  for (const auto& r : results) {
    msg::CanonicalView<msg::Event> view(r.bytes);
    auto result = view.root().getPayload().getTrainResult();
    CHECK(std::string(result.getDevice().cStr()) == "cpu");
    CHECK(result.getTorchVersion().size() > 0);
  }
  // Retrain compares only on the device model a job trained on. A copy whose recorded scenario
  // trains on "cuda" is refused before anything trains: here for want of CUDA, on a machine with
  // a GPU because the jobs trained on the CPU.
  const auto on_cuda = fresh_dir("live-on-cuda");
  std::filesystem::copy(dir, on_cuda, std::filesystem::copy_options::recursive);
  {
    auto store = storage::RunStore::open(on_cuda, storage::RunStore::Mode::ReadWrite);
    const std::string text = std::string(kTinyLiveScenario) + "device = \"cuda\"\n";  // [live] is the last table
    store->put_meta(asiarch::meta_key::kHeader, asiarch::run_header_bytes(asiarch::parse_scenario(text, "live-tiny.toml"), 3));
    store->commit();
  }
  const Result refused = sh(cli("retrain " + on_cuda.string() + " --arch " + std::to_string(results.front().arch_id)));
  INFO(refused.output);
  CHECK(refused.code == 2);
  CHECK(refused.output.find("trained on cpu") != std::string::npos);
  std::filesystem::remove_all(on_cuda);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a live campaign killed during training resumes without losing or repeating a result", "[live]") {
  const auto dir = fresh_dir("live-kill");
  const std::string scenario = write_file(fresh_dir("live-kill-scenario.toml"), kTinyLiveScenario);
  const pid_t pid = start(cli("run " + scenario + " --out " + dir.string()));
  // Kill it once a first result is committed, while other jobs are training.
  std::vector<LoggedResult> before;
  for (int i = 0; i < 600 && before.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (std::filesystem::exists(dir / "data.mdb")) {
      try {
        before = logged_results(dir);
      } catch (const storage::StorageError&) {
        // The store is being created.
      }
    }
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  before = logged_results(dir);
  REQUIRE(!before.empty());

  const Result resumed = sh(cli("resume " + dir.string()));
  INFO(resumed.output);
  REQUIRE(resumed.code == 0);
  const auto after = logged_results(dir);
  REQUIRE(after.size() >= before.size());
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i].bytes == before[i].bytes);  // nothing logged was lost
  std::map<uint64_t, int> trained;
  for (const auto& r : after) ++trained[r.job_id];
  for (const auto& [job, times] : trained) {
    INFO("job " << job);
    CHECK(times == 1);  // nothing was trained twice
  }
  const Result replay = sh(cli("replay " + dir.string()));
  INFO(replay.output);
  CHECK(replay.code == 0);
  std::filesystem::remove_all(dir);
}
