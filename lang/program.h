#pragma once
// The architecture language: typed SSA programs that describe a token mixer. The text form,
// the types and every operator are specified in lang/LANGUAGE.md. This header is torch-free.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace asiarch::lang {

// An error in a program, located in its text. what() is "FILE:LINE: message".
class ProgramError : public std::runtime_error {
 public:
  ProgramError(std::string file, int line, const std::string& message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  int line_;
  std::string message_;
};

// A dimension attribute: an integer, or D times num/den plus an offset (D*2+240, D/2-8).
struct Dim {
  bool of_model_width = false;  // true: D*num/den + offset; false: num
  int64_t num = 0;
  int64_t den = 1;
  int64_t offset = 0;
  bool operator==(const Dim&) const = default;
};

using AttrValue = std::variant<Dim, double>;

struct Attr {
  std::string key;
  AttrValue value;
  bool operator==(const Attr&) const = default;
};

// A number written as an argument (`mul(a, 0.5)`): its text in the shortest form that reads
// back to the same double, as print writes it. Value names never start with a digit or '-'.
bool is_literal(std::string_view arg);
double literal_value(std::string_view arg);  // of an argument for which is_literal holds
std::string literal_text(double value);      // "0.5", "1.0", "-1e-06"

struct Statement {
  std::string name;                   // the value this statement defines
  std::string op;                     // operator name, see LANGUAGE.md
  std::vector<std::string> args;      // names of earlier values, "x", or literals (is_literal)
  std::vector<Attr> attrs;            // in source order
  std::vector<std::string> comments;  // full comment lines above it, text after "# "
  int line = 0;                       // 1-based line in the source text, 0 if built in code
  bool operator==(const Statement& o) const {  // line is where it came from, not what it is
    return name == o.name && op == o.op && args == o.args && attrs == o.attrs && comments == o.comments;
  }
};

struct Program {
  std::string name;
  std::vector<std::string> comments;         // comment lines before `program`
  std::vector<Statement> body;
  std::string result;                        // the returned value
  std::vector<std::string> return_comments;  // comment lines above `return`
  int return_line = 0;
  bool operator==(const Program& o) const {
    return name == o.name && comments == o.comments && body == o.body && result == o.result &&
           return_comments == o.return_comments;
  }
};

enum class Kind { Seq, Heads, Scalars };

struct Type {
  Kind kind = Kind::Seq;
  int64_t heads = 0;  // heads and scalars
  int64_t dim = 0;    // seq width, or per-head vector size
  bool operator==(const Type&) const = default;
};
std::string to_string(const Type& t);  // "seq[256]", "heads[4, 64]", "scalars[4]"

// The concrete sizes a program is checked and measured at.
struct ModelShape {
  int64_t d_model = 256;  // D
  int64_t context = 2048; // T
};

// Parses the text form. Throws ProgramError naming `file` and the line.
Program parse(std::string_view text, std::string_view file = "<program>");
// Prints the text form of LANGUAGE.md; print(parse(t)) == t for text in that layout.
std::string print(const Program& program);

// A statement name `base_N` (N = 1, 2, ...) that `program` does not use yet, nor the input x:
// for rewrites that insert statements.
std::string fresh_name(const Program& program, std::string_view base);

// Type-checks against a shape. Returns the type of each statement's value, in body order.
// Throws ProgramError naming the statement's line, the problem and what to write instead.
std::vector<Type> check(const Program& program, const ModelShape& shape, std::string_view file = "<program>");

// Whether the checker can show that the value `name` is <= 0, as a log decay must be (see
// LANGUAGE.md, Signs). False when the statements up to its definition do not type-check.
bool provably_non_positive(const Program& program, const std::string& name, const ModelShape& shape);

// Derived figures of a type-checked program (throws ProgramError if it does not check).
struct Figures {
  int64_t params = 0;            // per layer
  double flops_per_token = 0.0;  // per layer, at shape.context
  int64_t state_size = 0;        // floats per sequence per layer
  bool causal = true;            // static: no non-causal op reaches the result
  bool subquadratic = true;      // flops at 4T < 2x flops at T
};
// `file` names the program in a ProgramError, as check's does.
Figures derive(const Program& program, const ModelShape& shape, std::string_view file = "<program>");

// Canonical form (LANGUAGE.md) and the structural hash (64 hex chars, SHA-256 of its text).
Program canonical(const Program& program);
std::string structural_hash(const Program& program);
// structural_hash and algebraic_hash from a program's canonical form (canonical(p)), for a
// caller that has it already: the same values, without canonicalising the program again.
std::string structural_hash_of_canonical(const Program& canonical_program);
std::string algebraic_hash_of_canonical(const Program& canonical_program);

// The torch-free stand-in for the functional probe that simulation uses: algebraic identities of
// the operator set rewritten to one form (mul(a, sigmoid(a)) -> silu(a), exp(logsigmoid(a)) ->
// sigmoid(a), neg(neg(a)) -> a, mul(rmsnorm(a), silu(g)) -> gated_rmsnorm(a, g)), then the
// canonical form (lang/algebraic_normal_form.cpp).
Program algebraic_normal_form(const Program& program);
// structural_hash of the algebraic normal form: the duplicate key of simulation.
std::string algebraic_hash(const Program& program);

// The operator table, for tools and mutation operators.
enum class OpClass { Projection, Reshape, Elementwise, Binary, Learned, Norm, LocalMix, Recurrence, Routing, Reduction, Auxiliary };
// What an argument of a token mixer is for: the engineer, the mutations and the synthetic oracle
// find a recurrence's queries, keys, values, beta and decay by role, not by position.
enum class ArgRole { Operand, Query, Key, Value, Beta, Decay };
// What a token mixer keeps between tokens: nothing (not a mixer), a dk x dv matrix per head
// (linear_attn, decay_attn, the delta rules), a window of keys and values (swa), or every key
// and value (softmax_attn: quadratic).
enum class Memory { None, Matrix, Window, Everything };
struct OpInfo {
  std::string name;
  OpClass op_class;
  bool causal;                     // false for ops that look at the whole sequence
  std::vector<std::string> attrs;  // attribute keys it takes, e.g. {"out"}, {"k"}, {"temp"}, optional ones too
  std::string summary;             // one line for `asiarch arch ops`
  std::vector<ArgRole> roles;      // per argument position; empty: every argument is an operand
  Memory memory = Memory::None;
};
const std::vector<OpInfo>& operators();             // in a fixed order
const OpInfo* find_operator(std::string_view name); // nullptr if unknown
// The position of the argument of `op` that plays `role`; nullopt if it has none.
std::optional<size_t> argument_slot(std::string_view op, ArgRole role);
// A token mixer over queries, keys and values whose cost does not grow with the context (matrix
// state or window): the kernels a search may swap between, in the order of operators().
bool is_subquadratic_mixer(std::string_view op);
const std::vector<std::string>& subquadratic_mixers();

// Shipped programs: the baselines (lang/baselines/*.arch) and the architectures
// ASI-Arch discovered (lang/discoveries/*.arch), by name. Both may start a campaign or be
// trained by name; only the baselines are the published starting points.
struct Baseline {
  std::string name;        // e.g. "gated_deltanet"
  std::string text;        // the program's text form
  bool reference_only;     // softmax_attention: fails the complexity check by design
  bool discovery = false;  // from lang/discoveries: found by a search, not a baseline
};
const std::vector<Baseline>& baselines();    // sorted by name
const std::vector<Baseline>& discoveries();  // sorted by name
// A baseline or a discovery by name; nullptr if neither.
const Baseline* find_baseline(std::string_view name);

}  // namespace asiarch::lang
