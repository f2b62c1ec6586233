// The analyst's diagnosis and fitness: the actor state driven directly.
#include <catch2/catch.hpp>

#include "actors/analyst.h"
#include "tests/test_helpers.h"

using namespace asiarch;
using testing::deliver;
using testing::Delivery;

TEST_CASE("the analyst's diagnosis names what the measurements show", "[analyst]") {
  AnalystState::Measured reference;
  reference.loss = 3.0;
  reference.accuracy = 0.8;
  reference.tokens_per_second = 1000;
  reference.peak_memory = 1e6;
  reference.state_size = 1000;
  AnalystState::Measured m = reference;
  m.accuracy = 0.5;
  m.tokens_per_second = 500;
  m.peak_memory = 2e6;
  m.state_size = 4000;
  const std::string text = AnalystState::diagnose(m, reference);
  CHECK_THAT(text, Catch::StartsWith("associative recall is weaker than the reference (0.500 vs 0.800)"));
  CHECK_THAT(text, Catch::Contains("slower than the reference (0.50x"));
  CHECK_THAT(text, Catch::Contains("memory grows"));
  CHECK_THAT(text, Catch::Contains("larger recurrent state"));
  CHECK_THAT(AnalystState::diagnose(reference, reference), !Catch::Contains("slower") && !Catch::Contains("memory grows"));
  CHECK_THAT(AnalystState::diagnose_failure({msg::FailureKind::NUMERICAL, "lm nan_loss: step 7", 7}), Catch::Contains("loss spikes early (step 7)"));
  CHECK_THAT(AnalystState::diagnose_failure({msg::FailureKind::NUMERICAL, "lm nan_eval: the held-out loss is nan"}), Catch::EndsWith("loss diverges: stabilise the state with normalisation of keys, a bounded decay or gating"));
  // The kind decides, not the words: a model error that mentions a NaN is no numerical failure.
  CHECK(AnalystState::diagnose_failure({msg::FailureKind::MODEL, "model: a NaN initial value"}) == "training failed: model: a NaN initial value");
}

TEST_CASE("efficiency objectives change fitness: a faster program ranks higher", "[analyst][fitness]") {
  // Two explore results equal but for speed, scored against the same reference.
  const Scenario scenario = testing::edited_scenario("scenarios/sim-smoke.toml", "[cost]", "[fitness]\nthroughput_weight = 1.0\n\n[cost]");
  AnalystState analyst(AnalystState::Settings::of(scenario));
  auto result = [&](uint64_t id, bool baseline, double tokens_per_second) {
    return deliver(analyst, [&](msg::Payload::Builder p) {
      auto r = p.initTrainResult();
      auto ref = r.initRef();
      ref.setArchId(id);
      ref.setBaseline(baseline);
      if (baseline) ref.setBaselineName("deltanet");
      ref.setStateSize(1000);
      r.setLoss(3.0);
      r.setAccuracy(0.5);
      r.setTokensPerSecond(tokens_per_second);
      r.setPeakMemoryBytes(1000000);
    });
  };
  result(1, true, 1000);
  auto fast = result(7, false, 2000);
  auto slow = result(8, false, 500);
  auto fitness = [](Delivery& d) { return d.messages()[0].getPayload().getPoolUpdate().getFitness(); };
  CHECK(fitness(fast) > fitness(slow));
  CHECK_THAT(std::string(slow.messages()[0].getPayload().getPoolUpdate().getDiagnosis().cStr()), Catch::Contains("slower than the reference"));
}

TEST_CASE("a failed result is never scored, whatever its text says or lacks", "[analyst]") {
  // No repairs, so that the analyst records the failure itself.
  const Scenario scenario = testing::edited_scenario("scenarios/sim-smoke.toml", "[cost]", "[engineer]\nrepair_attempts = 0\n\n[cost]");
  AnalystState analyst(AnalystState::Settings::of(scenario));
  auto failed = deliver(analyst, [&](msg::Payload::Builder p) {
    auto r = p.initTrainResult();
    r.initRef().setArchId(7);
    r.setStatus(msg::TrainStatus::FAILED);
    r.setLoss(3.0);
    r.setAccuracy(0.5);
  });
  REQUIRE(failed.messages().size() == 1);
  auto update = failed.messages()[0].getPayload().getPoolUpdate();
  CHECK(update.getOutcome() == msg::Outcome::FAILED);
  CHECK(std::string(update.getDiagnosis().cStr()) == "training failed: failed without a reason");
}
