// The researcher's strategies and parent selections: campaigns replay bit for bit with each,
// bad values are clear errors, and at equal budget the full researcher finds more breakthroughs
// than random mutation and than itself without cognition (`asiarch bench search`).
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "campaign/campaign.h"
#include "tests/test_helpers.h"

using namespace asiarch;
using namespace asiarch::testing;

namespace {

double json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\": ([0-9.]+)"))) throw std::runtime_error("no " + key + " in " + json);
  return std::stod(m[1].str());
}

}  // namespace

TEST_CASE("campaigns replay bit for bit with every strategy and selection", "[researcher]") {
  std::set<std::string> digests;
  for (const std::string selection : {"paper", "islands"}) {
    for (const std::string strategy : {"full", "random", "no_cognition"}) {
      const Scenario scenario = edited_scenario("scenarios/sim-smoke.toml", "[oracle]",
                                                "[researcher]\nstrategy = \"" + strategy + "\"\nselection = \"" + selection +
                                                    "\"\nislands = 3\nmigration_interval = 10\n\n[oracle]");
      INFO(selection << " " << strategy);
      const CampaignSummary a = simulate_campaign(scenario, 1);
      const CampaignSummary b = simulate_campaign(scenario, 1);
      CHECK(a.digest == b.digest);
      CHECK(a.experiments == scenario.campaign.max_experiments);
      digests.insert(a.digest);
    }
  }
  CHECK(digests.size() == 6);  // each option changes the search
}

TEST_CASE("bad researcher options are errors that say what to write", "[researcher]") {
  CHECK_THROWS_WITH(edited_scenario("scenarios/sim-smoke.toml", "[oracle]", "[researcher]\nstrategy = \"greedy\"\n\n[oracle]"),
                    Catch::Contains("write strategy = \"full\", \"random\" or \"no_cognition\""));
  CHECK_THROWS_WITH(edited_scenario("scenarios/sim-smoke.toml", "[oracle]", "[researcher]\nselection = \"uct\"\n\n[oracle]"),
                    Catch::Contains("selection = \"islands\""));
  CHECK_THROWS_WITH(edited_scenario("scenarios/sim-smoke.toml", "[oracle]", "[researcher]\nislands = 0\n\n[oracle]"),
                    Catch::Contains("islands"));
}

TEST_CASE("bench search: the full researcher beats random mutation and itself without cognition", "[researcher]") {
  const Result r = sh(cli("bench search --seeds 10 --json --scenario " + source("scenarios/search.toml")));
  REQUIRE(r.code == 0);
  const std::string json = last_line(r.output);
  INFO(json);
  CHECK(json.find("\"seeds\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]") != std::string::npos);
  const double full = json_number(json, "full"), random = json_number(json, "random"), no_cognition = json_number(json, "no_cognition");
  CHECK(full >= 1.5 * random);
  CHECK(full > no_cognition);

  const Result bad = sh(cli("bench search --seeds 1 --scenario " + source("scenarios/no-such-file.toml")));
  CHECK(bad.code == 2);
}
