// `asiarch sweep`: the scaling-law statistics on data with a known answer, and small sweeps
// through the command line: their files, the same digests however many jobs run them, no rerun
// of finished campaigns, the resume of a killed one, and sweep files that are refused.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "campaign/campaign.h"
#include "storage/run_store.h"
#include "tests/test_helpers.h"
#include "tools/scaling_fit.h"

namespace fs = std::filesystem;
using namespace asiarch;
using namespace asiarch::testing;

namespace {

// A sweep file in `dir`: a shipped scenario's text followed by `sweep_table`.
std::string sweep_file(const fs::path& dir, const std::string& scenario, const std::string& sweep_table) {
  fs::create_directories(dir);
  return write_file(dir / "sweep.toml", read_file(source(scenario)) + "\n" + sweep_table);
}

// "budget-seed" -> digest, from fit.json's per_campaign entries.
std::map<std::string, std::string> campaign_digests(const fs::path& out) {
  const std::string json = read_file(out / "fit.json");
  const std::regex entry("\\{\"budget\": (\\d+), \"seed\": (\\d+),[^}]*\"digest\": \"([0-9a-f]{64})\"\\}");
  std::map<std::string, std::string> digests;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), entry); it != std::sregex_iterator(); ++it) {
    digests[(*it)[1].str() + "-" + (*it)[2].str()] = (*it)[3].str();
  }
  return digests;
}

// Whether a killed campaign logged its header: false too for a store killed before its tables
// existed, which reads as damaged.
bool has_header(const fs::path& run) {
  try {
    return fs::exists(run / "data.mdb") && storage::RunStore::open(run, storage::RunStore::Mode::ReadOnly)->meta("header").has_value();
  } catch (const storage::StorageError&) {
    return false;
  }
}

size_t count_of(const std::string& text, const std::string& word) {
  size_t count = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE("a line fitted to points on a line is that line with R2 = 1", "[sweep][fit]") {
  const std::vector<double> x = {0, 100, 200, 300, 400, 500};
  std::vector<double> y;
  for (double v : x) y.push_back(0.0055 * v - 4.4);
  const tools::LineFit fit = tools::fit_line(x, y);
  CHECK(fit.slope == Approx(0.0055).epsilon(1e-12));
  CHECK(fit.intercept == Approx(-4.4).epsilon(1e-12));
  CHECK(fit.r2 == 1.0);
  CHECK(fit.points == 6);
  // A constant is a line too.
  CHECK(tools::fit_line({1, 2, 3}, {7, 7, 7}).r2 == 1.0);
  CHECK_THROWS_AS(tools::fit_line({1, 1}, {2, 3}), std::invalid_argument);
  CHECK_THROWS_AS(tools::fit_line({1}, {2}), std::invalid_argument);
}

TEST_CASE("least squares, t quantiles and t-intervals match values computed by hand", "[sweep][fit]") {
  // y = 1 + 2x with residuals -1, +1, +1, -1: slope 2, intercept 1, SS_res 4, SS_tot 84.
  const tools::LineFit fit = tools::fit_line({0, 1, 2, 3}, {0, 4, 6, 6});
  CHECK(fit.slope == Approx(2.0));
  CHECK(fit.intercept == Approx(1.0));
  CHECK(fit.r2 == Approx(1.0 - 4.0 / 24.0));
  // Student's t, two-sided 95%: the textbook table.
  CHECK(tools::student_t_quantile(0.975, 1) == Approx(12.7062).epsilon(1e-4));
  CHECK(tools::student_t_quantile(0.975, 4) == Approx(2.7764).epsilon(1e-4));
  CHECK(tools::student_t_quantile(0.975, 30) == Approx(2.0423).epsilon(1e-4));
  CHECK(tools::student_t_quantile(0.5, 7) == Approx(0.0).margin(1e-9));
  CHECK(tools::student_t_cdf(-2.7764, 4) == Approx(0.025).epsilon(1e-3));
  // Five values with mean 5 and sd sqrt(2.5): half-width 2.7764 * sqrt(2.5 / 5).
  const tools::MeanInterval m = tools::mean_interval({3, 4, 5, 6, 7});
  CHECK(m.mean == Approx(5.0));
  CHECK(m.sd == Approx(std::sqrt(2.5)));
  CHECK(m.low == Approx(5.0 - 2.776445 * std::sqrt(0.5)).epsilon(1e-5));
  CHECK(m.high == Approx(5.0 + 2.776445 * std::sqrt(0.5)).epsilon(1e-5));
  CHECK(std::isnan(tools::mean_interval({3}).low));
}

TEST_CASE("a small sweep writes its files, repeats its digests at any job count and reruns nothing", "[sweep][cli]") {
  const fs::path dir = fresh_dir("sweep");
  const std::string file = sweep_file(dir, "scenarios/sim-smoke.toml",
                                      "# the sweep of this test\n[sweep]\nbudgets = [4, 2]\nseeds = [1, 2]\nhorizon_gpu_hours = 3000.0\n");
  const fs::path a = dir / "a", b = dir / "b";
  const Result first = sh(cli("sweep " + file + " --out " + a.string() + " --jobs 2"));
  INFO(first.output);
  REQUIRE(first.code == 0);
  CHECK(count_of(first.output, "/4] budget ") == 4);  // one progress line per campaign
  for (const char* name : {"scaling.csv", "fit.json", "scaling.svg", "scaling.png", "scaling.gp", "scaling.dat", "scaling_by_budget.svg",
                           "scaling_by_budget.png"}) {
    INFO(name);
    CHECK(fs::file_size(a / name) > 100);
  }
  const std::string csv = read_file(a / "scaling.csv");
  CHECK(csv.rfind("budget,seed,gpu_hours,breakthroughs,experiments,virtual_hours\n", 0) == 0);
  CHECK(csv.find("\n2,1,0,0,0,0\n") != std::string::npos);
  CHECK(csv.find("\n4,2,") != std::string::npos);
  const std::string json = read_file(a / "fit.json");
  for (const char* key : {"\"slope_per_1000_gpu_hours\"", "\"intercept\"", "\"r2\"", "\"campaigns\": 4", "\"per_budget\"", "\"paper\"",
                          "\"across_campaigns\"", "\"slope_per_1000_gpu_hours_ci95\"", "\"comparison\""}) {
    INFO(key);
    CHECK(json.find(key) != std::string::npos);
  }
  CHECK(read_file(a / "scaling.svg").find("<svg") != std::string::npos);

  // Each campaign is a normal run directory: its scenario is the file up to [sweep], with the
  // budget and horizon set, and it replays.
  const std::string scenario = read_file(a / "runs" / "2-1" / "scenario.toml");
  CHECK(scenario.find("gpu_slots = 2") != std::string::npos);
  CHECK(scenario.find("max_gpu_hours = 3000") != std::string::npos);
  CHECK(scenario.find("[sweep]") == std::string::npos);
  CHECK(scenario.find("the sweep of this test") == std::string::npos);
  CHECK(read_summary(a / "runs" / "2-1").stop_reason == "reached max_gpu_hours");
  CHECK(sh(cli("replay " + (a / "runs" / "4-2").string())).code == 0);

  // The same sweep with one job: the same campaigns, digest for digest.
  const Result second = sh(cli("sweep " + file + " --out " + b.string() + " --jobs 1"));
  REQUIRE(second.code == 0);
  const auto digests = campaign_digests(a);
  CHECK(digests.size() == 4);
  CHECK(campaign_digests(b) == digests);
  CHECK(std::set<std::string>{"2-1", "2-2", "4-1", "4-2"} == [&] {
    std::set<std::string> keys;
    for (const auto& [key, digest] : digests) keys.insert(key);
    return keys;
  }());

  // Run again into the first directory: nothing is rerun and the results are the same.
  const Result again = sh(cli("sweep " + file + " --out " + a.string()));
  CHECK(again.code == 0);
  CHECK(count_of(again.output, "finished before; not run again") == 4);
  CHECK(campaign_digests(a) == digests);
  fs::remove_all(dir);
}

TEST_CASE("a sweep killed mid-campaign resumes it to the uninterrupted digest", "[sweep][cli]") {
  const fs::path dir = fresh_dir("sweep-resume");
  const std::string file = sweep_file(dir, "scenarios/paper-scale.toml", "[sweep]\nbudgets = [32]\nseeds = [1]\nhorizon_gpu_hours = 8000.0\n");
  REQUIRE(sh(cli("sweep " + file + " --out " + (dir / "reference").string())).code == 0);
  const std::string expected = campaign_digests(dir / "reference").at("32-1");
  REQUIRE(sh(cli("sweep " + file + " --out " + (dir / "again").string())).code == 0);
  REQUIRE(campaign_digests(dir / "again").at("32-1") == expected);
  // Killed at chosen points of the campaign (storage/crash_point.h), from its first commit to
  // late in the run, the sweep run again resumes it and ends with the uninterrupted digest.
  for (const char* point : {"committed:2", "event:1500", "event:4000"}) {
    const fs::path out = dir / (std::string("killed-") + point);
    REQUIRE(crashed_at(point, "sweep " + file + " --out " + out.string()).code == -1);
    const fs::path run = out / "runs" / "32-1";
    CHECK((has_header(run) && !read_summary(run).finished));
    const Result rerun = sh(cli("sweep " + file + " --out " + out.string()));
    INFO("killed at " << point << "\n" << rerun.output);
    CHECK(rerun.code == 0);
    CHECK(rerun.output.find("resumed") != std::string::npos);
    CHECK(campaign_digests(out).at("32-1") == expected);
  }
  fs::remove_all(dir);
}

TEST_CASE("sweep files without a proper [sweep] table, and foreign run directories, exit 2", "[sweep][cli]") {
  const fs::path dir = fresh_dir("sweep-bad");
  struct Case {
    std::string table, message;
  };
  const std::vector<Case> cases = {
      {"", "no [sweep] table"},
      {"[sweep]\nbudgets = [1, 2]\nseeds = [1]\nhorizon_gpu_hour = 10.0\n", "did you mean 'horizon_gpu_hours'?"},
      {"[sweep]\nbudgets = [0]\nseeds = [1]\nhorizon_gpu_hours = 10.0\n", "'budgets' in [sweep] must be a non-empty array of integers from 1"},
      {"[sweep]\nbudgets = [2, 2]\nseeds = [1]\nhorizon_gpu_hours = 10.0\n", "lists a value twice"},
      {"[sweep]\nbudgets = [2]\nseeds = [1]\n", "has no 'horizon_gpu_hours'"},
      {"[sweep]\nbudgets = [2]\nseeds = [1]\nhorizon_gpu_hours = 10.0\n[researcher]\ninsights_k = 2\n", "[sweep] must be the last table"},
  };
  for (const Case& c : cases) {
    const std::string file = sweep_file(dir, "scenarios/sim-smoke.toml", c.table);
    const Result r = sh(cli("sweep " + file + " --out " + (dir / "out").string()));
    INFO(c.table << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find(c.message) != std::string::npos);
    CHECK(r.output.find(file + ":") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "out"));
  }
  // A directory that holds a campaign of another sweep is not touched.
  const std::string one = sweep_file(dir, "scenarios/sim-smoke.toml", "[sweep]\nbudgets = [2]\nseeds = [1]\nhorizon_gpu_hours = 300.0\n");
  REQUIRE(sh(cli("sweep " + one + " --out " + (dir / "out").string())).code == 0);
  // Its campaign is the in-memory simulation of the scenario it recorded, digest for digest.
  const fs::path run = dir / "out" / "runs" / "2-1";
  CHECK(simulate_campaign(parse_scenario(read_file(run / "scenario.toml"), one), 1).digest == read_summary(run).digest);
  const std::string other = sweep_file(dir, "scenarios/sim-smoke.toml", "[sweep]\nbudgets = [2]\nseeds = [1]\nhorizon_gpu_hours = 400.0\n");
  const Result foreign = sh(cli("sweep " + other + " --out " + (dir / "out").string()));
  CHECK(foreign.code == 2);
  CHECK(foreign.output.find("holds a campaign of another scenario or seed") != std::string::npos);
  CHECK(sh(cli("sweep " + (dir / "missing.toml").string())).code == 2);
  CHECK(sh(cli("sweep --help")).code == 0);
  fs::remove_all(dir);
}
