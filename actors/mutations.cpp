#include "actors/mutations.h"

#include <algorithm>
#include <cstdio>
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
const std::vector<std::string> kLearned = {"scale", "temperature"};
const std::vector<std::string> kCommutative = {"add", "mul"};
const std::vector<int64_t> kConvSizes = {2, 3, 4, 6, 8};
const std::vector<int64_t> kFirSizes = {3, 8, 31, 63};  // FIR paths: short and long (FusionGatedFIRNet: 3 and 63)
const std::vector<int64_t> kWindows = {16, 32, 64, 128, 256};
const std::vector<double> kRouteTemperatures = {0.5, 1.0, 2.0};
const std::vector<int64_t> kHeadCounts = {1, 2, 4, 8};
// Ops whose removal keeps the program's dataflow: one argument, the result has its type.
const std::set<std::string> kWrappers = {"l2norm",  "rmsnorm", "silu",       "elu1",           "relu",
                                         "tanh",    "sigmoid", "softplus",   "short_conv",     "scale",
                                         "temperature", "bias"};

bool one_of(const std::vector<std::string>& options, const std::string& value) {
  return std::find(options.begin(), options.end(), value) != options.end();
}

// The kernels a search swaps between (lang::subquadratic_mixers), by name: the order random
// picks index into, which campaign digests depend on.
const std::vector<std::string>& mixers_by_name() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = lang::subquadratic_mixers();
    std::sort(out.begin(), out.end());
    return out;
  }();
  return names;
}

bool is_mixer(const Statement& s) { return lang::is_subquadratic_mixer(s.op); }

// The argument of mixer statement `s` that plays `role`, or "" when its kernel has none.
std::string argument_of(const Statement& s, lang::ArgRole role) {
  const std::optional<size_t> slot = lang::argument_slot(s.op, role);
  return slot ? s.args[*slot] : "";
}

// The queries, keys and values of mixer statement `s`, in that order.
std::vector<std::string> attention_arguments(const Statement& s) {
  return {argument_of(s, lang::ArgRole::Query), argument_of(s, lang::ArgRole::Key), argument_of(s, lang::ArgRole::Value)};
}

// The kernel that keeps the same state as `op` with one decay argument more (with_decay) or
// less: linear_attn and decay_attn, delta_rule and gated_delta_rule. nullopt if none.
std::optional<std::string> kernel_with_decay(const std::string& op, bool with_decay) {
  const lang::OpInfo* from = lang::find_operator(op);
  std::vector<lang::ArgRole> wanted = from->roles;
  if (with_decay) {
    wanted.push_back(lang::ArgRole::Decay);
  } else if (!wanted.empty() && wanted.back() == lang::ArgRole::Decay) {
    wanted.pop_back();
  } else {
    return std::nullopt;
  }
  for (const lang::OpInfo& info : lang::operators()) {
    if (info.memory == from->memory && info.roles == wanted) return info.name;
  }
  return std::nullopt;
}

// A program together with the types of its values, and the small edits mutations are made of.
struct Editor {
  Program program;
  std::vector<Type> types;

  std::string fresh_name(const std::string& base) const { return lang::fresh_name(program, base); }
  size_t index_of(const std::string& name) const {
    for (size_t i = 0; i < program.body.size(); ++i) {
      if (program.body[i].name == name) return i;
    }
    throw std::logic_error("mutation: no value named " + name);
  }
  Type type_of(const std::string& name) const {
    if (name == "x") return Type{Kind::Seq, 0, 0};  // seq[D]; callers compare only with non-x values
    return types[index_of(name)];
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
  // Which statements reach the result.
  std::vector<bool> live() const {
    std::vector<bool> reaches(program.body.size(), false);
    std::set<std::string> needed = {program.result};
    for (size_t i = program.body.size(); i-- > 0;) {
      if (!needed.count(program.body[i].name)) continue;
      reaches[i] = true;
      needed.insert(program.body[i].args.begin(), program.body[i].args.end());
    }
    return reaches;
  }
  // Which statements depend on a recurrence: the memory path, as opposed to gates made from x.
  std::vector<bool> after_recurrence() const {
    std::set<std::string> tainted;
    std::vector<bool> out(program.body.size(), false);
    for (size_t i = 0; i < program.body.size(); ++i) {
      const Statement& s = program.body[i];
      out[i] = is_mixer(s) ||
               std::any_of(s.args.begin(), s.args.end(), [&](const std::string& a) { return tainted.count(a) > 0; });
      if (out[i]) tainted.insert(s.name);
    }
    return out;
  }
  // Drops statements that no longer reach the result (what a rewiring left behind).
  void prune() {
    const std::vector<bool> keep = live();
    std::vector<Statement> body;
    for (size_t i = 0; i < program.body.size(); ++i) {
      if (keep[i]) body.push_back(std::move(program.body[i]));
    }
    program.body = std::move(body);
  }
  // Recomputes the types after an edit; throws lang::ProgramError when the edit broke them.
  void retype(const lang::ModelShape& shape) { types = lang::check(program, shape); }
  // Inserts `statement` at `index` (before the statement now there).
  void insert(size_t index, Statement statement) {
    program.body.insert(program.body.begin() + static_cast<long>(index), std::move(statement));
  }
  // Appends `statement` right after the statement at `*at` and advances `*at` to it.
  std::string emit(size_t* at, const std::string& base, const std::string& op, std::vector<std::string> args,
                   std::vector<Attr> attrs = {}) {
    const std::string name = fresh_name(base);
    insert(++*at, Statement{name, op, std::move(args), std::move(attrs), {}, 0});
    return name;
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

void set_attr(Statement& s, const std::string& key, lang::AttrValue value) {
  for (auto& a : s.attrs) {
    if (a.key == key) {
      a.value = std::move(value);
      return;
    }
  }
  s.attrs.push_back(Attr{key, std::move(value)});
}

void set_int_attr(Statement& s, const std::string& key, int64_t value) { set_attr(s, key, Dim{false, value, 1}); }

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

std::string quoted(const std::string& name) { return "'" + name + "'"; }

}  // namespace

std::vector<Mutation> component_removals(const Program& parent, const lang::ModelShape& shape) {
  const Editor base{parent, lang::check(parent, shape)};
  const std::vector<bool> live = base.live();
  const std::vector<bool> memory = base.after_recurrence();
  auto on_memory_path = [&](const std::string& name) { return name != "x" && memory[base.index_of(name)]; };
  const std::string parent_hash = lang::structural_hash(parent);
  std::vector<Mutation> out;
  auto keep = [&](Editor e, const std::string& description) {
    e.prune();
    try {
      lang::check(e.program, shape);
    } catch (const lang::ProgramError&) {
      return;
    }
    if (lang::structural_hash(e.program) == parent_hash) return;
    out.push_back(Mutation{std::move(e.program), description});
  };
  // Later uses of statement i read `to` instead.
  auto bypass = [&](size_t i, const std::string& to, const std::string& description) {
    Editor e = base;
    e.rewire_after(i, parent.body[i].name, to);
    keep(std::move(e), description);
  };
  for (size_t i = 0; i < parent.body.size(); ++i) {
    if (!live[i]) continue;
    const Statement& s = parent.body[i];
    if (kWrappers.count(s.op) && base.types[i].kind != Kind::Scalars) {
      // Wrappers of per-head scalars are how gates are parameterised (beta's sigmoid), not components.
      bypass(i, s.args[0], "remove the " + s.op + " " + quoted(s.name));
    } else if (s.op == "penalty") {
      bypass(i, s.args[0], "remove the auxiliary loss " + quoted(s.args[1]) + " of " + quoted(s.name));
    } else if (s.op == "gated_rmsnorm") {
      Editor e = base;
      e.program.body[i].op = "rmsnorm";
      e.program.body[i].args.resize(1);
      keep(std::move(e), "remove the output gate " + quoted(s.args[1]) + " of " + quoted(s.name) + " (its RMSNorm stays)");
    } else if (s.op == "mul" && memory[i]) {
      // An output gate: the memory path times a value made from x alone.
      for (size_t a = 0; a < 2; ++a) {
        if (s.args[a] == "x" || on_memory_path(s.args[a]) || !on_memory_path(s.args[1 - a])) continue;
        bypass(i, s.args[1 - a], "remove the output gate " + quoted(s.args[a]) + " of " + quoted(s.name));
      }
    } else if (s.op == "gated_fuse") {
      for (size_t a = 0; a < 2; ++a) {
        bypass(i, s.args[1 - a], "remove the path " + quoted(s.args[a]) + " from the gated fusion " + quoted(s.name));
      }
    } else if (s.op == "route") {
      const int64_t paths = static_cast<int64_t>(s.args.size()) - 1;
      for (size_t j = 1; j < s.args.size(); ++j) {
        const std::string removed = s.args[j];
        const std::string description = "remove the path " + quoted(removed) + " from the router " + quoted(s.name);
        if (paths == 2) {
          bypass(i, s.args[j == 1 ? 2 : 1], description);
          continue;
        }
        Editor e = base;
        e.program.body[i].args.erase(e.program.body[i].args.begin() + static_cast<long>(j));
        // The router makes one logit fewer: shrink the linear that makes them (through wrappers
        // such as its temperature), and the path statistics stop describing the removed path.
        for (std::string logits = s.args[0]; logits != "x";) {
          Statement& l = e.program.body[e.index_of(logits)];
          if (l.op == "linear" && int_attr(l, "out", 0) == paths) set_int_attr(l, "out", paths - 1);
          if (!kWrappers.count(l.op)) break;
          logits = l.args[0];
        }
        for (auto& st : e.program.body) {
          if (st.op == "path_stats" && st.args.size() > 1) st.args.erase(std::remove(st.args.begin(), st.args.end(), removed), st.args.end());
        }
        keep(std::move(e), description);
      }
    } else if (std::optional<std::string> undecayed = is_mixer(s) ? kernel_with_decay(s.op, false) : std::nullopt) {
      Editor e = base;
      Statement& r = e.program.body[i];
      r.op = *undecayed;
      r.args.pop_back();
      keep(std::move(e), "remove the decay gate " + quoted(s.args.back()) + " of " + quoted(s.name));
    }
  }
  return out;
}

namespace {

struct Context {
  const lang::ModelShape& shape;
  Rng& rng;
  const std::vector<Program>& references;
  const std::vector<std::optional<std::vector<Type>>>& reference_types;
};

using Operator = std::function<std::optional<std::string>(Editor&, const Context&)>;

// Replaces an op by another of its group (the same signature, so the program keeps its types).
std::optional<std::string> replace_within(Editor& e, Rng& rng, const std::vector<std::vector<std::string>>& groups) {
  auto group_of = [&](const std::string& op) -> const std::vector<std::string>* {
    for (const auto& g : groups) {
      if (one_of(g, op)) return &g;
    }
    return nullptr;
  };
  auto sites = e.indices_where([&](size_t i) { return group_of(e.program.body[i].op) != nullptr; });
  if (sites.empty()) return std::nullopt;
  Statement& s = e.program.body[pick(sites, rng)];
  const std::string before = s.op;
  s.op = pick(without(*group_of(before), before), rng);
  return "replace " + before + " with " + s.op + " in " + quoted(s.name);
}

std::optional<std::string> swap_activation(Editor& e, const Context& c) { return replace_within(e, c.rng, {kActivations}); }

std::optional<std::string> replace_op(Editor& e, const Context& c) {
  return replace_within(e, c.rng, {kActivations, kNorms, kLearned, kCommutative});
}

std::optional<std::string> wrap_norm(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const auto& s = e.program.body[i];
    return e.types[i].kind != Kind::Scalars && e.used(s.name) && !one_of(kNorms, s.op) && !e.used_by(s.name, "l2norm") &&
           !e.used_by(s.name, "rmsnorm");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  const std::string norm = pick(kNorms, c.rng);
  const std::string value = e.program.body[site].name;
  e.wrap(site, norm);
  return "normalise " + quoted(value) + " with " + norm;
}

std::optional<std::string> wrap_activation(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const auto& s = e.program.body[i];
    return (s.op == "linear" || s.op == "short_conv" || s.op == "split_heads") && e.used(s.name) && e.program.result != s.name &&
           std::none_of(kActivations.begin(), kActivations.end(), [&](const std::string& a) { return e.used_by(s.name, a); });
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  const std::string activation = pick(kActivations, c.rng);
  const std::string value = e.program.body[site].name;
  e.wrap(site, activation);
  return "pass " + quoted(value) + " through " + activation;
}

std::optional<std::string> wrap_scale(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const auto& s = e.program.body[i];
    return e.used(s.name) && e.program.result != s.name && !one_of(kLearned, s.op) && !e.used_by(s.name, "scale") &&
           !e.used_by(s.name, "temperature");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  const std::string op = pick(kLearned, c.rng);
  const std::string value = e.program.body[site].name;
  e.wrap(site, op);
  return (op == "scale" ? "multiply " + quoted(value) + " by a learned scale" : "divide " + quoted(value) + " by a learned temperature");
}

std::optional<std::string> add_short_conv(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const auto& s = e.program.body[i];
    return s.op == "linear" && e.types[i].kind == Kind::Seq && e.used(s.name) && !e.used_by(s.name, "short_conv");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  const std::string value = e.program.body[site].name;
  e.wrap(site, "short_conv", {Attr{"k", Dim{false, 4, 1}}});
  return "add a causal short convolution (k=4) after " + quoted(value);
}

std::string resize_conv(Statement& s, Rng& rng) {
  const int64_t before = int_attr(s, "k", 4);
  const int64_t after = pick(without(kConvSizes, before), rng);
  set_int_attr(s, "k", after);
  return "change the convolution " + quoted(s.name) + " from k=" + std::to_string(before) + " to k=" + std::to_string(after);
}

std::optional<std::string> change_conv_size(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) { return e.program.body[i].op == "short_conv"; });
  if (sites.empty()) return std::nullopt;
  return resize_conv(e.program.body[pick(sites, c.rng)], c.rng);
}

std::string real_text(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

double route_temperature(const Statement& route) {
  for (const auto& a : route.attrs) {
    if (auto t = std::get_if<double>(&a.value); t && a.key == "temp") return *t;
  }
  return 1.0;
}

// Any numeric setting: a convolution's size, an attention window, a router's temperature.
std::optional<std::string> change_hyperparameter(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const std::string& op = e.program.body[i].op;
    return op == "short_conv" || op == "swa" || op == "route";
  });
  if (sites.empty()) return std::nullopt;
  Statement& s = e.program.body[pick(sites, c.rng)];
  if (s.op == "short_conv") return resize_conv(s, c.rng);
  if (s.op == "swa") {
    const int64_t before = int_attr(s, "window", 64);
    const int64_t after = pick(without(kWindows, before), c.rng);
    set_int_attr(s, "window", after);
    return "change the attention window of " + quoted(s.name) + " from " + std::to_string(before) + " to " + std::to_string(after);
  }
  const double before = route_temperature(s);
  const double after = pick(without(kRouteTemperatures, before), c.rng);
  set_attr(s, "temp", after);
  return "change the router temperature of " + quoted(s.name) + " from " + real_text(before) + " to " + real_text(after);
}

// Rewrites recurrence statement `index` into `target`, creating the gates it needs and keeping
// gates the old kernel already had.
std::string retarget_recurrence(Editor& e, size_t index, const std::string& target) {
  const Statement old = e.program.body[index];
  const int64_t heads = e.types[index].heads;
  std::string beta = argument_of(old, lang::ArgRole::Beta);
  // A scalar decay gate can be kept; GLA's vector gate cannot serve a delta rule.
  std::string gate = argument_of(old, lang::ArgRole::Decay);
  if (!gate.empty() && e.type_of(gate).kind != Kind::Scalars) gate.clear();
  std::vector<std::string> args = attention_arguments(old);
  size_t at = index;
  const bool needs_beta = lang::argument_slot(target, lang::ArgRole::Beta).has_value();
  const bool needs_gate = lang::argument_slot(target, lang::ArgRole::Decay).has_value();
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
  return "turn the " + old.op + " recurrence " + quoted(old.name) + " into " + target;
}

std::optional<std::string> swap_recurrence(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) { return is_mixer(e.program.body[i]); });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  return retarget_recurrence(e, site, pick(without(mixers_by_name(), e.program.body[site].op), c.rng));
}

std::optional<std::string> add_decay_gate(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) { return is_mixer(e.program.body[i]) && kernel_with_decay(e.program.body[i].op, true); });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  return retarget_recurrence(e, site, *kernel_with_decay(e.program.body[site].op, true));
}

std::optional<std::string> add_output_gate(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    return e.program.body[i].op == "merge_heads" && !e.used_by(e.program.body[i].name, "gated_rmsnorm");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  const std::string merged = e.program.body[site].name;
  const Dim out = relative_to_model_width(e.types[site].dim, c.shape.d_model);
  const std::string gate = e.fresh_name("out_gate");
  e.insert(site + 1, Statement{gate, "linear", {"x"}, {Attr{"out", out}}, {}, 0});
  const std::string gated = e.fresh_name(merged + "_gated");
  e.insert(site + 2, Statement{gated, "gated_rmsnorm", {merged, gate}, {}, {}, 0});
  e.rewire_after(site + 2, merged, gated);
  return "gate the merged heads " + quoted(merged) + " with a SiLU output gate and RMSNorm";
}

// The leaves of a tree of concats (a value repeated by concat(v, v) is a vector shared by heads).
std::vector<std::string> concat_leaves(const Editor& e, const std::string& name) {
  if (name == "x") return {name};
  const Statement& s = e.program.body[e.index_of(name)];
  if (s.op != "concat") return {name};
  std::vector<std::string> out = concat_leaves(e, s.args[0]);
  const std::vector<std::string> right = concat_leaves(e, s.args[1]);
  out.insert(out.end(), right.begin(), right.end());
  return out;
}

std::optional<std::string> change_heads(Editor& e, const Context& c) {
  auto splits = e.indices_where([&](size_t i) { return e.program.body[i].op == "split_heads"; });
  if (splits.empty()) return std::nullopt;
  const int64_t before = int_attr(e.program.body[splits.front()], "h", 0);
  const int64_t after = pick(without(kHeadCounts, before), c.rng);
  for (auto& s : e.program.body) {
    if (s.op == "split_heads" || s.op == "retnet_decay") set_int_attr(s, "h", after);
  }
  // Projections that make one channel per head follow the head count.
  for (auto& s : e.program.body) {
    if (s.op == "linear" && e.used_by(s.name, "head_scalars") && int_attr(s, "out", 0) == before) set_int_attr(s, "out", after);
  }
  // A vector shared by all heads (Mamba2's B and C: one copy per head, concatenated) stays
  // shared: it is repeated once per new head, by doubling and then one copy at a time.
  for (size_t i = e.program.body.size(); i-- > 0;) {
    if (e.program.body[i].op != "split_heads") continue;
    const std::vector<std::string> leaves = concat_leaves(e, e.program.body[i].args[0]);
    if (leaves.size() != static_cast<size_t>(before) || leaves.size() < 2 ||
        std::any_of(leaves.begin(), leaves.end(), [&](const std::string& l) { return l != leaves[0]; })) {
      continue;
    }
    size_t at = i - 1;
    std::string repeated = leaves[0];
    int64_t copies = 1;
    for (; copies * 2 <= after; copies *= 2) repeated = e.emit(&at, leaves[0] + "_x" + std::to_string(copies * 2), "concat", {repeated, repeated});
    for (; copies < after; ++copies) repeated = e.emit(&at, leaves[0] + "_x" + std::to_string(copies + 1), "concat", {repeated, leaves[0]});
    e.program.body[at + 1].args[0] = repeated;
  }
  return "change the head count from " + std::to_string(before) + " to " + std::to_string(after);
}

std::optional<std::string> remove_wrapper(Editor& e, const Context& c) {
  std::vector<Mutation> removals = component_removals(e.program, c.shape);
  if (removals.empty()) return std::nullopt;
  Mutation& removal = removals[c.rng.below(removals.size())];
  e.program = std::move(removal.child);
  return removal.description;
}

// Recurrence statements whose output is not yet fused with another path.
std::vector<size_t> unfused_recurrences(const Editor& e) {
  return e.indices_where([&](size_t i) {
    const std::string& name = e.program.body[i].name;
    return is_mixer(e.program.body[i]) && e.used(name) && !e.used_by(name, "gated_fuse") && !e.used_by(name, "route");
  });
}

const std::vector<std::string> kPathKinds = {"fir_short", "fir_long", "identity", "kernel"};

// Emits after `*at` a path parallel to recurrence `r` (the same type, heads[h, dv]): a causal FIR
// filter over its values, the values themselves, or a second kernel on its queries, keys and
// values (the paths of FusionGatedFIRNet, arXiv:2507.18074). Returns its name; `what` says it.
std::string emit_path(Editor& e, size_t* at, size_t r, const std::string& kind, Rng& rng, std::string* what) {
  const Statement recurrence = e.program.body[r];
  const int64_t heads = e.types[r].heads;
  const std::string values = argument_of(recurrence, lang::ArgRole::Value);
  if (kind == "identity") {
    *what = "the values " + quoted(values) + " themselves";
    return values;
  }
  if (kind == "fir_short" || kind == "fir_long") {
    const int64_t k = kind == "fir_short" ? pick(std::vector<int64_t>{kFirSizes[0], kFirSizes[1]}, rng)
                                          : pick(std::vector<int64_t>{kFirSizes[2], kFirSizes[3]}, rng);
    const std::string merged = e.emit(at, values + "_seq", "merge_heads", {values});
    const std::string filtered = e.emit(at, values + "_fir" + std::to_string(k), "short_conv", {merged}, {Attr{"k", Dim{false, k, 1}}});
    *what = "a causal FIR filter (k=" + std::to_string(k) + ") over the values " + quoted(values);
    return e.emit(at, "fir" + std::to_string(k), "split_heads", {filtered}, {Attr{"h", Dim{false, heads, 1}}});
  }
  const std::string op = pick(without(mixers_by_name(), recurrence.op), rng);
  std::vector<std::string> args = attention_arguments(recurrence);
  if (lang::argument_slot(op, lang::ArgRole::Beta)) {
    args.push_back(e.insert_head_gate(*at + 1, heads, "beta", "sigmoid"));
    *at += 3;
  }
  if (lang::argument_slot(op, lang::ArgRole::Decay)) {
    args.push_back(e.insert_head_gate(*at + 1, heads, "decay", "logsigmoid"));
    *at += 3;
  }
  std::vector<Attr> attrs;
  if (op == "swa") attrs.push_back(Attr{"window", Dim{false, 64, 1}});
  *what = "a second kernel, " + op + ", on the same queries, keys and values";
  return e.emit(at, op + "_path", op, std::move(args), std::move(attrs));
}

// Fuses `path` with recurrence `r` by a sigmoid gate computed from x per head and channel, and
// makes later uses of the recurrence read the fused value.
void fuse_with_gate(Editor& e, size_t* at, size_t r, const std::string& path, const lang::ModelShape& shape) {
  const Statement recurrence = e.program.body[r];
  const Type type = e.types[r];
  const Dim width = relative_to_model_width(type.heads * type.dim, shape.d_model);
  const std::string gate_proj = e.emit(at, "fuse_gate_proj", "linear", {"x"}, {Attr{"out", width}});
  const std::string gate = e.emit(at, "fuse_gate", "split_heads", {gate_proj}, {Attr{"h", Dim{false, type.heads, 1}}});
  const std::string fused = e.emit(at, recurrence.name + "_fused", "gated_fuse", {recurrence.name, path, gate});
  e.rewire_after(*at, recurrence.name, fused);
}

std::optional<std::string> add_gated_path(Editor& e, const Context& c) {
  const std::vector<size_t> sites = unfused_recurrences(e);
  if (sites.empty()) return std::nullopt;
  const size_t r = pick(sites, c.rng);
  size_t at = r;
  std::string what;
  const std::string path = emit_path(e, &at, r, pick(kPathKinds, c.rng), c.rng, &what);
  fuse_with_gate(e, &at, r, path, c.shape);
  return "add a parallel path to " + quoted(e.program.body[r].name) + ", " + what + ", fused by a learned sigmoid gate";
}

std::optional<std::string> add_routed_paths(Editor& e, const Context& c) {
  const std::vector<size_t> sites = unfused_recurrences(e);
  if (sites.empty()) return std::nullopt;
  const size_t r = pick(sites, c.rng);
  const std::string recurrence = e.program.body[r].name;
  const std::string first_kind = pick(kPathKinds, c.rng);
  const std::string second_kind = pick(without(kPathKinds, first_kind), c.rng);
  size_t at = r;
  std::string first, second;
  std::vector<std::string> paths = {recurrence, emit_path(e, &at, r, first_kind, c.rng, &first),
                                    emit_path(e, &at, r, second_kind, c.rng, &second)};
  // Router features: the token and per-path statistics (ContentSharpRouter, arXiv:2507.18074);
  // the logits pass a learned temperature before the softmax over paths.
  const std::string stats = e.emit(&at, "path_stats", "path_stats", paths);
  const std::string features = e.emit(&at, "router_in", "concat", {"x", stats});
  const std::string logits =
      e.emit(&at, "router_logits", "linear", {features}, {Attr{"out", Dim{false, static_cast<int64_t>(paths.size()), 1}}});
  const std::string sharpened = e.emit(&at, "router_sharp", "temperature", {logits});
  std::vector<std::string> route_args = {sharpened};
  route_args.insert(route_args.end(), paths.begin(), paths.end());
  const std::string routed = e.emit(&at, recurrence + "_routed", "route", route_args, {Attr{"temp", 1.0}});
  e.rewire_after(at, recurrence, routed);
  return "route " + quoted(recurrence) + " together with " + first + " and " + second +
         " by a softmax router over path statistics with a learned temperature";
}

std::optional<std::string> add_bias(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const Statement& s = e.program.body[i];
    return s.op == "linear" && e.used(s.name) && !e.used_by(s.name, "bias");
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  const std::string value = e.program.body[site].name;
  e.wrap(site, "bias");
  return "add a learned bias to the projection " + quoted(value);
}

bool is_router(const Statement& s) { return s.op == "route" || s.op == "head_route"; }

// Emits before router statement `index` the weights it gives its paths: softmax(logits / temp)
// of a route, softmax(g) of a head_route. Returns their name; `index` moves down.
std::string emit_router_weights(Editor& e, size_t* index) {
  const Statement router = e.program.body[*index];
  size_t at = *index - 1;
  std::string logits = router.args[0];
  const double temperature = router.op == "route" ? route_temperature(router) : 1.0;
  if (temperature != 1.0) {
    logits = e.emit(&at, router.name + "_logits", "mul", {logits, lang::literal_text(1.0 / temperature)});
  }
  const std::string weights = e.emit(&at, router.name + "_weights", "softmax", {logits});
  *index = at + 1;
  return weights;
}

const std::vector<double> kWeightFloors = {0.02, 0.05};

// A router whose weights are floored and renormalised, so that no path is shut off while it is
// still learning (the floors of AdaMultiPathNet and PathGateFusionNet, arXiv:2507.18074).
std::optional<std::string> floor_renormalise(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) { return is_router(e.program.body[i]); });
  if (sites.empty()) return std::nullopt;
  size_t site = pick(sites, c.rng);
  const double floor = pick(kWeightFloors, c.rng);
  const std::string weights = emit_router_weights(e, &site);
  const std::string name = e.program.body[site].name;
  size_t at = site - 1;
  const std::string floored = e.emit(&at, name + "_floored", "max", {weights, lang::literal_text(floor)});
  const std::string total = e.emit(&at, name + "_total", "reduce_sum", {floored});
  const std::string renormalised = e.emit(&at, name + "_renorm", "div", {floored, total}, {Attr{"eps", 1e-6}});
  Statement& router = e.program.body[at + 1];
  router.op = "weighted_paths";
  router.args[0] = renormalised;
  router.attrs.clear();
  return "floor the weights of the router " + quoted(name) + " at " + real_text(floor) + " and renormalise them";
}

// A route over per-head paths becomes a per-head router whose logits come from each head's first
// path through one linear shared by the heads (the head-shared router MLPs of ASI-Arch's
// discoveries), instead of one set of logits for all heads.
std::optional<std::string> share_router_weights(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const Statement& s = e.program.body[i];
    return s.op == "route" && e.types[i].kind == Kind::Heads;
  });
  if (sites.empty()) return std::nullopt;
  const size_t site = pick(sites, c.rng);
  const std::string name = e.program.body[site].name;
  const std::string first_path = e.program.body[site].args[1];
  const int64_t paths = static_cast<int64_t>(e.program.body[site].args.size()) - 1;
  size_t at = site - 1;
  const std::string logits =
      e.emit(&at, name + "_head_logits", "linear", {first_path}, {Attr{"out", Dim{false, paths, 1}}});
  Statement& router = e.program.body[at + 1];
  router.op = "head_route";
  router.args[0] = logits;
  router.attrs.clear();
  return "route " + quoted(name) + " per head, with logits from each head's " + quoted(first_path) +
         " through one linear shared by the heads";
}

const std::vector<double> kBalanceWeights = {0.01, 0.03};

// An auxiliary loss that rewards the entropy of a router's weights, so that training keeps every
// path in use (the entropy terms of ContentSharpRouter and AdaMultiPathNet, arXiv:2507.18074).
std::optional<std::string> add_balance_loss(Editor& e, const Context& c) {
  auto sites = e.indices_where([&](size_t i) {
    const Statement& s = e.program.body[i];
    return (is_router(s) || s.op == "weighted_paths") && e.used(s.name) && !e.used_by(s.name, "penalty");
  });
  if (sites.empty()) return std::nullopt;
  size_t site = pick(sites, c.rng);
  const double weight = pick(kBalanceWeights, c.rng);
  const std::string weights =
      e.program.body[site].op == "weighted_paths" ? e.program.body[site].args[0] : emit_router_weights(e, &site);
  const std::string name = e.program.body[site].name;
  size_t at = site;
  const std::string entropy = e.emit(&at, name + "_entropy", "entropy", {weights});
  const std::string reward = e.emit(&at, name + "_neg_entropy", "neg", {entropy});
  const std::string penalised = e.emit(&at, name + "_balanced", "penalty", {name, reward}, {Attr{"weight", weight}});
  e.rewire_after(at, name, penalised);
  return "keep the router " + quoted(name) + " balanced: training adds " + real_text(weight) +
         " times minus the entropy of its weights to the loss";
}

// The structural hash of the sub-program that computes `value`.
std::string value_hash(Program program, const std::string& value) {
  program.result = value;
  return lang::structural_hash(program);
}

// Crossover: a value of the parent (a recurrence's queries, keys or values, or its output) is
// replaced by the sub-program that computes the same-typed value in a reference program, or
// the reference's recurrence joins the parent's as a gated parallel path.
std::optional<std::string> graft_reference(Editor& e, const Context& c) {
  struct Graft {
    size_t reference;
    std::string parent_value, reference_value;
    size_t parent_recurrence;
    int slot;  // 0..2: queries, keys, values; 3: the recurrence; 4: the recurrence as a parallel path
  };
  static const char* kSlotNames[] = {"queries", "keys", "values", "recurrence", "recurrence"};
  std::vector<Graft> grafts;
  // The hashes of the sub-programs behind each value, computed once per value.
  std::map<std::string, std::string> parent_hashes;
  std::vector<std::map<std::string, std::string>> reference_hashes(c.references.size());
  auto parent_hash = [&](const std::string& value) -> const std::string& {
    auto it = parent_hashes.find(value);
    if (it == parent_hashes.end()) it = parent_hashes.emplace(value, value_hash(e.program, value)).first;
    return it->second;
  };
  auto reference_hash = [&](size_t ref, const std::string& value) -> const std::string& {
    auto it = reference_hashes[ref].find(value);
    if (it == reference_hashes[ref].end()) it = reference_hashes[ref].emplace(value, value_hash(c.references[ref], value)).first;
    return it->second;
  };
  for (size_t ref = 0; ref < c.references.size(); ++ref) {
    const Program& reference = c.references[ref];
    if (!c.reference_types[ref]) continue;
    const Editor other{reference, *c.reference_types[ref]};
    for (size_t pr : e.indices_where([&](size_t i) { return is_mixer(e.program.body[i]); })) {
      for (size_t rr : other.indices_where([&](size_t i) { return is_mixer(reference.body[i]); })) {
        const std::vector<std::string> parent_qkv = attention_arguments(e.program.body[pr]);
        const std::vector<std::string> reference_qkv = attention_arguments(reference.body[rr]);
        for (int slot = 0; slot < 5; ++slot) {
          const std::string p = slot < 3 ? parent_qkv[slot] : e.program.body[pr].name;
          const std::string q = slot < 3 ? reference_qkv[slot] : reference.body[rr].name;
          if (p == "x" || q == "x" || e.type_of(p) != other.type_of(q)) continue;
          if (parent_hash(p) == reference_hash(ref, q)) continue;
          if (slot == 4 && (e.used_by(p, "gated_fuse") || e.used_by(p, "route"))) continue;
          grafts.push_back(Graft{ref, p, q, pr, slot});
        }
      }
    }
  }
  if (grafts.empty()) return std::nullopt;
  const Graft g = pick(grafts, c.rng);
  const Program& reference = c.references[g.reference];
  // Copy the reference statements the grafted value needs, renamed, right after the value it replaces.
  const Editor other{reference, *c.reference_types[g.reference]};
  std::set<std::string> needed = {g.reference_value};
  for (size_t i = other.index_of(g.reference_value) + 1; i-- > 0;) {
    if (needed.count(reference.body[i].name)) needed.insert(reference.body[i].args.begin(), reference.body[i].args.end());
  }
  std::map<std::string, std::string> renamed = {{"x", "x"}};
  size_t at = g.slot == 4 ? g.parent_recurrence : e.index_of(g.parent_value);
  for (const Statement& s : reference.body) {
    if (!needed.count(s.name)) continue;
    std::vector<std::string> args;
    for (const auto& a : s.args) args.push_back(lang::is_literal(a) ? a : renamed.at(a));
    renamed[s.name] = e.emit(&at, "ref_" + s.name, s.op, std::move(args), s.attrs);
    if (s.name == g.reference_value) break;
  }
  const std::string grafted = renamed.at(g.reference_value);
  const std::string origin = reference.name.empty() ? "a reference" : quoted(reference.name);
  if (g.slot == 4) {
    e.retype(c.shape);
    fuse_with_gate(e, &at, e.index_of(g.parent_value), grafted, c.shape);
    return "graft the " + reference.body[other.index_of(g.reference_value)].op + " recurrence of " + origin +
           " as a parallel path of " + quoted(g.parent_value) + ", fused by a learned sigmoid gate";
  }
  e.rewire_after(at, g.parent_value, grafted);
  return "graft the " + std::string(kSlotNames[g.slot]) + " of " + origin + " into " + quoted(g.parent_value);
}

const std::map<std::string, Operator>& operator_table() {
  static const std::map<std::string, Operator> table = {
      {"swap_activation", swap_activation},
      {"replace_op", replace_op},
      {"wrap_norm", wrap_norm},
      {"wrap_activation", wrap_activation},
      {"wrap_scale", wrap_scale},
      {"add_short_conv", add_short_conv},
      {"remove_wrapper", remove_wrapper},
      {"change_conv_size", change_conv_size},
      {"change_hyperparameter", change_hyperparameter},
      {"swap_recurrence", swap_recurrence},
      {"add_output_gate", add_output_gate},
      {"add_decay_gate", add_decay_gate},
      {"change_heads", change_heads},
      {"add_gated_path", add_gated_path},
      {"add_routed_paths", add_routed_paths},
      {"add_bias", add_bias},
      {"floor_renormalise", floor_renormalise},
      {"share_router_weights", share_router_weights},
      {"add_balance_loss", add_balance_loss},
      {"graft_reference", graft_reference},
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

MutationParent::MutationParent(lang::Program program_, const lang::ModelShape& shape_, std::vector<lang::Program> references_)
    : program(std::move(program_)), types(lang::check(program, shape_)), shape(shape_), references(std::move(references_)) {
  for (const Program& reference : references) {
    try {
      reference_types.emplace_back(lang::check(reference, shape));
    } catch (const lang::ProgramError&) {
      reference_types.emplace_back(std::nullopt);
    }
  }
}

MutationParent::MutationParent(lang::Program program_, std::vector<lang::Type> types_, const lang::ModelShape& shape_,
                               std::vector<lang::Program> references_,
                               std::vector<std::optional<std::vector<lang::Type>>> reference_types_)
    : program(std::move(program_)),
      types(std::move(types_)),
      shape(shape_),
      references(std::move(references_)),
      reference_types(std::move(reference_types_)) {}

std::optional<Mutation> mutate(const std::string& op, const MutationParent& parent, Rng& rng) {
  auto it = operator_table().find(op);
  if (it == operator_table().end()) return std::nullopt;
  Editor editor{parent.program, parent.types};
  const Context context{parent.shape, rng, parent.references, parent.reference_types};
  std::optional<std::string> description;
  try {
    description = it->second(editor, context);
    if (!description) return std::nullopt;
    editor.prune();
    lang::check(editor.program, parent.shape);
  } catch (const lang::ProgramError&) {
    return std::nullopt;
  }
  return Mutation{std::move(editor.program), *description};
}

std::optional<Mutation> mutate(const std::string& op, const Program& parent, const lang::ModelShape& shape, Rng& rng,
                               const std::vector<Program>& references) {
  return mutate(op, MutationParent(parent, shape, references), rng);
}

}  // namespace asiarch
