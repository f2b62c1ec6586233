#include "actors/mutations.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace asiarch {
namespace {

using lang::Attr;
using lang::Dim;
using lang::Kind;
using lang::Program;
using lang::Statement;
using lang::Type;

const std::vector<std::string> kActivations = {"silu", "elu1", "relu", "tanh", "sigmoid", "softplus"};
const std::vector<std::string> kNorms = {"l2norm", "rmsnorm"};
const std::vector<int64_t> kConvSizes = {2, 3, 4, 6, 8};
const std::vector<int64_t> kHeadCounts = {1, 2, 4, 8};
const std::set<std::string> kRecurrences = {"linear_attn", "decay_attn", "delta_rule", "gated_delta_rule", "swa"};

// A program together with the types of its values, and the small edits mutations are made of.
struct Editor {
  Program program;
  std::vector<Type> types;

  std::string fresh_name(const std::string& base) const {
    std::set<std::string> used = {"x"};
    for (const auto& s : program.body) used.insert(s.name);
    for (int n = 1;; ++n) {
      std::string name = base + "_" + std::to_string(n);
      if (!used.count(name)) return name;
    }
  }
  Type type_of(const std::string& name) const {
    for (size_t i = 0; i < program.body.size(); ++i) {
      if (program.body[i].name == name) return types[i];
    }
    return Type{};  // x: seq[D]; callers ask only about gates, which are never x
  }
  bool used_by(const std::string& name, const std::string& op) const {
    return std::any_of(program.body.begin(), program.body.end(), [&](const Statement& s) {
      return s.op == op && std::find(s.args.begin(), s.args.end(), name) != s.args.end();
    });
  }
  bool used(const std::string& name) const {
    return program.result == name || std::any_of(program.body.begin(), program.body.end(), [&](const Statement& s) {
             return std::find(s.args.begin(), s.args.end(), name) != s.args.end();
           });
  }
  // Inserts `statement` at `index` (before the statement now there).
  void insert(size_t index, Statement statement) {
    program.body.insert(program.body.begin() + static_cast<long>(index), std::move(statement));
  }
  // Replaces uses of `from` by `to` in statements after `index`, and in the result.
  void rewire_after(size_t index, const std::string& from, const std::string& to) {
    for (size_t i = index + 1; i < program.body.size(); ++i) {
      for (auto& arg : program.body[i].args) {
        if (arg == from) arg = to;
      }
    }
    if (program.result == from) program.result = to;
  }
  // Wraps the value of statement `index` in `op(value, attrs)`: later uses read the wrapped value.
  std::string wrap(size_t index, const std::string& op, std::vector<Attr> attrs = {}) {
    const std::string value = program.body[index].name;
    const std::string name = fresh_name(value + "_" + op);
    insert(index + 1, Statement{name, op, {value}, std::move(attrs), {}, 0});
    rewire_after(index + 1, value, name);
    return name;
  }
  std::vector<size_t> indices_where(const std::function<bool(size_t)>& keep) const {
    std::vector<size_t> out;
    for (size_t i = 0; i < program.body.size(); ++i) {
      if (keep(i)) out.push_back(i);
    }
    return out;
  }
  // Inserts before `index` the statements that make a per-head scalar gate from x:
  // activation(head_scalars(linear(x, out=heads))). Returns the gate's name.
  std::string insert_head_gate(size_t index, int64_t heads, const std::string& base, const std::string& activation) {
    const std::string proj = fresh_name(base + "_proj");
    insert(index, Statement{proj, "linear", {"x"}, {Attr{"out", Dim{false, heads, 1}}}, {}, 0});
    const std::string scalars = fresh_name(base + "_heads");
    insert(index + 1, Statement{scalars, "head_scalars", {proj}, {}, {}, 0});
    const std::string gate = fresh_name(base);
    insert(index + 2, Statement{gate, activation, {scalars}, {}, {}, 0});
    return gate;
  }
};

int64_t int_attr(const Statement& s, const std::string& key, int64_t fallback) {
  for (const auto& a : s.attrs) {
    if (a.key == key) {
      if (auto d = std::get_if<Dim>(&a.value); d && !d->of_model_width) return d->num;
    }
  }
  return fallback;
}

void set_int_attr(Statement& s, const std::string& key, int64_t value) {
  for (auto& a : s.attrs) {
    if (a.key == key) {
      a.value = Dim{false, value, 1};
      return;
    }
  }
  s.attrs.push_back(Attr{key, Dim{false, value, 1}});
}

// A width written in terms of D where it is a multiple or a divisor of D, so that the program
// keeps type-checking at other model widths (the fidelities train at other D).
Dim relative_to_model_width(int64_t width, int64_t d_model) {
  if (width % d_model == 0) return Dim{true, width / d_model, 1};
  if (d_model % width == 0) return Dim{true, 1, d_model / width};
  return Dim{false, width, 1};
}

template <typename T>
const T& pick(const std::vector<T>& options, Rng& rng) {
  return options[rng.below(options.size())];
}

template <typename T>
std::vector<T> without(std::vector<T> options, const T& value) {
  options.erase(std::remove(options.begin(), options.end(), value), options.end());
  return options;
}

using Operator = std::function<std::optional<std::string>(Editor&, const lang::ModelShape&, Rng&)>;

std::optional<std::string> swap_activation(Editor& e, const lang::ModelShape&, Rng& rng) {
  auto sites = e.indices_where([&](size_t i) {
    return std::find(kActivations.begin(), kActivations.end(), e.program.body[i].op) != kActivations.end();
  });
  if (sites.empty()) return std::nullopt;
  Statement& s = e.program.body[pick(sites, rng)];
  const std::string before = s.op;
  s.op = pick(without(kActivations, before), rng);
  return "replace " + before + " with " + s.op + " in '" + s.name + "'";
}

std::optional<std::string> wrap_norm(Editor& e, const lang::ModelShape&, Rng& rng) {
  auto sites = e.indices_where([&](size_t i) {
    const auto& s = e.program.body[i];
    return e.types[i].kind != Kind::Scalars && e.used(s.name) && s.op != "l2norm" && s.op != "rmsnorm" &&
           !e.used_by(s.name, "l2norm") && !e.used_by(s.name, "rmsnorm");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, rng);
  const std::string norm = pick(kNorms, rng);
  const std::string value = e.program.body[site].name;
  e.wrap(site, norm);
  return "normalise '" + value + "' with " + norm;
}

std::optional<std::string> add_short_conv(Editor& e, const lang::ModelShape&, Rng& rng) {
  auto sites = e.indices_where([&](size_t i) {
    const auto& s = e.program.body[i];
    return s.op == "linear" && e.types[i].kind == Kind::Seq && e.used(s.name) && !e.used_by(s.name, "short_conv");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, rng);
  const std::string value = e.program.body[site].name;
  e.wrap(site, "short_conv", {Attr{"k", Dim{false, 4, 1}}});
  return "add a causal short convolution (k=4) after '" + value + "'";
}

std::optional<std::string> change_conv_size(Editor& e, const lang::ModelShape&, Rng& rng) {
  auto sites = e.indices_where([&](size_t i) { return e.program.body[i].op == "short_conv"; });
  if (sites.empty()) return std::nullopt;
  Statement& s = e.program.body[pick(sites, rng)];
  const int64_t before = int_attr(s, "k", 4);
  const int64_t after = pick(without(kConvSizes, before), rng);
  set_int_attr(s, "k", after);
  return "change the convolution '" + s.name + "' from k=" + std::to_string(before) + " to k=" + std::to_string(after);
}

// Rewrites recurrence statement `index` into `target`, creating the gates it needs and keeping
// gates the old kernel already had.
std::string retarget_recurrence(Editor& e, size_t index, const std::string& target) {
  const Statement old = e.program.body[index];
  const int64_t heads = e.types[index].heads;
  std::string beta = old.op == "delta_rule" || old.op == "gated_delta_rule" ? old.args[3] : "";
  std::string gate;  // a scalar decay gate can be kept; GLA's vector gate cannot serve a delta rule
  if (old.op == "gated_delta_rule") gate = old.args[4];
  if (old.op == "decay_attn" && e.type_of(old.args[3]).kind == Kind::Scalars) gate = old.args[3];
  std::vector<std::string> args(old.args.begin(), old.args.begin() + 3);
  size_t at = index;
  const bool needs_beta = target == "delta_rule" || target == "gated_delta_rule";
  const bool needs_gate = target == "decay_attn" || target == "gated_delta_rule";
  if (needs_beta && beta.empty()) {
    beta = e.insert_head_gate(at, heads, "beta", "sigmoid");
    at += 3;
  }
  if (needs_gate && gate.empty()) {
    gate = e.insert_head_gate(at, heads, "decay", "logsigmoid");
    at += 3;
  }
  if (needs_beta) args.push_back(beta);
  if (needs_gate) args.push_back(gate);
  Statement& s = e.program.body[at];
  s.op = target;
  s.args = args;
  s.attrs.clear();
  if (target == "swa") s.attrs.push_back(Attr{"window", Dim{false, 64, 1}});
  return "turn the " + old.op + " recurrence '" + old.name + "' into " + target;
}

std::optional<std::string> swap_recurrence(Editor& e, const lang::ModelShape&, Rng& rng) {
  auto sites = e.indices_where([&](size_t i) { return kRecurrences.count(e.program.body[i].op) > 0; });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, rng);
  const std::vector<std::string> targets(kRecurrences.begin(), kRecurrences.end());
  return retarget_recurrence(e, site, pick(without(targets, e.program.body[site].op), rng));
}

std::optional<std::string> add_decay_gate(Editor& e, const lang::ModelShape&, Rng& rng) {
  const std::map<std::string, std::string> gated = {{"linear_attn", "decay_attn"}, {"delta_rule", "gated_delta_rule"}};
  auto sites = e.indices_where([&](size_t i) { return gated.count(e.program.body[i].op) > 0; });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, rng);
  return retarget_recurrence(e, site, gated.at(e.program.body[site].op));
}

std::optional<std::string> add_output_gate(Editor& e, const lang::ModelShape& shape, Rng& rng) {
  auto sites = e.indices_where([&](size_t i) {
    return e.program.body[i].op == "merge_heads" && !e.used_by(e.program.body[i].name, "gated_rmsnorm");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, rng);
  const std::string merged = e.program.body[site].name;
  const Dim out = relative_to_model_width(e.types[site].dim, shape.d_model);
  const std::string gate = e.fresh_name("out_gate");
  e.insert(site + 1, Statement{gate, "linear", {"x"}, {Attr{"out", out}}, {}, 0});
  const std::string gated = e.fresh_name(merged + "_gated");
  e.insert(site + 2, Statement{gated, "gated_rmsnorm", {merged, gate}, {}, {}, 0});
  e.rewire_after(site + 2, merged, gated);
  return "gate the merged heads '" + merged + "' with a SiLU output gate and RMSNorm";
}

std::optional<std::string> change_heads(Editor& e, const lang::ModelShape&, Rng& rng) {
  auto splits = e.indices_where([&](size_t i) { return e.program.body[i].op == "split_heads"; });
  if (splits.empty()) return std::nullopt;
  const int64_t before = int_attr(e.program.body[splits.front()], "h", 0);
  const int64_t after = pick(without(kHeadCounts, before), rng);
  for (auto& s : e.program.body) {
    if (s.op == "split_heads" || s.op == "retnet_decay") set_int_attr(s, "h", after);
  }
  // Projections that make one channel per head follow the head count.
  for (auto& s : e.program.body) {
    if (s.op == "linear" && e.used_by(s.name, "head_scalars") && int_attr(s, "out", 0) == before) set_int_attr(s, "out", after);
  }
  return "change the head count from " + std::to_string(before) + " to " + std::to_string(after);
}

const std::map<std::string, Operator>& operator_table() {
  static const std::map<std::string, Operator> table = {
      {"swap_activation", swap_activation}, {"wrap_norm", wrap_norm},
      {"add_short_conv", add_short_conv},   {"change_conv_size", change_conv_size},
      {"swap_recurrence", swap_recurrence}, {"add_output_gate", add_output_gate},
      {"add_decay_gate", add_decay_gate},   {"change_heads", change_heads},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& mutation_operators() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, op] : operator_table()) out.push_back(name);
    return out;
  }();
  return names;
}

bool is_mutation_operator(const std::string& name) { return operator_table().count(name) > 0; }

std::optional<Mutation> mutate(const std::string& op, const Program& parent, const lang::ModelShape& shape, Rng& rng) {
  auto it = operator_table().find(op);
  if (it == operator_table().end()) return std::nullopt;
  Editor editor{parent, lang::check(parent, shape)};
  std::optional<std::string> description = it->second(editor, shape, rng);
  if (!description) return std::nullopt;
  try {
    lang::check(editor.program, shape);
  } catch (const lang::ProgramError&) {
    return std::nullopt;
  }
  return Mutation{std::move(editor.program), *description};
}

}  // namespace asiarch
