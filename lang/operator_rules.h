#pragma once
// Internal to lang/: the typing and cost rules behind operators(). Each operator has one
// row in the table of lang/operators.cpp; the checker, the figures and the canonical form
// all read that row, so an operator is described in one place.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lang/program.h"

namespace asiarch::lang::detail {

// Dimension: a width (4, D, D*k/m+c), positive. Real: a positive number (temp, floor, eps).
// SignedReal: any finite number (an initial value). NonNegativeReal: >= 0 (a noise level).
enum class AttrKind { Dimension, Real, SignedReal, NonNegativeReal };

struct AttrSpec {
  std::string key;
  AttrKind kind;
  std::optional<double> default_real = std::nullopt;  // set: the attribute is optional (a real)
  bool required() const { return !default_real.has_value(); }
};

// What the checker knows of a value's sign, for the rules that need one (a log-space decay must
// be <= 0). Derived bottom-up from the operators' sign rules; Any when nothing is known. Zero
// (the literal 0.0) is both non-negative and non-positive.
enum class Sign { Any, NonNegative, NonPositive, Zero };
inline bool is_at_most_zero(Sign s) { return s == Sign::NonPositive || s == Sign::Zero; }
inline bool is_at_least_zero(Sign s) { return s == Sign::NonNegative || s == Sign::Zero; }

// Attribute values by key. A statement has a few attributes, so a list searched in order costs
// less than a map's allocations, and programs are checked tens of thousands of times in a
// campaign. Keys view the names in the operator table's rows, which live as long as the process.
template <typename Value>
class AttrValues {
 public:
  void set(std::string_view key, Value value) { items_.emplace_back(key, value); }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  Value at(std::string_view key) const {
    if (const Value* value = find(key)) return *value;
    throw std::out_of_range("no attribute '" + std::string(key) + "'");
  }

 private:
  const Value* find(std::string_view key) const {
    for (const auto& [name, value] : items_) {
      if (name == key) return &value;
    }
    return nullptr;
  }
  std::vector<std::pair<std::string_view, Value>> items_;
};

// One statement's operands after checking: argument types and evaluated attributes.
struct Operands {
  std::vector<Type> args;               // a literal argument has the type of the first value argument
  const std::vector<std::string>* arg_names = nullptr;  // the statement's, for messages while it is checked
  std::vector<std::optional<double>> literals;  // per argument: its number, if it is a literal
  std::vector<Sign> signs;              // per argument
  AttrValues<int64_t> dims;             // dimension attributes, evaluated at shape.d_model
  AttrValues<double> reals;             // real attributes, optional ones at their default when not given
  ModelShape shape;

  bool has_attr(std::string_view key) const { return dims.has(key) || reals.has(key); }
  int64_t dim(std::string_view key) const { return dims.at(key); }
  double real(std::string_view key) const { return reals.at(key); }
  const std::string& arg_name(size_t i) const { return (*arg_names)[i]; }
};

// Thrown by a typing rule; the message says what is wrong and what to write instead. The
// checker adds the file, the line and the operator.
struct RuleError {
  std::string message;
};

// What one statement costs, per layer.
struct Cost {
  int64_t params = 0;
  double flops_per_token = 0.0;
  int64_t state = 0;  // floats per sequence kept between tokens
};

using TypeRule = Type (*)(const Operands&);
using SignRule = Sign (*)(const Operands&);
// `context` is the sequence length T the figures are taken at.
using CostRule = Cost (*)(const Operands&, const Type& result, int64_t context);

inline constexpr int kVariadic = -1;

struct OperatorRules {
  std::string name;
  OpClass op_class;
  std::string usage;    // how a call is written, e.g. "linear(a, out=N)"
  std::string meaning;  // what it computes, one line
  int min_args;
  int max_args;                 // kVariadic: no upper bound
  std::vector<AttrSpec> attrs;  // required unless they have a default
  TypeRule result_type;
  CostRule cost;
  bool causal = true;
  bool commutative = false;  // arguments may be swapped (add, mul): the canonical form sorts them
  bool takes_literals = false;  // a number may stand for an argument (add(a, 1.0))
  SignRule sign = nullptr;      // the result's sign; nullptr: Any
  std::vector<ArgRole> roles = {};  // see OpInfo
  Memory memory = Memory::None;
};

// Whether `value` is the default of the optional attribute `key` of `rules` (false for a
// required one): the canonical form drops such an attribute, so the model must not tell it apart.
bool is_default(const OperatorRules& rules, std::string_view key, double value);

const std::vector<OperatorRules>& operator_rules();  // in the order of operators()
const OperatorRules* find_rules(std::string_view name);

// Floats per token of a value of type t.
int64_t elements(const Type& t);

// The largest divisor of n that is at most `limit` (at least 1), to suggest a size that fits.
int64_t divisor_at_most(int64_t n, int64_t limit);

}  // namespace asiarch::lang::detail
