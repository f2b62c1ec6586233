#pragma once
// Internal to lang/: the def-use graph of a program and its checked form, shared by the
// parser, the type checker, the figures and the canonical form.
#include <string>
#include <string_view>
#include <vector>

#include "lang/operator_rules.h"
#include "lang/program.h"

namespace asiarch::lang::detail {

inline constexpr int kInput = -1;    // an argument that is the program input x
inline constexpr int kLiteral = -2;  // an argument that is a number (is_literal)

struct ProgramGraph {
  std::vector<std::vector<int>> args;  // per statement, the body index defining each argument (kInput, kLiteral)
  int result = kInput;                 // the body index defining the returned value
  std::vector<bool> live;              // per statement: the returned value depends on it
};

// Links every use to its definition. Throws ProgramError when a name is not valid, is defined
// twice, redefines x, or is used before (or without) being defined.
ProgramGraph resolve(const Program& program, std::string_view file);

struct CheckedStatement {
  const OperatorRules* rules;
  Operands operands;
  Type type;
  Sign sign = Sign::Any;  // what the checker knows of the value's sign
};

struct CheckedProgram {
  ProgramGraph graph;
  std::vector<CheckedStatement> statements;  // in body order
};

// resolve() and then every typing rule; throws ProgramError at the line of the first problem.
CheckedProgram check_program(const Program& program, const ModelShape& shape, std::string_view file);

// Names of programs, values and attributes: [a-z_][a-z0-9_]*.
bool valid_name(std::string_view name);
// What to write instead of an invalid name: lowercase, other characters replaced by '_'.
std::string suggested_name(std::string_view name);

// An attribute value as the text form writes it ("D/2", "D*2+240", "4", "1.0").
std::string format_attr_value(const AttrValue& value);

}  // namespace asiarch::lang::detail
