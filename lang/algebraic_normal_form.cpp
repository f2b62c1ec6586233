// The algebraic normal form (lang/program.h): identities of the operator set rewritten to one
// form, then the canonical form. Simulation's stand-in for the functional probe.
#include "lang/name_table.h"
#include "lang/program.h"

namespace asiarch::lang {
namespace {

// The rewrites, applied to a canonical program until none applies.
Program normalise(Program p) {
  bool changed = true;
  while (changed) {
    changed = false;
    // A canonical program defines each name once (v0, v1, ...), so both tables only insert.
    detail::NameTable<const Statement*> defined(p.body.size());
    detail::NameTable<std::string> alias(p.body.size());  // value -> the earlier value it equals
    for (auto& s : p.body) {
      for (auto& arg : s.args) {
        if (const std::string* earlier = alias.find(arg)) arg = *earlier;
      }
      auto def = [&](const std::string& name, const char* op) -> const Statement* {
        const Statement* const* d = defined.find(name);
        return d && (*d)->op == op ? *d : nullptr;
      };
      // A neutral number: mul(a, 1.0), add(a, 0.0) and sub(a, 0.0) are a.
      const char* neutral = s.op == "mul" ? "1.0" : s.op == "add" || s.op == "sub" ? "0.0" : nullptr;
      if (neutral && s.args.size() == 2 && (s.args[1] == neutral || (s.op != "sub" && s.args[0] == neutral))) {
        alias.insert(s.name, s.args[1] == neutral ? s.args[0] : s.args[1]);
        changed = true;
      } else if (s.op == "mul" && s.args.size() == 2) {
        for (int side = 0; side < 2; ++side) {
          const std::string a = s.args[side];
          const std::string b = s.args[1 - side];
          const auto* sig = def(b, "sigmoid");
          const auto* norm = def(a, "rmsnorm");
          const auto* gate = def(b, "silu");
          if (sig && sig->args[0] == a) {
            s.op = "silu";
            s.args = {a};
          } else if (norm && gate) {
            s.op = "gated_rmsnorm";
            s.args = {norm->args[0], gate->args[0]};
          } else {
            continue;
          }
          changed = true;
          break;
        }
      } else if (s.op == "exp" && def(s.args[0], "logsigmoid")) {
        s.args = {def(s.args[0], "logsigmoid")->args[0]};
        s.op = "sigmoid";
        changed = true;
      } else if (s.op == "neg" && def(s.args[0], "neg")) {
        alias.insert(s.name, def(s.args[0], "neg")->args[0]);
        changed = true;
      }
      defined.insert(s.name, &s);
    }
    if (const std::string* earlier = alias.find(p.result)) p.result = *earlier;
    if (changed) p = canonical(p);
  }
  return p;
}

}  // namespace

Program algebraic_normal_form(const Program& program) { return normalise(canonical(program)); }

// The normal form is canonical already: its text is hashed without canonicalising again.
std::string algebraic_hash_of_canonical(const Program& canonical_program) {
  return structural_hash_of_canonical(normalise(canonical_program));
}

std::string algebraic_hash(const Program& program) { return structural_hash_of_canonical(normalise(canonical(program))); }

}  // namespace asiarch::lang
