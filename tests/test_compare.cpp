// asiarch compare and asiarch bench noise from the command line, on runs of a few steps: what
// they print is the statistics of the runs they trained, the results do not depend on --jobs,
// and bad input exits 2. (The statistics themselves are tested in test_stats.cpp; whether
// compare tells programs apart at full length is in the README, measured.)
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "tests/test_helpers.h"

using namespace asiarch::testing;
using nlohmann::json;

namespace {

json json_output(const std::string& command) {
  const Result result = sh(cli(command));
  INFO(command << "\n" << result.output);
  REQUIRE(result.code == 0);
  return json::parse(last_line(result.output));  // progress goes before it
}

double mean_of(const json& runs, const char* metric) {
  double sum = 0;
  for (const auto& run : runs) sum += run[metric].get<double>();
  return sum / static_cast<double>(runs.size());
}

}  // namespace

TEST_CASE("compare trains both sides on their own seeds and reports Welch's interval and a verdict", "[compare][cli]") {
  const std::string args = "compare deltanet linear_attention --task both --seeds 2 --seed 7 --steps 6 --json";
  const json one_job = json_output(args + " --jobs 1");
  const json two_jobs = json_output(args + " --jobs 2");
  CHECK(one_job == two_jobs);  // the runs are the same whatever the parallelism

  CHECK(one_job["a"] == "deltanet");
  CHECK(one_job["b"] == "linear_attention");
  CHECK(one_job["test"] == "welch");
  for (const char* task : {"lm", "mqar"}) {
    INFO(task);
    const json& t = one_job["tasks"][task];
    const char* metric = std::string(task) == "lm" ? "bits_per_byte" : "accuracy";
    const json& a = t["a"]["runs"];
    const json& b = t["b"]["runs"];
    REQUIRE(a.size() == 2);
    REQUIRE(b.size() == 2);
    // A trains seeds 7 and 8, B the next two: no run is shared.
    CHECK(a[0]["seed"] == 7);
    CHECK(a[1]["seed"] == 8);
    CHECK(b[0]["seed"] == 9);
    CHECK(b[1]["seed"] == 10);
    CHECK(t["a"]["mean"].get<double>() == Approx(mean_of(a, metric)));
    CHECK(t["b"]["mean"].get<double>() == Approx(mean_of(b, metric)));
    const double difference = t["difference"].get<double>();
    CHECK(difference == Approx(t["a"]["mean"].get<double>() - t["b"]["mean"].get<double>()));
    CHECK(t["low"].get<double>() <= difference);
    CHECK(t["high"].get<double>() >= difference);
    const std::string verdict = t["verdict"];
    const bool clear_of_zero = t["low"].get<double>() > 0 || t["high"].get<double>() < 0;
    CHECK((verdict == "no detectable difference") == !clear_of_zero);
    CHECK((verdict == "better" || verdict == "worse" || verdict == "no detectable difference"));
  }
  CHECK(one_job["tasks"]["mqar"]["a"]["runs"][0]["rung_accuracy"].size() == 3);

  const Result text = sh(cli("compare deltanet deltanet --task lm --seeds 2 --steps 4"));
  CHECK(text.code == 0);
  CHECK(text.output.find("Welch's t on 2 seeds a side") != std::string::npos);
  CHECK(text.output.find("verdict: ") != std::string::npos);

  CHECK(sh(cli("compare deltanet no_such_program")).code == 2);
  CHECK(sh(cli("compare deltanet retnet --seeds 1")).code == 2);  // one seed gives no interval
  CHECK(sh(cli("compare deltanet retnet --task translation")).code == 2);
}

TEST_CASE("bench noise reports each program's seed spread and the detectable difference", "[compare][cli]") {
  const json noise = json_output("bench noise --fidelity explore --seeds 2 --steps 6 --programs deltanet,linear_attention --json");
  REQUIRE(noise["programs"].size() == 2);
  for (const auto& row : noise["programs"]) {
    INFO(row.dump());
    CHECK(row["fidelity"] == "explore");
    CHECK(row["failed_runs"] == 0);
    CHECK(row["lm_bpb_sd"].get<double>() >= 0);
    CHECK(row["mqar_sd"].get<double>() >= 0);
    CHECK(row["plateau_runs"].get<int>() <= 2);
  }
  REQUIRE(noise["detectable"].size() == 1);
  const json& detectable = noise["detectable"][0];
  const double pooled = std::sqrt((std::pow(noise["programs"][0]["lm_bpb_sd"].get<double>(), 2) +
                                   std::pow(noise["programs"][1]["lm_bpb_sd"].get<double>(), 2)) / 2);
  CHECK(detectable["lm_pooled_sd"].get<double>() == Approx(pooled));
  // More seeds detect smaller differences.
  CHECK(detectable["lm_min_difference_5_seeds"].get<double>() < detectable["lm_min_difference_3_seeds"].get<double>());

  CHECK(sh(cli("bench noise --programs no_such_program")).code == 2);
  CHECK(sh(cli("bench noise --seeds 1")).code == 2);
}
