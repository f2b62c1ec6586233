// Derived figures of a checked program: the costs of the statements the result depends on.
#include "lang/program_analysis.h"

namespace asiarch::lang {
namespace {

struct Totals {
  int64_t params = 0;
  double flops_per_token = 0.0;
  int64_t state = 0;
  bool causal = true;
};

// Dead statements are not counted: they are not part of the mixer (nor of its canonical form).
Totals totals_at(const detail::CheckedProgram& checked, int64_t context) {
  Totals totals;
  for (size_t i = 0; i < checked.statements.size(); ++i) {
    if (!checked.graph.live[i]) continue;
    const detail::CheckedStatement& s = checked.statements[i];
    const detail::Cost cost = s.rules->cost(s.operands, s.type, context);
    totals.params += cost.params;
    totals.flops_per_token += cost.flops_per_token;
    totals.state += cost.state;
    totals.causal = totals.causal && s.rules->causal;
  }
  return totals;
}

}  // namespace

Figures derive(const Program& program, const ModelShape& shape, std::string_view file) {
  const detail::CheckedProgram checked = detail::check_program(program, shape, file);
  const Totals at_context = totals_at(checked, shape.context);
  const Totals at_four_times = totals_at(checked, 4 * shape.context);
  Figures figures;
  figures.params = at_context.params;
  figures.flops_per_token = at_context.flops_per_token;
  figures.state_size = at_context.state;
  figures.causal = at_context.causal;
  figures.subquadratic = at_four_times.flops_per_token < 2.0 * at_context.flops_per_token;
  return figures;
}

}  // namespace asiarch::lang
