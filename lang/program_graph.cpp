// Name resolution: SSA scoping of a program, shared by parse(), check() and canonical().
#include <cctype>
#include <algorithm>
#include <array>

#include "common/suggest.h"
#include "lang/name_table.h"
#include "lang/program_analysis.h"

namespace asiarch::lang::detail {

namespace {

// The characters of a name, by byte: ASCII ranges, not std::islower, so that the language's names
// do not depend on the locale; a table, since every statement's name is checked at every resolve.
constexpr std::array<bool, 256> kNameCharacters = [] {
  std::array<bool, 256> table{};
  table['_'] = true;
  for (char c = 'a'; c <= 'z'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c = '0'; c <= '9'; ++c) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

}  // namespace

bool valid_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return kNameCharacters[static_cast<unsigned char>(c)]; });
}

std::string suggested_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    out += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_';
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "v_" + out;
  return out;
}

namespace {

std::string where(int line) { return line > 0 ? "on line " + std::to_string(line) : "by an earlier statement"; }

// " (did you mean 'q_act'?)" when x or a name defined before statement `before` is close to `name`.
std::string did_you_mean(const std::string& name, const Program& program, size_t before) {
  std::vector<std::string> names{"x"};
  for (size_t i = 0; i < before; ++i) names.push_back(program.body[i].name);
  std::sort(names.begin(), names.end());  // the suggestion must not depend on the statements' order
  const std::string guess = closest_match(name, names);
  return guess.empty() ? "" : " (did you mean '" + guess + "'?)";
}

}  // namespace

ProgramGraph resolve(const Program& program, std::string_view file) {
  const std::string file_name(file);
  if (!valid_name(program.name)) {
    throw ProgramError(file_name, 0,
                       "program name '" + program.name + "' is not valid; use lowercase letters, digits and '_', e.g. '" +
                           suggested_name(program.name) + "'");
  }
  ProgramGraph graph;
  graph.args.reserve(program.body.size());
  // Every program is resolved many times in a campaign: the names defined so far are views of
  // the statements' names in a NameTable.
  NameTable<int> defined(program.body.size() + 1);
  defined.insert("x", kInput);
  // The statement defining `name`, used in statement `before` (the body's size: the return).
  auto lookup = [&](const std::string& name, size_t before, int line, const char* role) {
    if (const int* index = defined.find(name)) return *index;
    for (const Statement& later : program.body) {
      if (later.name != name) continue;
      throw ProgramError(file_name, line,
                         std::string(role) + " '" + name + "' is used before it is defined; define it on an earlier line (it is defined " +
                             where(later.line) + ")");
    }
    throw ProgramError(file_name, line,
                       std::string(role) + " '" + name + "' is not defined; define it on an earlier line" + did_you_mean(name, program, before));
  };

  for (size_t i = 0; i < program.body.size(); ++i) {
    const Statement& s = program.body[i];
    std::vector<int> args;
    args.reserve(s.args.size());
    for (const auto& arg : s.args) args.push_back(is_literal(arg) ? kLiteral : lookup(arg, i, s.line, "value"));
    graph.args.push_back(std::move(args));
    if (!valid_name(s.name)) {
      throw ProgramError(file_name, s.line,
                         "'" + s.name + "' is not a valid value name; use lowercase letters, digits and '_', e.g. '" +
                             suggested_name(s.name) + "'");
    }
    if (s.name == "x") {
      throw ProgramError(file_name, s.line, "'x' is the program input and cannot be redefined; choose a new name");
    }
    if (!defined.insert(s.name, static_cast<int>(i))) {
      throw ProgramError(file_name, s.line,
                         "'" + s.name + "' is already defined " + where(program.body[static_cast<size_t>(*defined.find(s.name))].line) +
                             "; SSA values are defined once: choose a new name");
    }
  }
  graph.result = lookup(program.result, program.body.size(), program.return_line, "returned value");

  graph.live.assign(program.body.size(), false);
  if (graph.result != kInput) graph.live[static_cast<size_t>(graph.result)] = true;
  // Arguments are defined before their use, so one backward pass marks everything the result needs.
  for (size_t i = program.body.size(); i-- > 0;) {
    if (!graph.live[i]) continue;
    for (int arg : graph.args[i]) {
      if (arg >= 0) graph.live[static_cast<size_t>(arg)] = true;
    }
  }
  return graph;
}

}  // namespace asiarch::lang::detail

namespace asiarch::lang {

std::string fresh_name(const Program& program, std::string_view base) {
  for (int n = 1;; ++n) {
    std::string name = std::string(base) + "_" + std::to_string(n);
    const bool used = name == "x" || std::any_of(program.body.begin(), program.body.end(), [&](const Statement& s) { return s.name == name; });
    if (!used) return name;
  }
}

}  // namespace asiarch::lang
