// The typed mutation operators: each new one type-checks, makes a structurally new program and
// reaches motifs that no shipped baseline contains; component removals; change_heads on Mamba2.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "actors/mutations.h"
#include "retrieval/cognition_base.h"

using namespace asiarch;

namespace {

const lang::ModelShape kShape{256, 2048};

lang::Program baseline(const std::string& name) { return lang::parse(lang::find_baseline(name)->text, name); }

std::vector<lang::Program> searchable_baselines() {
  std::vector<lang::Program> out;
  for (const auto& b : lang::baselines()) {
    if (!b.reference_only) out.push_back(lang::parse(b.text, b.name));
  }
  return out;
}

std::string attribute_text(const lang::Statement& s) {
  std::string text;
  for (const auto& a : s.attrs) {
    text += a.key + "=";
    if (auto d = std::get_if<lang::Dim>(&a.value)) {
      text += (d->of_model_width ? "D*" : "") + std::to_string(d->num) + "/" + std::to_string(d->den);
    } else {
      text += std::to_string(std::get<double>(a.value));
    }
    text += ",";
  }
  return text;
}

// A program's motifs: each operator with its attributes and the operators of its arguments.
std::set<std::string> motifs(const lang::Program& program) {
  std::map<std::string, std::string> op_of = {{"x", "x"}};
  std::set<std::string> out;
  for (const auto& s : program.body) {
    op_of[s.name] = s.op;
    std::string motif = s.op + "(" + attribute_text(s) + ")<-";
    for (const auto& a : s.args) motif += op_of.at(a) + ",";
    out.insert(motif);
  }
  return out;
}

std::set<std::string> baseline_motifs() {
  std::set<std::string> out;
  for (const auto& b : lang::baselines()) {
    const auto m = motifs(lang::parse(b.text, b.name));
    out.insert(m.begin(), m.end());
  }
  return out;
}

size_t index_of(const lang::Program& p, const std::string& name) {
  for (size_t i = 0; i < p.body.size(); ++i) {
    if (p.body[i].name == name) return i;
  }
  FAIL("no value named " << name);
  return 0;
}

size_t count_op(const lang::Program& p, const std::string& op) {
  return static_cast<size_t>(std::count_if(p.body.begin(), p.body.end(), [&](const lang::Statement& s) { return s.op == op; }));
}

}  // namespace

TEST_CASE("the operators are the cognition base's rewrite vocabulary", "[mutations]") {
  std::set<std::string> vocabulary(retrieval::kRewriteOperators.begin(), retrieval::kRewriteOperators.end());
  CHECK(std::set<std::string>(mutation_operators().begin(), mutation_operators().end()) == vocabulary);
}

TEST_CASE("each new operator type-checks, is new and reaches a motif no baseline has", "[mutations]") {
  const std::set<std::string> known = baseline_motifs();
  const std::vector<lang::Program> parents = searchable_baselines();
  for (const std::string op : {"replace_op", "wrap_activation", "wrap_scale", "remove_wrapper", "change_hyperparameter",
                               "add_gated_path", "add_routed_paths", "graft_reference", "add_bias"}) {
    size_t applied = 0, novel = 0;
    for (size_t p = 0; p < parents.size(); ++p) {
      std::vector<lang::Program> references = parents;
      references.erase(references.begin() + static_cast<long>(p));
      for (uint64_t seed = 1; seed <= 6; ++seed) {
        Rng rng(seed, op);
        const auto mutation = mutate(op, parents[p], kShape, rng, references);
        if (!mutation) continue;
        ++applied;
        INFO(op << " on " << parents[p].name << ":\n" << lang::print(mutation->child));
        CHECK_NOTHROW(lang::check(mutation->child, kShape));
        CHECK(lang::derive(mutation->child, kShape).causal);
        CHECK_FALSE(mutation->description.empty());
        CHECK(lang::structural_hash(mutation->child) != lang::structural_hash(parents[p]));
        const auto m = motifs(mutation->child);
        if (std::any_of(m.begin(), m.end(), [&](const std::string& x) { return !known.count(x); })) ++novel;
      }
    }
    INFO(op);
    CHECK(applied > 0);
    CHECK(novel > 0);
  }
}

TEST_CASE("add_gated_path and add_routed_paths build the multi-path motif of the paper's best architectures", "[mutations]") {
  const lang::Program deltanet = baseline("deltanet");
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    Rng rng(seed, "paths");
    const auto gated = mutate("add_gated_path", deltanet, kShape, rng);
    REQUIRE(gated);
    CHECK(count_op(gated->child, "gated_fuse") == 1);
    const auto routed = mutate("add_routed_paths", deltanet, kShape, rng);
    REQUIRE(routed);
    INFO(lang::print(routed->child));
    CHECK(count_op(routed->child, "route") == 1);
    CHECK(count_op(routed->child, "path_stats") == 1);
    CHECK(count_op(routed->child, "temperature") == 1);
    for (const auto& s : routed->child.body) {
      if (s.op == "route") CHECK(s.args.size() == 4);  // logits and three paths
    }
  }
  // No baseline has either motif.
  for (const auto& b : lang::baselines()) {
    CHECK(b.text.find("gated_fuse") == std::string::npos);
    CHECK(b.text.find("route(") == std::string::npos);
  }
}

TEST_CASE("the router mutations reach the floors, entropy losses and head-shared routers of ASI-Arch's discoveries", "[mutations]") {
  const lang::Program deltanet = baseline("deltanet");
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Rng rng(seed, "routers");
    const auto routed = mutate("add_routed_paths", deltanet, kShape, rng);
    REQUIRE(routed);
    const lang::Program& parent = routed->child;

    const auto floored = mutate("floor_renormalise", parent, kShape, rng);
    REQUIRE(floored);
    INFO(lang::print(floored->child));
    CHECK(count_op(floored->child, "route") == 0);
    CHECK(count_op(floored->child, "weighted_paths") == 1);
    CHECK(count_op(floored->child, "softmax") == 1);
    CHECK(count_op(floored->child, "max") == 1);
    CHECK(count_op(floored->child, "div") == 1);

    const auto shared = mutate("share_router_weights", parent, kShape, rng);
    REQUIRE(shared);
    INFO(lang::print(shared->child));
    CHECK(count_op(shared->child, "head_route") == 1);
    // Its logits are per head, from a linear on heads: one weight shared by the heads.
    const std::vector<lang::Type> types = lang::check(shared->child, kShape);
    for (const lang::Statement& s : shared->child.body) {
      if (s.op != "head_route") continue;
      const size_t logits = index_of(shared->child, s.args[0]);
      CHECK(shared->child.body[logits].op == "linear");
      CHECK(types[index_of(shared->child, shared->child.body[logits].args[0])].kind == lang::Kind::Heads);
    }
    // The head-shared router is floored in turn: per head and path.
    const auto shared_floored = mutate("floor_renormalise", shared->child, kShape, rng);
    REQUIRE(shared_floored);
    CHECK(count_op(shared_floored->child, "weighted_paths") == 1);

    for (const lang::Program* router : {&parent, &floored->child, &shared->child}) {
      const auto balanced = mutate("add_balance_loss", *router, kShape, rng);
      REQUIRE(balanced);
      INFO(lang::print(balanced->child));
      CHECK(count_op(balanced->child, "penalty") == 1);
      CHECK(count_op(balanced->child, "entropy") == 1);
      CHECK(lang::derive(balanced->child, kShape).causal);
      // A router balanced once is not balanced again.
      CHECK_FALSE(mutate("add_balance_loss", balanced->child, kShape, rng));
      // The loss is an ablatable component.
      const auto removals = component_removals(balanced->child, kShape);
      CHECK(std::any_of(removals.begin(), removals.end(), [](const Mutation& m) {
        return m.description.find("remove the auxiliary loss") == 0 && count_op(m.child, "penalty") == 0;
      }));
    }
  }
  // Nothing to route: the router mutations do not apply to a baseline.
  Rng rng(1, "routers");
  for (const std::string op : {"floor_renormalise", "share_router_weights", "add_balance_loss"}) {
    CHECK_FALSE(mutate(op, deltanet, kShape, rng));
  }
}

TEST_CASE("add_bias adds one learned bias after a projection, and removing it gives the parent back", "[mutations]") {
  const lang::Program deltanet = baseline("deltanet");
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Rng rng(seed, "bias");
    const auto biased = mutate("add_bias", deltanet, kShape, rng);
    REQUIRE(biased);
    CHECK(count_op(biased->child, "bias") == 1);
    CHECK(lang::derive(biased->child, kShape).params > lang::derive(deltanet, kShape).params);
    const auto removals = component_removals(biased->child, kShape);
    CHECK(std::any_of(removals.begin(), removals.end(), [&](const Mutation& m) {
      return lang::structural_hash(m.child) == lang::structural_hash(deltanet);
    }));
  }
}

TEST_CASE("graft_reference takes a sub-program from a reference parent", "[mutations]") {
  const lang::Program linear = baseline("linear_attention");
  const std::vector<lang::Program> references = {baseline("deltanet")};
  bool two_kernels = false, grafted_keys = false;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Rng rng(seed, "graft");
    const auto graft = mutate("graft_reference", linear, kShape, rng, references);
    REQUIRE(graft);
    INFO(graft->description << "\n" << lang::print(graft->child));
    CHECK(graft->description.find("deltanet") != std::string::npos);
    if (count_op(graft->child, "linear_attn") == 1 && count_op(graft->child, "delta_rule") == 1) two_kernels = true;
    if (count_op(graft->child, "l2norm") > 0 && count_op(graft->child, "delta_rule") == 0) grafted_keys = true;
  }
  CHECK(two_kernels);   // deltanet's recurrence as a parallel path: no baseline has two kernels
  CHECK(grafted_keys);  // deltanet's normalised queries or keys in a linear attention
  Rng rng(1, "graft");
  CHECK_FALSE(mutate("graft_reference", linear, kShape, rng));  // nothing to graft from
}

TEST_CASE("component_removals removes exactly one component each, in a fixed order", "[mutations]") {
  for (const auto& parent : searchable_baselines()) {
    const std::vector<Mutation> removals = component_removals(parent, kShape);
    const std::vector<Mutation> again = component_removals(parent, kShape);
    REQUIRE(removals.size() == again.size());
    CHECK_FALSE(removals.empty());
    std::set<std::string> descriptions, hashes;
    for (size_t i = 0; i < removals.size(); ++i) {
      INFO(parent.name << ": " << removals[i].description);
      CHECK(removals[i].description == again[i].description);
      CHECK(removals[i].description.rfind("remove the ", 0) == 0);
      CHECK_NOTHROW(lang::check(removals[i].child, kShape));
      CHECK(removals[i].child.body.size() < parent.body.size());
      descriptions.insert(removals[i].description);
      hashes.insert(lang::structural_hash(removals[i].child));
    }
    CHECK(descriptions.size() == removals.size());
    CHECK(hashes.count(lang::structural_hash(parent)) == 0);
  }
  auto described = [](const std::string& name) {
    std::vector<std::string> out;
    for (const auto& r : component_removals(baseline(name), kShape)) out.push_back(r.description);
    return out;
  };
  const auto deltanet = described("deltanet");
  CHECK(std::find(deltanet.begin(), deltanet.end(), "remove the l2norm 'k'") != deltanet.end());
  CHECK(std::find(deltanet.begin(), deltanet.end(), "remove the short_conv 'v_conv'") != deltanet.end());
  CHECK(std::find(deltanet.begin(), deltanet.end(), "remove the rmsnorm 'o_norm'") != deltanet.end());
  const auto gdn = described("gated_deltanet");
  CHECK(std::any_of(gdn.begin(), gdn.end(), [](const std::string& d) { return d.find("remove the decay gate") == 0; }));
  const auto gla = described("gla");
  CHECK(std::any_of(gla.begin(), gla.end(), [](const std::string& d) { return d.find("remove the output gate") == 0; }));
  const auto mamba2 = described("mamba2");
  CHECK(std::find(mamba2.begin(), mamba2.end(), "remove the output gate 'z_act' of 'o_gated'") != mamba2.end());

  // Paths of a router: each can go, and the router's logits shrink with them.
  Rng rng(2, "routed");
  const auto routed = mutate("add_routed_paths", baseline("deltanet"), kShape, rng);
  REQUIRE(routed);
  size_t path_removals = 0;
  for (const auto& r : component_removals(routed->child, kShape)) {
    if (r.description.find("from the router") == std::string::npos) continue;
    ++path_removals;
    for (const auto& s : r.child.body) {
      if (s.op == "route") CHECK(s.args.size() == 3);
    }
  }
  CHECK(path_removals == 3);
}

TEST_CASE("change_heads keeps Mamba2's B and C shared by every head", "[mutations]") {
  const lang::Program mamba2 = baseline("mamba2");
  std::set<int64_t> seen;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Rng rng(seed, "heads");
    const auto mutation = mutate("change_heads", mamba2, kShape, rng);
    REQUIRE(mutation);
    const lang::Program& child = mutation->child;
    const std::vector<lang::Type> types = lang::check(child, kShape);
    int64_t heads = 0;
    for (size_t i = 0; i < child.body.size(); ++i) {
      if (child.body[i].name == "u") heads = types[i].heads;
    }
    seen.insert(heads);
    // B and C (the keys and queries of the SSD recurrence) have the full state size N = D/4 in
    // every head: each head reads the whole shared vector, not a slice of it.
    for (size_t i = 0; i < child.body.size(); ++i) {
      const auto& s = child.body[i];
      if (s.op != "decay_attn") continue;
      for (size_t a = 0; a < 2; ++a) {
        for (size_t j = 0; j < child.body.size(); ++j) {
          if (child.body[j].name != s.args[a]) continue;
          INFO(lang::print(child));
          CHECK(types[j].heads == heads);
          CHECK(types[j].dim == kShape.d_model / 4);
        }
      }
    }
  }
  CHECK(seen == std::set<int64_t>{1, 2, 8});
}

TEST_CASE("mutations are deterministic in their stream", "[mutations]") {
  const std::vector<lang::Program> parents = searchable_baselines();
  for (const auto& op : mutation_operators()) {
    Rng a(5, op), b(5, op);
    const auto x = mutate(op, parents[1], kShape, a, parents);
    const auto y = mutate(op, parents[1], kShape, b, parents);
    REQUIRE(x.has_value() == y.has_value());
    if (x) CHECK(lang::print(x->child) == lang::print(y->child));
  }
}
