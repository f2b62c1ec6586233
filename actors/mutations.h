#pragma once
// Typed mutation operators over the architecture language (kernels/LANGUAGE.md). Each one
// rewrites a parent program into a child that type-checks, or reports that it does not apply.
// Their names are the `rewrites` vocabulary of the cognition base (retrieval/data/*.toml).
#include <optional>
#include <string>
#include <vector>

#include "common/rng.h"
#include "kernels/program.h"

namespace asiarch {

struct Mutation {
  lang::Program child;
  std::string description;  // what changed, for the proposal's motivation
};

// The operator names, in a fixed order.
const std::vector<std::string>& mutation_operators();
bool is_mutation_operator(const std::string& name);

// Applies `op` to `parent` (which must type-check at `shape`). Returns nullopt when the operator
// has nothing to act on in this program or its result would not type-check.
std::optional<Mutation> mutate(const std::string& op, const lang::Program& parent, const lang::ModelShape& shape, Rng& rng);

}  // namespace asiarch
