// The simulated world and the researcher's tools: mutation operators, the synthetic oracle, the
// cost model and the scenario loader.
#include <catch2/catch.hpp>

#include <filesystem>

#include "actors/mutations.h"
#include "oracles/synthetic_oracle.h"
#include "scenario/scenario.h"

using namespace asiarch;

namespace {
Scenario smoke() { return load_scenario(std::filesystem::path(ASIARCH_SOURCE_DIR) / "scenarios/sim-smoke.toml"); }
const lang::ModelShape kShape{256, 2048};
}  // namespace

TEST_CASE("every mutation operator yields a type-correct, structurally new child", "[mutations]") {
  // Crossover takes its sub-programs from reference programs: the other baselines.
  std::vector<lang::Program> references;
  for (const auto& baseline : lang::baselines()) {
    if (!baseline.reference_only) references.push_back(lang::parse(baseline.text, baseline.name));
  }
  size_t applied = 0;
  for (const auto& baseline : lang::baselines()) {
    if (baseline.reference_only) continue;
    const lang::Program parent = lang::parse(baseline.text, baseline.name);
    for (const auto& op : mutation_operators()) {
      Rng rng(42, op + baseline.name);
      auto mutation = mutate(op, parent, kShape, rng, references);
      if (!mutation) continue;
      ++applied;
      INFO(op << " on " << baseline.name << ":\n" << lang::print(mutation->child));
      CHECK_NOTHROW(lang::check(mutation->child, kShape));
      CHECK(lang::structural_hash(mutation->child) != lang::structural_hash(parent));
      CHECK_FALSE(mutation->description.empty());
      CHECK(lang::derive(mutation->child, kShape).causal);
    }
  }
  // Each operator applies to at least one baseline, or (the router operators) to a baseline
  // that add_routed_paths gave a router, so none of them is dead.
  CHECK(applied >= mutation_operators().size() - 3);
  std::vector<lang::Program> parents = references;
  for (const auto& reference : references) {
    Rng rng(1, "routed");
    if (auto routed = mutate("add_routed_paths", reference, kShape, rng)) parents.push_back(routed->child);
  }
  for (const auto& op : mutation_operators()) {
    bool any = false;
    for (const auto& parent : parents) {
      Rng rng(1, op);
      if (mutate(op, parent, kShape, rng, references)) any = true;
    }
    INFO(op);
    CHECK(any);
  }
}

TEST_CASE("add_decay_gate turns a delta rule into a gated delta rule", "[mutations]") {
  const lang::Program deltanet = lang::parse(lang::find_baseline("deltanet")->text, "deltanet");
  Rng rng(3, "t");
  auto mutation = mutate("add_decay_gate", deltanet, kShape, rng);
  REQUIRE(mutation);
  bool gated = false;
  for (const auto& s : mutation->child.body) gated |= s.op == "gated_delta_rule";
  CHECK(gated);
  CHECK_FALSE(mutate("no_such_operator", deltanet, kShape, rng));
}

TEST_CASE("the oracle is a pure function of world, program and job stream", "[oracle]") {
  const Scenario scenario = smoke();
  const SyntheticOracle oracle(scenario.oracle);
  const lang::Program program = lang::parse(lang::find_baseline("gated_deltanet")->text, "gdn");
  Rng a(1, "job"), b(1, "job"), c(2, "job");
  const auto x = oracle.evaluate(program, kShape, msg::Fidelity::EXPLORE, true, a);
  const auto y = oracle.evaluate(program, kShape, msg::Fidelity::EXPLORE, true, b);
  const auto z = oracle.evaluate(program, kShape, msg::Fidelity::EXPLORE, true, c);
  CHECK(x.loss == y.loss);
  CHECK(x.accuracy == y.accuracy);
  CHECK(x.loss != z.loss);  // job noise
  CHECK(std::isfinite(x.loss));
  CHECK(x.accuracy >= 0.0);
  CHECK(x.accuracy <= 1.0);

  Scenario other = scenario;
  other.oracle.world_seed = 99;
  Rng d(1, "job");
  CHECK(SyntheticOracle(other.oracle).evaluate(program, kShape, msg::Fidelity::EXPLORE, true, d).loss != x.loss);
}

TEST_CASE("averaged over worlds, the literature's claims hold: the delta rule recalls better", "[oracle]") {
  Scenario scenario = smoke();
  scenario.oracle.noise = 0;
  const lang::Program linear = lang::parse(lang::find_baseline("linear_attention")->text, "la");
  const lang::Program delta = lang::parse(lang::find_baseline("deltanet")->text, "dn");
  double gap = 0;
  for (uint64_t world = 1; world <= 16; ++world) {
    scenario.oracle.world_seed = world;
    const SyntheticOracle oracle(scenario.oracle);
    Rng r1(world, "a"), r2(world, "a");
    gap += oracle.evaluate(delta, kShape, msg::Fidelity::EXPLORE, true, r1).accuracy -
           oracle.evaluate(linear, kShape, msg::Fidelity::EXPLORE, true, r2).accuracy;
  }
  CHECK(gap / 16 > 0.05);
}

TEST_CASE("training cost grows with tokens and model size", "[oracle][cost]") {
  const Scenario scenario = smoke();
  const lang::Program program = lang::parse(lang::find_baseline("deltanet")->text, "dn");
  const JobCost explore = CostModel::of(scenario).job(program, msg::Fidelity::EXPLORE);
  const JobCost verify = CostModel::of(scenario).job(program, msg::Fidelity::VERIFY);
  CHECK(explore.gpu_hours > scenario.cost.overhead_gpu_hours);
  CHECK(verify.gpu_hours > 10 * explore.gpu_hours);
  CHECK(verify.tokens_per_second < explore.tokens_per_second);
}

TEST_CASE("scenario errors name the file, the line and the fix", "[scenario]") {
  auto error_of = [](const std::string& text) {
    try {
      parse_scenario(text, "s.toml");
    } catch (const ScenarioError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string base = "name = \"t\"\n[campaign]\nstart = [\"deltanet\"]\n";
  CHECK(error_of(base + "max_experimens = 3\n").find("s.toml:4: unknown key 'max_experimens' in [campaign]; did you mean 'max_experiments'?") == 0);
  CHECK(error_of(base + "gpu_slots = 0\n").find("s.toml:4:") == 0);
  CHECK(error_of(base + "gpu_slots = 2.5\n").find("must be an integer") != std::string::npos);
  CHECK(error_of("name = \"t\"\n[campaign]\nstart = [\"deltanett\"]\n").find("s.toml:3: 'deltanett' is not a shipped program") == 0);
  CHECK(error_of("name = \"t\"\n[campaign]\nstart = [\"softmax_attention\"]\n").find("reference only") != std::string::npos);
  CHECK(error_of("name = \"t\"\n[campaign]\nstart = [\"gla\"]\n").find("reference baseline 'deltanet' is not in 'start'") != std::string::npos);
  CHECK(error_of("[campaign]\n").find("no name") != std::string::npos);
  CHECK(error_of("name = \"t\"\nmode = \"dream\"\n[campaign]\nstart = [\"deltanet\"]\n").find("s.toml:2: mode \"dream\" is not a mode") == 0);
  CHECK(error_of(base + "[task.mqar]\nkv_pairs = 20\n").find("seq_len >= 4 * kv_pairs") != std::string::npos);
  CHECK(error_of(base + "[live]\nthreds = 2\n").find("did you mean 'threads'") != std::string::npos);
  CHECK(error_of(base + "[oracel]\n").find("did you mean 'oracle'") != std::string::npos);
  CHECK(error_of("name = \"t\"\n[campaign\n").find("s.toml:2: not valid TOML") == 0);
  CHECK(error_of(base) == "no error");
}
