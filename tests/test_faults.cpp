// Fault injection in simulation ([faults]): slots that crash, hang, answer late or answer
// garbage, and log commits that fail. A faulty campaign still completes, is deterministic (same
// digest twice, replay identical, resume after kill -9 to the same digest), keeps the log's
// invariants, and counts its faults; without faults nothing changes.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "actors/coordinator.h"
#include "campaign/campaign.h"
#include "campaign/log_check.h"
#include "campaign/run_recorder.h"
#include "messages/codec.h"
#include "storage/run_store.h"
#include "tests/test_helpers.h"

namespace fs = std::filesystem;
using namespace asiarch;
using namespace asiarch::testing;

namespace {

const std::string kSmoke = "scenarios/sim-smoke.toml";

// sim-smoke with `experiments` and a [faults] table.
std::string faulty_text(uint64_t experiments, const std::string& faults) {
  return edited_text(kSmoke, "max_experiments = 100", "max_experiments = " + std::to_string(experiments)) + "\n[faults]\n" + faults;
}

const std::string kTenPercent =
    "slot_crash = 0.1\nslot_hang = 0.1\nslot_late = 0.1\nslot_garbage = 0.1\nlog_write_failure = 0.1\n";

uint64_t count(const CampaignSummary& s, const std::string& kind) {
  auto it = s.faults.find(kind);
  return it == s.faults.end() ? 0 : it->second;
}

std::string check_text(const fs::path& dir) {
  const LogCheckReport report = check_run_log(dir);
  return report.violation ? "seq " + std::to_string(report.violation->seq) + " (" + report.violation->invariant + "): " + report.violation->explanation
                          : "";
}

// Delivers one payload to the coordinator at `vtime_ns`; returns the canonical Outbox it sends.
template <typename Fill>
std::string deliver(CoordinatorState& coordinator, uint64_t vtime_ns, Fill fill) {
  capnp::MallocMessageBuilder message;
  auto event = message.initRoot<msg::Event>();
  event.setVtimeNs(vtime_ns);
  event.setTo(actor_name::kCoordinator);
  fill(event.initPayload());
  msg::OutboxWriter out;
  coordinator.handle(event.asReader(), out);
  return out.finish();
}

void set_result(msg::SlotAnswer::Builder answer, const std::string& bytes) {
  answer.setResult(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
}

std::string train_result_bytes(uint64_t job_id, uint32_t slot, double loss) {
  capnp::MallocMessageBuilder message;
  auto result = message.initRoot<msg::TrainResult>();
  result.initRef().setJobId(job_id);
  result.setSlot(slot);
  result.setLoss(loss);
  result.setAccuracy(0.5);
  result.setGpuHours(1.0);
  return msg::canonical_bytes(result.asReader());
}

}  // namespace

TEST_CASE("[faults] keys parse, are checked, and change nothing when absent or zero", "[faults]") {
  const Scenario plain = load_scenario(source(kSmoke));
  CHECK_FALSE(plain.faults.slot_faults_armed());
  const Scenario tens = parse_scenario(faulty_text(100, kTenPercent), "tens.toml");
  CHECK(tens.faults.slot_crash == 0.1);
  CHECK(tens.faults.slot_faults_armed());
  CHECK(tens.faults.job_retries == 2);
  CHECK_THROWS_WITH(parse_scenario(faulty_text(100, "slot_crash = 0.6\nslot_hang = 0.6\n"), "over.toml"), Catch::Contains("more than 1"));
  CHECK_THROWS_WITH(parse_scenario(faulty_text(100, "slot_crahs = 0.1\n"), "typo.toml"), Catch::Contains("did you mean 'slot_crash'"));
  CHECK_THROWS_WITH(parse_scenario(faulty_text(100, "slot_late = 2.0\n"), "range.toml"), Catch::Contains("out of range"));
  const std::string live = read_file(source("scenarios/quickstart.toml")) + "\n[faults]\nslot_crash = 0.1\n";
  CHECK_THROWS_WITH(parse_scenario(live, "live.toml"), Catch::Contains("simulation only"));

  // Zero rates, and log-write failures alone, leave the loop as it is: the same events. (The
  // chains start from one header here, as the scenarios' texts differ.)
  const std::string header = run_header_bytes(plain, plain.seed);
  auto events_digest = [&](const Scenario& scenario) {
    ChainSink chain;
    return run_loop(scenario, scenario.seed, header, chain, {}).digest;
  };
  const std::string expected = events_digest(plain);
  CHECK(events_digest(parse_scenario(faulty_text(100, "slot_crash = 0.0\nslot_garbage = 0.0\n"), source(kSmoke))) == expected);
  CHECK(events_digest(parse_scenario(faulty_text(100, "log_write_failure = 0.5\n"), source(kSmoke))) == expected);
  CHECK(events_digest(parse_scenario(faulty_text(100, "slot_late = 0.01\n"), source(kSmoke))) != expected);
}

TEST_CASE("the coordinator times out, re-queues, ignores late answers and fails garbage", "[faults][coordinator]") {
  const Scenario scenario = parse_scenario(faulty_text(100, "slot_hang = 0.1\njob_timeout_gpu_hours = 1.0\njob_retries = 1\n"), "t.toml");
  CoordinatorState coordinator(CoordinatorState::Settings::of(scenario));  // 4 slots
  const uint64_t hour = 3'600'000'000'000;
  auto job = [&](uint64_t id) {
    return deliver(coordinator, 0, [&](msg::Payload::Builder p) {
      auto j = p.initTrainJob();
      j.initRef().setJobId(id);
      j.setProgram("not a program");  // the timeout is fixed: the program is not costed
    });
  };
  msg::CanonicalView<msg::Outbox> first(job(7));
  auto sent = first.root().getMessages();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].getPayload().getDispatch().getAttempt() == 0);
  CHECK(sent[0].getPayload().getDispatch().getTimeoutNs() == hour);
  CHECK(sent[1].getPayload().which() == msg::Payload::JOB_TIMEOUT);
  CHECK(sent[1].getDelayNs() == hour);

  // The timer runs out: the job is re-queued and goes at once to a free slot, as attempt 1;
  // slot 0 restarts later.
  msg::CanonicalView<msg::Outbox> timeout(deliver(coordinator, hour, [&](msg::Payload::Builder p) {
    auto t = p.initJobTimeout();
    t.setSlot(0);
    t.setJobId(7);
  }));
  sent = timeout.root().getMessages();
  REQUIRE(sent.size() == 4);
  CHECK(sent[0].getPayload().getSlotFault().getKind() == msg::FaultKind::TIMEOUT);
  CHECK(sent[0].getPayload().getSlotFault().getAction() == msg::FaultAction::REQUEUED);
  CHECK(std::string(sent[1].getTo().cStr()) == "gpu-slot-1");
  CHECK(sent[1].getPayload().getDispatch().getAttempt() == 1);
  CHECK(sent[2].getPayload().which() == msg::Payload::JOB_TIMEOUT);
  CHECK(sent[3].getPayload().which() == msg::Payload::SLOT_RESTART);

  // Attempt 0's answer comes late: ignored. Attempt 1's answer names another job: garbage.
  msg::CanonicalView<msg::Outbox> late(deliver(coordinator, hour + 5, [&](msg::Payload::Builder p) {
    auto a = p.initSlotAnswer();
    a.setSlot(0);
    a.setJobId(7);
    set_result(a, train_result_bytes(7, 0, 1.0));
  }));
  sent = late.root().getMessages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].getPayload().getSlotFault().getKind() == msg::FaultKind::LATE);
  CHECK(sent[0].getPayload().getSlotFault().getAction() == msg::FaultAction::IGNORED);
  msg::CanonicalView<msg::Outbox> garbage(deliver(coordinator, hour + 10, [&](msg::Payload::Builder p) {
    auto a = p.initSlotAnswer();
    a.setSlot(1);
    a.setJobId(7);
    a.setAttempt(1);
    set_result(a, train_result_bytes(8, 1, 1.0));
  }));
  sent = garbage.root().getMessages();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].getPayload().getSlotFault().getKind() == msg::FaultKind::GARBAGE);
  auto failed = sent[1].getPayload().getTrainResult();
  CHECK(failed.getStatus() == msg::TrainStatus::FAILED);
  CHECK(std::string(failed.getFailure().cStr()) == "garbage: the answer names job 8, not job 7");
  CHECK(failed.getFailureKind() == msg::FailureKind::GARBAGE);
  CHECK(failed.getGpuHours() == Approx(10.0 / 3.6e12));  // the 10 ns attempt 1 held its slot
}

TEST_CASE("a slot's answer is garbage when it does not decode or holds invalid values", "[faults]") {
  CHECK(slot_answer_problem(train_result_bytes(3, 1, 0.7), 3, 1).empty());
  CHECK(slot_answer_problem(train_result_bytes(3, 1, std::numeric_limits<double>::quiet_NaN()), 3, 1).find("not finite") != std::string::npos);
  CHECK(slot_answer_problem(train_result_bytes(4, 1, 0.7), 3, 1) == "the answer names job 4, not job 3");
  CHECK(slot_answer_problem(train_result_bytes(3, 2, 0.7), 3, 1) == "the answer names gpu-slot-2");
  CHECK(slot_answer_problem("", 3, 1).find("does not decode") != std::string::npos);
  CHECK(slot_answer_problem(std::string(16, '\xff'), 3, 1).find("does not decode") != std::string::npos);
}

TEST_CASE("a campaign with every fault at 10% completes, deterministically, and keeps the invariants", "[faults]") {
  const fs::path dir = fresh_dir("faults-ten");
  fs::create_directories(dir);
  const std::string file = write_file(dir.string() + ".toml", faulty_text(200, kTenPercent));
  const Scenario scenario = load_scenario(file);
  const CampaignSummary recorded = run_campaign(scenario, scenario.seed, dir / "run");
  const CampaignSummary again = simulate_campaign(scenario, scenario.seed);
  INFO(recorded.stop_reason);
  CHECK(recorded.finished);
  CHECK(recorded.experiments == 200);
  CHECK(again.digest == recorded.digest);
  CHECK(simulate_campaign(parse_scenario(read_file(source(kSmoke)), source(kSmoke)), scenario.seed).digest != recorded.digest);

  // Every kind of slot fault happened, at a plausible rate: about 10% of some 250 to 400
  // dispatches each (timeouts are the hangs and the late answers together).
  const CampaignSummary read = read_summary(dir / "run");
  CHECK(read.faults == recorded.faults);
  CHECK(count(read, "log_write") >= 1);
  for (const char* kind : {"crash", "late", "garbage"}) {
    INFO(kind);
    CHECK(count(read, kind) >= 10);
    CHECK(count(read, kind) <= 80);
  }
  CHECK(count(read, "timeout") >= count(read, "late") + 10);

  CHECK(check_text(dir / "run") == "");
  const ReplayReport replay = replay_campaign(dir / "run");
  CHECK(replay.identical);
  const Result inspect = sh(cli("inspect " + (dir / "run").string()));
  CHECK(inspect.output.find("faults:        crash ") != std::string::npos);

  // Killed with SIGKILL at chosen points (storage/crash_point.h) and resumed: the uninterrupted
  // digest each time. A kill before the first commit leaves no header, and resume says so.
  for (const char* point : {"event:40", "committed:2", "event:700", "event:1200"}) {
    const fs::path killed = dir / (std::string("killed-") + point);
    REQUIRE(crashed_at(point, "run " + file + " --out " + killed.string()).code == -1);
    const Result resumed = sh(cli("resume " + killed.string()));
    INFO("killed at " << point << "\n" << resumed.output);
    CHECK(resumed.code == 0);
    CHECK(last_line(resumed.output) == "digest: " + recorded.digest);
    CHECK(check_text(killed) == "");
  }
  const fs::path early = dir / "killed-before-commit";
  REQUIRE(crashed_at("commit:1", "run " + file + " --out " + early.string()).code == -1);
  const Result refused = sh(cli("resume " + early.string()));
  CHECK(refused.code == 2);
  CHECK(refused.output.find("has no run header") != std::string::npos);
  fs::remove_all(dir);
  fs::remove(file);
}

TEST_CASE("failed log commits are retried, a writer that gives up stops with exit 1 and resume completes the run", "[faults]") {
  const fs::path dir = fresh_dir("faults-log");
  // Half the commits fail and one retry is allowed, so a commit gives up a quarter of the time;
  // a campaign of 600 experiments commits three or four times. The first seed whose run gives up
  // is resumed until it finishes: each start of the run draws other failures.
  const std::string file = write_file(dir.string() + ".toml", faulty_text(600, "log_write_failure = 0.5\nlog_write_retries = 1\n"));
  const Scenario scenario = load_scenario(file);
  Result first{0, ""};
  uint64_t seed = 0;
  while (first.code == 0 && seed < 10) {
    fs::remove_all(dir);
    first = sh(cli("run " + file + " --seed " + std::to_string(++seed) + " --out " + dir.string()));
  }
  INFO(first.output);
  REQUIRE(first.code == 1);
  CHECK(first.output.find("the event log could not be committed after 2 attempts") != std::string::npos);
  CHECK(first.output.find("asiarch resume " + dir.string()) != std::string::npos);
  CHECK(check_text(dir) == "");  // what was committed is a sound prefix
  uint64_t committed = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly)->last_seq();

  Result resumed{1, ""};
  for (int resumes = 0; resumed.code == 1 && resumes < 30; ++resumes) {
    resumed = sh(cli("resume " + dir.string()));
    const uint64_t now = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly)->last_seq();
    CHECK(now >= committed);  // nothing committed is ever lost
    committed = now;
  }
  INFO(resumed.output);
  CHECK(resumed.code == 0);
  CHECK(last_line(resumed.output) == "digest: " + simulate_campaign(scenario, seed).digest);
  CHECK(check_text(dir) == "");
  CHECK(count(read_summary(dir), "log_write") >= 1);
  fs::remove_all(dir);
  fs::remove(file);
}

TEST_CASE("the checker catches a faulty log whose coordinator broke the rules", "[faults][check]") {
  const fs::path dir = fresh_dir("faults-forged");
  const Scenario scenario = parse_scenario(faulty_text(60, "slot_crash = 0.2\nslot_late = 0.2\nslot_hang = 0.1\n"), source(kSmoke));
  run_campaign(scenario, scenario.seed, dir);
  REQUIRE(check_text(dir) == "");
  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  const std::string header = *store->meta("header");
  std::vector<std::string> events;
  for (uint64_t seq = 1; seq <= store->last_seq(); ++seq) events.push_back(*store->event(seq));
  store.reset();
  // The readable form, whose reader is held to the message's size, reads every real event.
  for (const auto& event : events) REQUIRE(msg::pretty_event_bytes(event).find("bytes that do not decode") == std::string::npos);

  // Rewrites the log with one event edited and the chain recomputed, and returns the check.
  auto forged = [&](msg::Payload::Which kind, auto edit) {
    std::vector<std::string> copy = events;
    uint64_t edited = 0;
    for (uint64_t i = 0; i < copy.size() && edited == 0; ++i) {
      msg::CanonicalView<msg::Event> view(copy[i]);
      if (view.root().getPayload().which() != kind) continue;
      capnp::MallocMessageBuilder message;
      message.setRoot(view.root());
      if (!edit(message.getRoot<msg::Event>().getPayload())) continue;
      copy[i] = msg::canonical_bytes(message.getRoot<msg::Event>().asReader());
      edited = i + 1;
    }
    REQUIRE(edited != 0);
    const fs::path forged_dir = dir.string() + "-forged";
    fs::remove_all(forged_dir);
    auto rewritten = storage::RunStore::create(forged_dir);
    rewritten->put_meta("header", header);
    rewritten->begin_chain(header);
    for (uint64_t seq = 1; seq <= copy.size(); ++seq) rewritten->append_event(seq, copy[seq - 1]);
    rewritten->commit();
    rewritten.reset();
    const std::string found = check_text(forged_dir);
    fs::remove_all(forged_dir);
    return std::pair{edited, found};
  };
  // A re-queued crash said to have failed the job: no failed trainResult follows it.
  auto [at, found] = forged(msg::Payload::SLOT_FAULT, [](msg::Payload::Builder p) {
    auto f = p.getSlotFault();
    if (f.getKind() != msg::FaultKind::CRASH || f.getAction() != msg::FaultAction::REQUEUED) return false;
    f.setAction(msg::FaultAction::FAILED);
    return true;
  });
  CHECK(found.find("(jobs)") != std::string::npos);
  // A timeout passed off as an ignored late answer: that dispatch still runs.
  auto [at2, found2] = forged(msg::Payload::SLOT_FAULT, [](msg::Payload::Builder p) {
    auto f = p.getSlotFault();
    if (f.getKind() != msg::FaultKind::TIMEOUT) return false;
    f.setKind(msg::FaultKind::LATE);
    f.setAction(msg::FaultAction::IGNORED);
    return true;
  });
  CHECK(found2.rfind("seq " + std::to_string(at2) + " (jobs): a late of job ", 0) == 0);
  CHECK(found2.find("is ignored as late, but that dispatch still runs") != std::string::npos);
  // A re-dispatch that skips an attempt number.
  auto [at3, found3] = forged(msg::Payload::DISPATCH, [](msg::Payload::Builder p) {
    auto d = p.getDispatch();
    if (d.getAttempt() == 0) return false;
    d.setAttempt(d.getAttempt() + 1);
    return true;
  });
  CHECK(found3.rfind("seq " + std::to_string(at3) + " (jobs): job ", 0) == 0);
  CHECK(found3.find("attempts were lost before it") != std::string::npos);
  (void)at;
  fs::remove_all(dir);
}
