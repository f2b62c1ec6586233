// The surrogate oracle: a simulation that learns from a tiny live run's recorded results.
#include <catch2/catch.hpp>

#include "campaign/campaign.h"
#include "messages/codec.h"
#include "oracles/surrogate_oracle.h"
#include "retrieval/cognition_index.h"
#include "storage/run_store.h"
#include "tests/test_helpers.h"

using namespace asiarch;

TEST_CASE("a surrogate simulation from a live run is deterministic and returns recorded results", "[surrogate]") {
  std::string live = testing::kTinyLiveScenario;
  live.replace(live.find("max_experiments = 5"), 19, "max_experiments = 3");
  const auto live_dir = testing::fresh_dir("surrogate-live");
  const auto live_file = testing::write_file(testing::fresh_dir("surrogate-live.toml"), live);
  REQUIRE(testing::sh(testing::cli("run " + live_file + " --out " + live_dir.string())).code == 0);

  const Scenario scenario = testing::edited_scenario("scenarios/sim-smoke.toml", "kind = \"synthetic\"",
                                                     "kind = \"surrogate\"\nrun = \"" + live_dir.string() + "\"\nk = 3");
  const CampaignSummary a = simulate_campaign(scenario, 1);
  const CampaignSummary b = simulate_campaign(scenario, 1);
  CHECK(a.digest == b.digest);
  CHECK(a.experiments == scenario.campaign.max_experiments);

  // A recorded program gets its recorded result, without noise.
  const SurrogateOracle oracle(scenario.oracle, scenario.file);
  REQUIRE(oracle.recorded(msg::Fidelity::EXPLORE) > 0);
  auto store = storage::RunStore::open(live_dir, storage::RunStore::Mode::ReadOnly);
  const std::string result_bytes = *store->result(1, 0);
  msg::CanonicalView<msg::ResultRecord> result_view(result_bytes);
  auto record = result_view.root();
  const std::string arch_bytes = *store->arch(1);
  const std::string program = msg::CanonicalView<msg::ArchRecord>(arch_bytes).root().getProgram().cStr();
  Rng noise(7, "test");
  const OracleOutcome outcome = oracle.evaluate(lang::parse(program), {256, 2048}, msg::Fidelity::EXPLORE, true, noise);
  CHECK(outcome.ok == (record.getOutcome() != msg::Outcome::FAILED));
  CHECK(outcome.loss == record.getLoss());
  CHECK(outcome.accuracy == record.getAccuracy());
  store.reset();

  // Bad input: clear errors, exit 2 from the CLI.
  const Scenario missing = testing::edited_scenario("scenarios/sim-smoke.toml", "kind = \"synthetic\"", "kind = \"surrogate\"\nrun = \"/nonexistent/run\"");
  CHECK_THROWS_WITH(SurrogateOracle(missing.oracle, missing.file), Catch::Contains("is not a run directory"));
  const auto sim_dir = testing::fresh_dir("surrogate-sim");
  const auto small = testing::write_file(testing::fresh_dir("surrogate-small.toml"),
                                         testing::edited_text("scenarios/sim-smoke.toml", "max_experiments = 100", "max_experiments = 5"));
  REQUIRE(testing::sh(testing::cli("run " + small + " --out " + sim_dir.string())).code == 0);
  const Scenario simulated = testing::edited_scenario("scenarios/sim-smoke.toml", "kind = \"synthetic\"", "kind = \"surrogate\"\nrun = \"" + sim_dir.string() + "\"");
  CHECK_THROWS_WITH(SurrogateOracle(simulated.oracle, simulated.file), Catch::Contains("is a simulated run"));
  const auto bad = testing::write_file(testing::fresh_dir("surrogate-bad.toml"), simulated.bytes);
  const auto refused = testing::sh(testing::cli("run " + bad + " --out " + testing::fresh_dir("surrogate-refused").string()));
  CHECK(refused.code == 2);
  CHECK_THAT(refused.output, Catch::Contains("is a simulated run"));
  std::filesystem::remove_all(live_dir);
  std::filesystem::remove_all(sim_dir);
}

TEST_CASE("the surrogate embeds programs with number arguments", "[surrogate]") {
  // Numbers became arguments in 0.2.0 (max(a, 0.05)); the embedding read every argument as a value.
  const lang::Program floored = lang::parse("program n\n  a = linear(x, out=D)\n  b = max(a, 0.05)\n  return b\n");
  const lang::Program plain = lang::parse("program n\n  a = linear(x, out=D)\n  b = relu(a)\n  return b\n");
  CHECK(program_embedding(floored).size() == static_cast<size_t>(retrieval::kEmbeddingDim));
  CHECK(program_embedding(floored) != program_embedding(plain));
}
