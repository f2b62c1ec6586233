// The engineer's self-revision and duplicate detection: the actor state driven directly, and
// whole simulated campaigns (with the analyst's ablations) run twice.
#include <catch2/catch.hpp>

#include <filesystem>

#include "actors/engineer.h"
#include "campaign/campaign.h"
#include "campaign/run_recorder.h"
#include "storage/lineage.h"
#include "tests/test_helpers.h"
#include "training/training.h"

namespace fs = std::filesystem;
using namespace asiarch;
using testing::deliver;
using testing::Delivery;

namespace {

const std::string kDeltanet = lang::find_baseline("deltanet")->text;

// DeltaNet with the queries' SiLU written as q * sigmoid(q): the same function.
std::string deltanet_rewritten() {
  return testing::edited_text("lang/baselines/deltanet.arch", "  q_act = silu(q_conv)\n",
                              "  q_gate = sigmoid(q_conv)\n  q_act = mul(q_conv, q_gate)\n");
}

Delivery propose(EngineerState& engineer, uint64_t id, const std::string& program, const std::string& op = "wrap_norm") {
  return deliver(engineer, [&](msg::Payload::Builder p) {
    auto proposal = p.initProposal();
    proposal.setArchId(id);
    proposal.setProgram(program);
    proposal.setOperator(op);
    if (op != "baseline") proposal.initParentIds(1).set(0, 1);
  });
}

// Delivers a message the engineer sent to itself (a repair or ablation proposal).
Delivery redeliver(EngineerState& engineer, msg::Outgoing::Reader outgoing) {
  return deliver(engineer, [&](msg::Payload::Builder p) { p.setProposal(outgoing.getPayload().getProposal()); });
}

template <typename D>
msg::Payload::Which kind(D&& d, unsigned i = 0) { return d.messages()[i].getPayload().which(); }

Scenario smoke_with(const std::string& from, const std::string& to) { return testing::edited_scenario("scenarios/sim-smoke.toml", from, to); }

}  // namespace

TEST_CASE("silu(x) and x * sigmoid(x) rewrites are duplicates before training, in simulation", "[engineer][duplicate]") {
  EngineerState engineer(EngineerState::Settings::of(load_scenario(testing::source("scenarios/sim-smoke.toml"))));
  auto baseline = propose(engineer, 1, kDeltanet, "baseline");
  REQUIRE(kind(baseline) == msg::Payload::TRAIN_JOB);
  auto rewritten = propose(engineer, 2, deltanet_rewritten());
  REQUIRE(rewritten.messages().size() == 1);
  REQUIRE(kind(rewritten) == msg::Payload::DUPLICATE);  // no trainJob
  auto duplicate = rewritten.messages()[0].getPayload().getDuplicate();
  CHECK(duplicate.getSameAs() == 1);
  CHECK(std::string(duplicate.getKind().cStr()) == "functional");
  // A real change is not a duplicate.
  auto relu = propose(engineer, 3, testing::edited_text("lang/baselines/deltanet.arch", "  q_act = silu(q_conv)\n", "  q_act = relu(q_conv)\n"));
  CHECK(kind(relu) == msg::Payload::TRAIN_JOB);
}

TEST_CASE("the live probe gives equal functions one hash, deterministically, and others another", "[engineer][duplicate][probe]") {
  const lang::Program original = lang::parse(kDeltanet);
  const lang::Program rewritten = lang::parse(deltanet_rewritten());
  const lang::Program relu = lang::parse(testing::edited_text("lang/baselines/deltanet.arch", "  q_act = silu(q_conv)\n", "  q_act = relu(q_conv)\n"));
  training::ProbeConfig probe;
  CHECK(lang::structural_hash(original) != lang::structural_hash(rewritten));
  const std::string hash = training::functional_hash(original, probe);
  CHECK(hash.size() == 64);
  CHECK(training::functional_hash(original, probe) == hash);
  CHECK(training::functional_hash(rewritten, probe) == hash);
  CHECK(training::functional_hash(relu, probe) != hash);
  probe.seed = 2;  // other weights, other outputs
  CHECK(training::functional_hash(original, probe) != hash);

  // The engineer of a live campaign uses the probe.
  EngineerState engineer(EngineerState::Settings::of(parse_scenario(testing::kTinyLiveScenario, "live-tiny.toml")));
  REQUIRE(kind(propose(engineer, 1, kDeltanet, "baseline")) == msg::Payload::TRAIN_JOB);
  auto duplicate = propose(engineer, 2, deltanet_rewritten());
  REQUIRE(kind(duplicate) == msg::Payload::DUPLICATE);
  CHECK(std::string(duplicate.messages()[0].getPayload().getDuplicate().getKind().cStr()) == "functional");
  CHECK(duplicate.messages()[0].getPayload().getDuplicate().getRef().getStructuralHash() != lang::structural_hash(original));
}

TEST_CASE("a program over the parameter budget is repaired by resizing, and the repair is trained", "[engineer][repair]") {
  EngineerState engineer(EngineerState::Settings::of(load_scenario(testing::source("scenarios/sim-smoke.toml"))));
  REQUIRE(kind(propose(engineer, 1, kDeltanet, "baseline")) == msg::Payload::TRAIN_JOB);
  // Five times as wide q, k and v: far over the budget (param_tolerance 1.2).
  std::string wide = kDeltanet;
  for (const char* name : {"q_proj", "k_proj", "v_proj"}) {
    const std::string from = std::string(name) + " = linear(x, out=D)";
    wide.replace(wide.find(from), from.size(), std::string(name) + " = linear(x, out=D*5)");
  }
  auto repaired = propose(engineer, 2, wide);
  REQUIRE(repaired.messages().size() == 1);
  REQUIRE(kind(repaired) == msg::Payload::PROPOSAL);
  CHECK(std::string(repaired.messages()[0].getTo().cStr()) == "engineer");
  auto proposal = repaired.messages()[0].getPayload().getProposal();
  CHECK(std::string(proposal.getOperator().cStr()) == "repair:shrink_width");
  CHECK(proposal.getRepairOf() == 2);
  CHECK(proposal.getParentIds()[0] == 2);
  CHECK(proposal.getArchId() > kOwnIdBase);
  CHECK_THAT(std::string(proposal.getMotivation().cStr()), Catch::Contains("parameters check"));
  auto trained = redeliver(engineer, repaired.messages()[0]);
  REQUIRE(kind(trained) == msg::Payload::TRAIN_JOB);
  CHECK(trained.messages()[0].getPayload().getTrainJob().getRef().getRepairOf() == 2);

  // With no attempts allowed it is rejected as before.
  EngineerState strict(EngineerState::Settings::of(smoke_with("[campaign]", "[engineer]\nrepair_attempts = 0\n\n[campaign]")));
  auto rejected = propose(strict, 2, wide);
  REQUIRE(kind(rejected) == msg::Payload::REJECTION);
  CHECK(std::string(rejected.messages()[0].getPayload().getRejection().getCheck().cStr()) == "parameters");
}

TEST_CASE("non-causal and quadratic programs get their causal, bounded forms", "[engineer][repair]") {
  EngineerState engineer(EngineerState::Settings::of(load_scenario(testing::source("scenarios/sim-smoke.toml"))));
  auto peeking = propose(engineer, 2, testing::edited_text("lang/baselines/deltanet.arch", "v_conv = short_conv(v_proj, k=4)", "v_conv = noncausal_conv(v_proj, k=4)"));
  REQUIRE(kind(peeking) == msg::Payload::PROPOSAL);
  CHECK(std::string(peeking.messages()[0].getPayload().getProposal().getOperator().cStr()) == "repair:causal_conv");
  auto quadratic = propose(engineer, 3, lang::find_baseline("softmax_attention")->text);
  REQUIRE(kind(quadratic) == msg::Payload::PROPOSAL);
  CHECK(std::string(quadratic.messages()[0].getPayload().getProposal().getOperator().cStr()) == "repair:sliding_window");
  // seq_mean has no causal form: no rule fits, it is rejected.
  auto mean = propose(engineer, 4, "program peeking\n  m = seq_mean(x)\n  y = linear(m, out=D)\n  return y\n");
  REQUIRE(kind(mean) == msg::Payload::REJECTION);
  CHECK(std::string(mean.messages()[0].getPayload().getRejection().getCheck().cStr()) == "causality");
}

TEST_CASE("a training failure is repaired by the rule that fits it, for a bounded number of attempts", "[engineer][repair]") {
  EngineerState engineer(EngineerState::Settings::of(smoke_with("[campaign]", "[engineer]\nrepair_attempts = 2\n\n[campaign]")));
  const std::string unnormalised = testing::edited_text("lang/baselines/deltanet.arch", "  k = l2norm(k_heads)\n", "  k = rmsnorm(k_heads)\n");
  auto job = propose(engineer, 2, unnormalised);
  REQUIRE(kind(job) == msg::Payload::TRAIN_JOB);
  auto fail = [&](msg::JobRef::Reader ref, msg::FailureKind failure_kind, const std::string& failure) {
    return deliver(engineer, [&](msg::Payload::Builder p) {
      auto result = p.initTrainFailure().initResult();
      result.setRef(ref);
      result.setStatus(msg::TrainStatus::FAILED);
      result.setFailure(failure);
      result.setFailureKind(failure_kind);
    });
  };
  // Diverged: the keys get their L2 norm back.
  auto first = fail(job.messages()[0].getPayload().getTrainJob().getRef(), msg::FailureKind::NUMERICAL, "lm nan_loss: step 7");
  REQUIRE(kind(first) == msg::Payload::PROPOSAL);
  CHECK(std::string(first.messages()[0].getPayload().getProposal().getOperator().cStr()) == "repair:add_norm");
  auto second_job = redeliver(engineer, first.messages()[0]);
  REQUIRE(kind(second_job) == msg::Payload::TRAIN_JOB);
  // Diverged again: nothing left to normalise or bound, so a retry at half the learning rate,
  // trained although it is the same program.
  auto second = fail(second_job.messages()[0].getPayload().getTrainJob().getRef(), msg::FailureKind::NUMERICAL,
                     "mqar divergence: loss 9.1 at step 40");
  REQUIRE(kind(second) == msg::Payload::PROPOSAL);
  auto retry = second.messages()[0].getPayload().getProposal();
  CHECK(std::string(retry.getOperator().cStr()) == "repair:lower_lr");
  CHECK(retry.getLrScale() == 0.5);
  auto third_job = redeliver(engineer, second.messages()[0]);
  REQUIRE(kind(third_job) == msg::Payload::TRAIN_JOB);
  CHECK(third_job.messages()[0].getPayload().getTrainJob().getRef().getLrScale() == 0.5);
  // Two attempts spent: the failure goes back to the analyst.
  auto given_up = fail(third_job.messages()[0].getPayload().getTrainJob().getRef(), msg::FailureKind::NUMERICAL, "lm nan_loss: step 3");
  REQUIRE(kind(given_up) == msg::Payload::UNREPAIRED);
  CHECK(std::string(given_up.messages()[0].getTo().cStr()) == "analyst");
  // A failure no rule addresses is not repaired, whatever its text says.
  auto cancelled = fail(job.messages()[0].getPayload().getTrainJob().getRef(), msg::FailureKind::CANCELLED, "cancelled at a NaN");
  CHECK(kind(cancelled) == msg::Payload::UNREPAIRED);
}

TEST_CASE("numerical failures are repaired in order: normalisation, bounded decay, lower learning rate", "[engineer][repair]") {
  const lang::Program gla = lang::parse(lang::find_baseline("gla")->text);
  lang::Program unbounded = gla;
  for (auto& s : unbounded.body) {
    if (s.op == "logsigmoid") s.op = "tanh";  // GLA's decay no longer <= 0: a type error
  }
  const lang::ModelShape shape{256, 2048};
  CHECK_THROWS_WITH(lang::check(unbounded, shape), Catch::Contains("must be a log decay"));
  const int64_t target = lang::derive(gla, shape).params;
  auto repair = [&](const lang::Program& p) { return repair_for_failure(p, msg::FailureKind::NUMERICAL, shape, {512, 1024}, target, 1.2); };
  // Normalising alone leaves the type error, so the decay is bounded first.
  const auto bounded = repair(unbounded);
  REQUIRE(bounded);
  CHECK(bounded->rule == "bound_decay");
  const auto normed = repair(bounded->program);  // GLA's queries and keys are not L2-normalised
  REQUIRE(normed);
  CHECK(normed->rule == "add_norm");
  const auto retry = repair(normed->program);
  REQUIRE(retry);
  CHECK(retry->rule == "lower_lr");
  CHECK(retry->program == normed->program);
  // A slot that crashed, hung or answered garbage says nothing about the program; nor does a
  // model that cannot be built or a cancelled job.
  for (const auto kind : {msg::FailureKind::GARBAGE, msg::FailureKind::TIMEOUT, msg::FailureKind::CRASH, msg::FailureKind::MODEL,
                          msg::FailureKind::CANCELLED, msg::FailureKind::NONE}) {
    CHECK_FALSE(repair_for_failure(unbounded, kind, shape, {512, 1024}, target, 1.2));
  }
  // A failed measured check gets that check's repair.
  const lang::Program peeking = lang::parse("program peeking\n  c = noncausal_conv(x, k=4)\n  y = linear(c, out=D)\n  return y\n");
  const auto causal = repair_for_failure(peeking, msg::FailureKind::CAUSALITY, shape, {512, 1024}, target, 1.2);
  REQUIRE(causal);
  CHECK(causal->rule == "causal_conv");
}

TEST_CASE("campaigns with repairs, duplicates and ablations replay bit for bit, and the lineage shows them", "[campaign][engineer][analyst]") {
  // Failures are frequent here, so that repairs happen; the researcher proposes the same as ever.
  std::string text = testing::edited_text("scenarios/sim-smoke.toml", "failure_rate = 0.05", "failure_rate = 0.15");
  text.replace(text.find("max_experiments = 100"), 21, "max_experiments = 300");
  // A quieter world than the measured one, so that confirmed breakthroughs (and so ablations)
  // happen within 300 experiments.
  text.replace(text.find("noise = 0.005"), 13, "noise = 0.002");
  const Scenario scenario = parse_scenario(text, "sim-smoke-300.toml");
  const fs::path dir = testing::fresh_dir("engineer-campaign");
  const CampaignSummary recorded = run_campaign(scenario, 1, dir);
  CHECK(simulate_campaign(scenario, 1).digest == recorded.digest);
  CHECK(recorded.experiments == scenario.campaign.max_experiments);  // ablations do not count

  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  const storage::Lineage lineage(*store);
  size_t repairs = 0, ablations = 0, trained_ablations = 0;
  for (const auto& [id, arch] : lineage.archs()) {
    if (arch.repair()) {
      ++repairs;
      CHECK(id > kOwnIdBase);
      REQUIRE(arch.parent_ids.size() == 1);
      CHECK(lineage.find(arch.parent_ids[0]));  // the attempt it repairs is in the lineage too
      CHECK_THAT(arch.motivation, Catch::Contains("failed"));
    }
    if (arch.ablation()) {
      ++ablations;
      if (arch.explore && arch.explore->outcome == "ablation") ++trained_ablations;
      CHECK_FALSE(arch.verify);  // never promoted
    }
  }
  CHECK(repairs > 0);
  CHECK(recorded.breakthroughs > 0);
  CHECK(ablations > 0);
  CHECK(trained_ablations > 0);
  // The analyst wrote the ablations back as insights naming components.
  bool ablation_insight = false;
  store->for_each_insight([&](uint64_t, std::string_view bytes) {
    const std::string text = msg::CanonicalView<msg::InsightRecord>(bytes).root().getText().cStr();
    if (text.rfind("ablations of breakthrough arch", 0) == 0 && text.find(" contributes ") != std::string::npos) ablation_insight = true;
  });
  CHECK(ablation_insight);
  for (const auto& j : lineage.judgments()) CHECK_FALSE((j.breakthrough && lineage.find(j.arch_id)->ablation()));
  store.reset();
  fs::remove_all(dir);
}
