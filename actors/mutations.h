#pragma once
// Typed mutation operators over the architecture language (lang/LANGUAGE.md). Each one
// rewrites a parent program into a child that type-checks, or reports that it does not apply.
// Their names are the `rewrites` vocabulary of the cognition base (retrieval/data/*.toml).
#include <optional>
#include <string>
#include <vector>

#include "common/rng.h"
#include "lang/program.h"

namespace asiarch {

struct Mutation {
  lang::Program child;
  std::string description;  // what changed, for the proposal's motivation
};

// The operator names, in a fixed order.
const std::vector<std::string>& mutation_operators();
bool is_mutation_operator(const std::string& name);

// A parent (which must type-check at `shape`) and the references crossover (`graft_reference`)
// may take a sub-program from, checked once for the many operators tried on them. A reference
// that does not type-check is never grafted from.
struct MutationParent {
  MutationParent(lang::Program program, const lang::ModelShape& shape, std::vector<lang::Program> references = {});
  // From programs checked before: `types` of `program`, and of each reference.
  MutationParent(lang::Program program, std::vector<lang::Type> types, const lang::ModelShape& shape,
                 std::vector<lang::Program> references, std::vector<std::optional<std::vector<lang::Type>>> reference_types);
  lang::Program program;
  std::vector<lang::Type> types;
  lang::ModelShape shape;
  std::vector<lang::Program> references;
  std::vector<std::optional<std::vector<lang::Type>>> reference_types;  // nullopt: does not type-check
};

// Applies `op` to the parent. Returns nullopt when the operator has nothing to act on in this
// program or its result would not type-check.
std::optional<Mutation> mutate(const std::string& op, const MutationParent& parent, Rng& rng);
// The same, for one call.
std::optional<Mutation> mutate(const std::string& op, const lang::Program& parent, const lang::ModelShape& shape, Rng& rng,
                               const std::vector<lang::Program>& references = {});

// Every type-checking child that removes exactly one component of `parent`: a wrapper (norm,
// activation, convolution, scale, temperature or bias on a value that is not a per-head gate),
// one path of a gated_fuse or route, an output gate, an auxiliary loss, or the decay gate of a
// recurrence. In body
// order; each description names the component removed. Used by `remove_wrapper` and by the
// analyst's ablations.
std::vector<Mutation> component_removals(const lang::Program& parent, const lang::ModelShape& shape);

}  // namespace asiarch
