// The type checker: arity, attributes and the typing rule of every statement (from the operator
// table), and the mixer's contract that it returns seq[D].
#include <cmath>
#include <map>
#include <optional>

#include "common/suggest.h"
#include "lang/program_analysis.h"

namespace asiarch::lang {
namespace detail {
namespace {

// The widest value or attribute the checker accepts, in floats per token: keeps every cost
// figure far from integer overflow while allowing any realistic model.
constexpr int64_t kMaxWidth = int64_t{1} << 24;

std::string attr_text(const Attr& attr) { return attr.key + "=" + format_attr_value(attr.value); }

std::string usage_hint(const OperatorRules& rules) { return "write " + rules.usage; }

std::string arity_text(const OperatorRules& rules) {
  if (rules.max_args == kVariadic) return "at least " + std::to_string(rules.min_args) + " arguments";
  if (rules.min_args == rules.max_args) {
    return std::to_string(rules.min_args) + (rules.min_args == 1 ? " argument" : " arguments");
  }
  return std::to_string(rules.min_args) + " to " + std::to_string(rules.max_args) + " arguments";
}

// Names from other frameworks, and what the language writes for them: a suggestion close in
// meaning, where spelling alone would suggest an unrelated operator.
const std::map<std::string, std::string>& meaning_hints() {
  static const std::map<std::string, std::string> hints = {
      {"clamp", "max(a, LOW) clamps from below and min(a, HIGH) from above"},
      {"clip", "max(a, LOW) clamps from below and min(a, HIGH) from above"},
      {"conv", "short_conv(a, k=K) (learned causal depthwise taps) or fir(a, k=K) (taps from the identity)"},
      {"conv1d", "short_conv(a, k=K) (learned causal depthwise taps) or fir(a, k=K) (taps from the identity)"},
      {"divide", "div(a, b, eps=E)"},
      {"dropout", "nothing: models train without dropout; use the value itself"},
      {"ema", "decay_attn(q, k, v, g): a decayed running sum"},
      {"erf", "gelu(a), the exact GELU"},
      {"identity", "nothing: use the value itself"},
      {"layer_norm", "rmsnorm(a)"},
      {"layernorm", "rmsnorm(a)"},
      {"matmul", "linear(a, out=N)"},
      {"mean", "reduce_mean(a) over channels, heads_mean(a) over heads, seq_mean(a) over the sequence"},
      {"pow", "mul(a, a) for a square, sqrt(a) for a square root"},
      {"proj", "linear(a, out=N)"},
      {"sparsemax", "softmax(a); sparsemax is not in the language"},
      {"square", "mul(a, a)"},
      {"std", "heads_std(a) over heads, or head_mean_std(p1, ...) for routing statistics"},
      {"sum", "reduce_sum(a)"},
      {"swish", "silu(a)"},
  };
  return hints;
}

const OperatorRules& known_operator(const std::string& op) {
  if (const OperatorRules* rules = find_rules(op)) return *rules;
  if (auto hint = meaning_hints().find(op); hint != meaning_hints().end()) {
    throw RuleError{"unknown operator '" + op + "'; write " + hint->second + " (see `asiarch arch ops`)"};
  }
  std::vector<std::string> names;
  for (const auto& rules : operator_rules()) names.push_back(rules.name);
  const std::string guess = closest_match(op, names);
  throw RuleError{"unknown operator '" + op + "'; " + (guess.empty() ? "use one of the operators" : "did you mean '" + guess + "'?") +
                  " (see `asiarch arch ops`)"};
}

int64_t evaluate_dim(const Attr& attr, const Dim& dim, int64_t d_model) {
  if (dim.num <= 0 || dim.den <= 0) {
    throw RuleError{attr_text(attr) + " must be positive; write a dimension of at least 1"};
  }
  if (!dim.of_model_width) {
    if (dim.num > kMaxWidth) {
      throw RuleError{attr_text(attr) + " is larger than the limit " + std::to_string(kMaxWidth) + "; use a smaller size"};
    }
    return dim.num;
  }
  if (dim.num > kMaxWidth || dim.den > kMaxWidth || dim.offset > kMaxWidth || dim.offset < -kMaxWidth) {
    throw RuleError{attr_text(attr) + " is out of range; write D, D*k or D/k with a small k, and a small offset"};
  }
  const int64_t scaled = d_model * dim.num;
  if (scaled % dim.den != 0) {
    const int64_t fits = divisor_at_most(scaled, dim.den);
    throw RuleError{attr_text(attr) + " is not a whole number at D=" + std::to_string(d_model) + " (" + std::to_string(scaled) +
                    "/" + std::to_string(dim.den) + "); use a divisor of D, e.g. " + attr.key + "=" +
                    format_attr_value(Dim{true, dim.num, fits, dim.offset})};
  }
  const int64_t width = scaled / dim.den + dim.offset;
  if (width < 1) {
    throw RuleError{attr_text(attr) + " is " + std::to_string(width) + " at D=" + std::to_string(d_model) +
                    "; a width must be at least 1: use a smaller negative offset"};
  }
  if (width > kMaxWidth) {
    throw RuleError{attr_text(attr) + " is larger than the limit " + std::to_string(kMaxWidth) + " at D=" +
                    std::to_string(d_model) + "; use a smaller size"};
  }
  return width;
}

// Checks the statement's attributes against the operator's and evaluates them into `operands`.
void evaluate_attrs(const Statement& s, const OperatorRules& rules, Operands& operands) {
  for (const Attr& attr : s.attrs) {
    const AttrSpec* spec = nullptr;
    for (const auto& candidate : rules.attrs) {
      if (candidate.key == attr.key) spec = &candidate;
    }
    if (!spec) {
      if (rules.name == "linear" && attr.key == "bias") {
        throw RuleError{"has no bias; add one with its own statement: b = bias(linear(...)), or bias(a, init=V) to choose "
                        "where it starts"};
      }
      if (rules.attrs.empty()) throw RuleError{"takes no attributes; remove '" + attr_text(attr) + "'"};
      std::vector<std::string> keys;
      for (const auto& candidate : rules.attrs) keys.push_back(candidate.key);
      const std::string guess = closest_match(attr.key, keys);
      throw RuleError{"unknown attribute '" + attr.key + "'; " + (guess.empty() ? "" : "did you mean '" + guess + "'? ") +
                      usage_hint(rules)};
    }
    if (operands.has_attr(attr.key)) throw RuleError{"attribute '" + attr.key + "' is given twice; give it once"};
    if (spec->kind == AttrKind::Dimension) {
      const Dim* dim = std::get_if<Dim>(&attr.value);
      if (!dim) {
        throw RuleError{attr_text(attr) + " is a real number but '" + attr.key +
                        "' takes a dimension; write an integer, D, D*k or D/k (" + usage_hint(rules) + ")"};
      }
      operands.dims.set(spec->key, evaluate_dim(attr, *dim, operands.shape.d_model));
    } else {
      const double* real = std::get_if<double>(&attr.value);
      if (!real) {
        throw RuleError{attr_text(attr) + " is a dimension but '" + attr.key +
                        "' takes a real number; write it with a decimal point, e.g. " + attr.key + "=1.0"};
      }
      if (!std::isfinite(*real)) throw RuleError{attr_text(attr) + " must be a finite number; e.g. " + attr.key + "=1.0"};
      if (spec->kind == AttrKind::Real && *real <= 0.0) {
        throw RuleError{attr_text(attr) + " must be a positive number; e.g. " + attr.key + "=1.0"};
      }
      if (spec->kind == AttrKind::NonNegativeReal && *real < 0.0) {
        throw RuleError{attr_text(attr) + " must be at least 0; e.g. " + attr.key + "=0.02"};
      }
      operands.reals.set(spec->key, *real);
    }
  }
  for (const auto& spec : rules.attrs) {
    if (operands.has_attr(spec.key)) continue;
    if (spec.required()) throw RuleError{"needs the attribute '" + spec.key + "'; " + usage_hint(rules)};
    operands.reals.set(spec.key, *spec.default_real);
  }
}

Sign literal_sign(double value) {
  return value > 0.0 ? Sign::NonNegative : value < 0.0 ? Sign::NonPositive : Sign::Zero;
}

// Arity, attributes and the typing rule of one statement of a known operator.
CheckedStatement check_call(const Statement& s, const OperatorRules& rules, const std::vector<int>& arg_indices,
                            const std::vector<CheckedStatement>& earlier, const ModelShape& shape) {
  const auto count = static_cast<int>(s.args.size());
  if (count < rules.min_args || (rules.max_args != kVariadic && count > rules.max_args)) {
    throw RuleError{"takes " + arity_text(rules) + ", got " + std::to_string(count) + "; " + usage_hint(rules)};
  }
  Operands operands;
  operands.shape = shape;
  operands.arg_names = &s.args;
  operands.args.reserve(arg_indices.size());
  operands.literals.reserve(arg_indices.size());
  operands.signs.reserve(arg_indices.size());
  std::optional<Type> value_type;  // of the first argument that is a value: a number takes it
  for (size_t i = 0; i < arg_indices.size(); ++i) {
    const int index = arg_indices[i];
    if (index == kLiteral) {
      if (!rules.takes_literals) {
        throw RuleError{"argument " + std::to_string(i + 1) + " is the number " + s.args[i] +
                        ", but only the elementwise operators of two arguments (add, sub, mul, div, max, min) take numbers; " +
                        usage_hint(rules)};
      }
      operands.literals.push_back(literal_value(s.args[i]));
      operands.signs.push_back(literal_sign(*operands.literals.back()));
      operands.args.emplace_back();
      continue;
    }
    const CheckedStatement* defined = index == kInput ? nullptr : &earlier[static_cast<size_t>(index)];
    operands.args.push_back(defined ? defined->type : Type{Kind::Seq, 0, shape.d_model});
    operands.literals.emplace_back();
    operands.signs.push_back(defined ? defined->sign : Sign::Any);
    if (!value_type) value_type = operands.args.back();
  }
  if (!value_type && !arg_indices.empty()) {
    throw RuleError{"every argument is a number; at least one must be a value of the program, such as x or an earlier name"};
  }
  for (size_t i = 0; i < arg_indices.size(); ++i) {
    if (operands.literals[i]) operands.args[i] = *value_type;
  }
  evaluate_attrs(s, rules, operands);
  const Type type = rules.result_type(operands);
  if (elements(type) > kMaxWidth) {
    throw RuleError{"'" + s.name + "' would be " + to_string(type) + ", wider than the limit of " + std::to_string(kMaxWidth) +
                    " floats per token; use smaller widths"};
  }
  const Sign sign = rules.sign ? rules.sign(operands) : Sign::Any;
  return CheckedStatement{&rules, std::move(operands), type, sign};
}

CheckedStatement check_statement(const Statement& s, const std::vector<int>& arg_indices,
                                 const std::vector<CheckedStatement>& earlier, const ModelShape& shape) {
  const OperatorRules& rules = known_operator(s.op);
  try {
    return check_call(s, rules, arg_indices, earlier, shape);
  } catch (const RuleError& e) {
    throw RuleError{rules.name + ": " + e.message};  // every message after this names the operator first
  }
}

std::string return_hint(const std::string& name, const Type& type) {
  if (type.kind == Kind::Heads) {
    return "merge and project it: `" + name + "_seq = merge_heads(" + name + ")`, `y = linear(" + name +
           "_seq, out=D)`, then `return y`";
  }
  if (type.kind == Kind::Seq) return "project it: `y = linear(" + name + ", out=D)`, then `return y`";
  return "return a seq[D] value, such as a linear(..., out=D) of the mixer's output";
}

}  // namespace

CheckedProgram check_program(const Program& program, const ModelShape& shape, std::string_view file) {
  const std::string file_name(file);
  if (shape.d_model <= 0 || shape.d_model > kMaxWidth || shape.context <= 0 || shape.context > kMaxWidth) {
    throw ProgramError(file_name, 0,
                       "model shape D=" + std::to_string(shape.d_model) + ", T=" + std::to_string(shape.context) +
                           " is out of range; use positive sizes up to " + std::to_string(kMaxWidth));
  }
  CheckedProgram checked{resolve(program, file), {}};
  for (size_t i = 0; i < program.body.size(); ++i) {
    const Statement& s = program.body[i];
    try {
      checked.statements.push_back(check_statement(s, checked.graph.args[i], checked.statements, shape));
    } catch (const RuleError& e) {
      throw ProgramError(file_name, s.line, e.message);
    }
  }
  const Type model_width{Kind::Seq, 0, shape.d_model};
  const Type result = checked.graph.result == kInput ? model_width
                                                     : checked.statements[static_cast<size_t>(checked.graph.result)].type;
  if (result != model_width) {
    throw ProgramError(file_name, program.return_line,
                       "the program returns '" + program.result + "' of type " + to_string(result) +
                           ", but a mixer returns seq[D] = " + to_string(model_width) + "; " +
                           return_hint(program.result, result));
  }
  return checked;
}

}  // namespace detail

bool provably_non_positive(const Program& program, const std::string& name, const ModelShape& shape) {
  try {
    const detail::ProgramGraph graph = detail::resolve(program, "<program>");
    std::vector<detail::CheckedStatement> statements;
    for (size_t i = 0; i < program.body.size(); ++i) {
      statements.push_back(detail::check_statement(program.body[i], graph.args[i], statements, shape));
      if (program.body[i].name == name) return detail::is_at_most_zero(statements.back().sign);
    }
  } catch (const ProgramError&) {
  } catch (const detail::RuleError&) {
  }
  return false;
}

std::vector<Type> check(const Program& program, const ModelShape& shape, std::string_view file) {
  std::vector<Type> types;
  for (const auto& statement : detail::check_program(program, shape, file).statements) types.push_back(statement.type);
  return types;
}

}  // namespace asiarch::lang
