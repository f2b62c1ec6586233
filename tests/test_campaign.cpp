// Whole seeded campaigns (run twice, digests compared), the run store they write, replay, and
// the actors' states driven directly without an actor system.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "actors/cognition.h"
#include "actors/coordinator.h"
#include "actors/engineer.h"
#include "campaign/campaign.h"
#include "campaign/event_queue.h"
#include "campaign/run_recorder.h"
#include "messages/codec.h"
#include "storage/run_store.h"
#include "tests/test_helpers.h"

namespace fs = std::filesystem;
using namespace asiarch;

namespace {

Scenario smoke() { return load_scenario(fs::path(ASIARCH_SOURCE_DIR) / "scenarios/sim-smoke.toml"); }

bool is_hex_digest(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

using testing::deliver;
using testing::Delivery;
using testing::fresh_dir;

}  // namespace

TEST_CASE("the same scenario and seed give the same digest, another seed another", "[campaign]") {
  const Scenario scenario = smoke();
  const CampaignSummary a = simulate_campaign(scenario, 1);
  const CampaignSummary b = simulate_campaign(scenario, 1);
  const CampaignSummary c = simulate_campaign(scenario, 2);
  REQUIRE(is_hex_digest(a.digest));
  CHECK(a.digest == b.digest);
  CHECK(a.events == b.events);
  CHECK(c.digest != a.digest);
  CHECK(a.experiments == scenario.campaign.max_experiments);
  CHECK(a.stop_reason.find("max_experiments") != std::string::npos);
}

TEST_CASE("a recorded campaign has the in-memory digest, a readable summary and lineage", "[campaign]") {
  const Scenario scenario = smoke();
  const fs::path dir = fresh_dir("record");
  const CampaignSummary recorded = run_campaign(scenario, 7, dir);
  const CampaignSummary again = simulate_campaign(scenario, 7);
  CHECK(recorded.digest == again.digest);

  const CampaignSummary read = read_summary(dir);
  CHECK(read.finished);
  CHECK(read.digest == recorded.digest);
  CHECK(read.experiments == recorded.experiments);
  CHECK(fs::exists(dir / "scenario.toml"));
  CHECK(fs::is_directory(dir / "report"));

  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  CHECK(store->last_seq() == recorded.events);
  CHECK(storage::to_hex(store->head()) == recorded.digest);

  // Invariants over the log: seqs are contiguous, each dispatched job ends exactly once (or is
  // still in flight at the stop), every proposal names a new architecture.
  std::set<uint64_t> dispatched, ended, proposed;
  uint64_t archs = 0, breakthroughs = 0, last_count = 0;
  for (uint64_t seq = 1; seq <= store->last_seq(); ++seq) {
    auto bytes = store->event(seq);
    REQUIRE(bytes);
    msg::CanonicalView<msg::Event> view(*bytes);
    auto event = view.root();
    REQUIRE(event.getSeq() == seq);
    auto payload = event.getPayload();
    if (payload.which() == msg::Payload::DISPATCH) CHECK(dispatched.insert(payload.getDispatch().getJob().getRef().getJobId()).second);
    if (payload.which() == msg::Payload::TRAIN_RESULT) CHECK(ended.insert(payload.getTrainResult().getRef().getJobId()).second);
    if (payload.which() == msg::Payload::PROPOSAL) CHECK(proposed.insert(payload.getProposal().getArchId()).second);
    if (payload.which() == msg::Payload::POOL_UPDATE) {
      // Every pool update carries the running count, and the count only grows.
      breakthroughs += payload.getPoolUpdate().getBreakthrough() ? 1 : 0;
      CHECK(payload.getPoolUpdate().getBreakthroughs() == breakthroughs);
      CHECK(payload.getPoolUpdate().getBreakthroughs() >= last_count);
      last_count = payload.getPoolUpdate().getBreakthroughs();
    }
  }
  CHECK(recorded.breakthroughs == breakthroughs);
  for (uint64_t job : ended) CHECK(dispatched.count(job) == 1);
  CHECK(dispatched.size() - ended.size() <= scenario.campaign.gpu_slots);
  store->for_each_arch([&](uint64_t, std::string_view) { ++archs; });
  CHECK(archs == proposed.size());
  fs::remove_all(dir);
}

TEST_CASE("replay of an untouched run is identical", "[campaign][replay]") {
  const fs::path dir = fresh_dir("replay");
  const CampaignSummary recorded = run_campaign(smoke(), 3, dir);
  const ReplayReport report = replay_campaign(dir);
  CHECK(report.identical);
  CHECK(report.divergence_seq == 0);
  CHECK(report.events == recorded.events);
  CHECK(report.digest == recorded.digest);
  fs::remove_all(dir);
}

TEST_CASE("a run directory is not overwritten", "[campaign]") {
  const fs::path dir = fresh_dir("twice");
  const Scenario scenario = testing::edited_scenario("scenarios/sim-smoke.toml", "max_experiments = 100", "max_experiments = 5");
  const CampaignSummary first = run_campaign(scenario, 1, dir);
  CHECK_THROWS_AS(run_campaign(scenario, 1, dir), storage::StorageError);
  CHECK(read_summary(dir).digest == first.digest);  // the refused second run changed nothing
  CHECK(simulate_campaign(scenario, 1).digest == first.digest);
  fs::remove_all(dir);
}

TEST_CASE("a scenario changed after parsing is refused before anything is written", "[campaign]") {
  Scenario scenario = smoke();
  scenario.campaign.max_experiments = 5;  // the header would record 100: replay would recompute another run
  const fs::path dir = fresh_dir("edited-struct");
  CHECK_THROWS_AS(run_campaign(scenario, 1, dir), std::invalid_argument);
  CHECK_FALSE(fs::exists(dir / "data.mdb"));
  fs::remove_all(dir);
}

TEST_CASE("the event queue delivers in (virtual time, seq) order", "[actors][coordinator]") {
  EventQueue queue;
  const std::vector<std::pair<uint64_t, uint64_t>> pushed = {{5, 1}, {3, 2}, {5, 3}, {0, 4}, {3, 5}, {9, 6}, {0, 7}};
  for (const auto& [vtime, seq] : pushed) queue.push(QueuedEvent{vtime, seq, "x", std::to_string(seq)});
  std::vector<std::pair<uint64_t, uint64_t>> popped;
  while (!queue.empty()) {
    QueuedEvent e = queue.pop();
    CHECK(e.bytes == std::to_string(e.seq));
    popped.emplace_back(e.vtime_ns, e.seq);
  }
  CHECK(popped == std::vector<std::pair<uint64_t, uint64_t>>{{0, 4}, {0, 7}, {3, 2}, {3, 5}, {5, 1}, {5, 3}, {9, 6}});
}

TEST_CASE("the engineer rejects with the failed check's name", "[actors][engineer]") {
  EngineerState engineer(EngineerState::Settings::of(
      testing::edited_scenario("scenarios/sim-smoke.toml", "[campaign]", "[engineer]\nrepair_attempts = 0\n\n[campaign]")));
  auto propose = [&](uint64_t id, const std::string& program, const std::string& op) {
    return deliver(engineer, [&](msg::Payload::Builder p) {
      auto proposal = p.initProposal();
      proposal.setArchId(id);
      proposal.setProgram(program);
      proposal.setOperator(op);
    });
  };
  const std::string deltanet = lang::find_baseline("deltanet")->text;

  auto accepted = propose(1, deltanet, "baseline");
  REQUIRE(accepted.messages().size() == 1);
  CHECK(accepted.messages()[0].getPayload().which() == msg::Payload::TRAIN_JOB);
  CHECK(accepted.messages()[0].getPayload().getTrainJob().getRef().getBaselineName() == "deltanet");

  auto check_of = [](Delivery& d) -> std::string {
    REQUIRE(d.messages().size() == 1);
    REQUIRE(d.messages()[0].getPayload().which() == msg::Payload::REJECTION);
    return d.messages()[0].getPayload().getRejection().getCheck().cStr();
  };
  auto duplicate = propose(2, deltanet, "wrap_norm");  // not rejected: its result is reused
  REQUIRE(duplicate.messages().size() == 1);
  CHECK(duplicate.messages()[0].getPayload().getDuplicate().getSameAs() == 1);
  auto garbage = propose(3, "program broken\n  y = split_heads(x, h=4)\n  return y\n", "wrap_norm");
  CHECK(check_of(garbage) == "type");
  auto unparsable = propose(4, "this is not a program", "wrap_norm");
  CHECK(check_of(unparsable) == "parse");
  const std::string peeking =
      "program peeking\n  m = seq_mean(x)\n  y = linear(m, out=D)\n  return y\n";
  auto future = propose(5, peeking, "wrap_norm");
  CHECK(check_of(future) == "causality");
  auto quadratic = propose(6, lang::find_baseline("softmax_attention")->text, "swap_recurrence");
  CHECK(check_of(quadratic) == "complexity");
  const std::string tiny = "program tiny\n  y = linear(x, out=D)\n  return y\n";
  auto small = propose(7, tiny, "wrap_norm");
  CHECK(check_of(small) == "parameters");
}

TEST_CASE("the coordinator queues jobs until a slot is idle, lowest slot first", "[actors][coordinator]") {
  CoordinatorState coordinator({.gpu_slots = 2, .faults = {}, .costs = {}});
  auto job = [&](uint64_t id) {
    return deliver(coordinator, [&](msg::Payload::Builder p) { p.initTrainJob().initRef().setJobId(id); });
  };
  auto first = job(10);
  REQUIRE(first.messages().size() == 1);
  CHECK(std::string(first.messages()[0].getTo().cStr()) == "gpu-slot-0");
  auto second = job(11);
  CHECK(std::string(second.messages()[0].getTo().cStr()) == "gpu-slot-1");
  auto third = job(12);
  CHECK(third.messages().size() == 0);  // both slots busy: queued
  auto idle = deliver(coordinator, [&](msg::Payload::Builder p) { p.initSlotIdle().setSlot(1); });
  REQUIRE(idle.messages().size() == 1);
  CHECK(std::string(idle.messages()[0].getTo().cStr()) == "gpu-slot-1");
  CHECK(idle.messages()[0].getPayload().getDispatch().getJob().getRef().getJobId() == 12);
}

TEST_CASE("the cognition actor answers a repeated query alike until an insight is added", "[actors][cognition]") {
  CognitionState cognition;
  const std::string text = "the zebra gate forgets quartz keys";  // an insight of this very text will rank first
  auto ask = [&](uint32_t k) {
    Delivery reply = deliver(cognition, [&](msg::Payload::Builder p) {
      auto query = p.initInsightQuery();
      query.setRequestId(k);
      query.setText(text);
      query.setK(k);
    });
    REQUIRE(reply.messages().size() == 1);
    std::vector<std::string> ids;
    for (auto hit : reply.messages()[0].getPayload().getInsightReply().getHits()) ids.emplace_back(hit.getEntryId().cStr());
    return ids;
  };
  const std::vector<std::string> before = ask(3);
  REQUIRE(before.size() == 3);
  CHECK(ask(3) == before);
  CHECK(ask(1) == std::vector<std::string>{before[0]});
  deliver(cognition, [&](msg::Payload::Builder p) {
    auto insight = p.initInsight();
    insight.setInsightId(7);
    insight.setArchId(40);
    insight.setText(text);
  });
  const std::vector<std::string> after = ask(3);
  CHECK(after[0] == "campaign-insight-7");
  CHECK(std::vector<std::string>(after.begin() + 1, after.end()) == std::vector<std::string>(before.begin(), before.begin() + 2));
}
