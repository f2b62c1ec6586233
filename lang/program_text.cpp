// The text form of programs (lang/LANGUAGE.md): parse() and print().
#include <algorithm>
#include <cctype>
#include <charconv>

#include "lang/program_analysis.h"

namespace asiarch::lang {

ProgramError::ProgramError(std::string file, int line, const std::string& message)
    : std::runtime_error(file + ":" + std::to_string(line) + ": " + message),
      file_(std::move(file)),
      line_(line),
      message_(message) {}

namespace detail {

std::string format_attr_value(const AttrValue& value) {
  if (const double* real = std::get_if<double>(&value)) return literal_text(*real);
  const Dim& dim = std::get<Dim>(value);
  if (!dim.of_model_width) return std::to_string(dim.num);
  std::string text = "D";
  if (dim.num != 1) text += "*" + std::to_string(dim.num);
  if (dim.den != 1) text += "/" + std::to_string(dim.den);
  if (dim.offset > 0) text += "+";
  if (dim.offset != 0) text += std::to_string(dim.offset);
  return text;
}

}  // namespace detail

bool is_literal(std::string_view arg) {
  return !arg.empty() && (std::isdigit(static_cast<unsigned char>(arg[0])) || arg[0] == '-');
}

double literal_value(std::string_view arg) {
  double value = 0.0;
  std::from_chars(arg.data(), arg.data() + arg.size(), value);
  return value;
}

std::string literal_text(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest round-trip form
  std::string text(buffer, end);
  // Written with a '.' or an exponent so that it reads back as a real ("1.0", not "1").
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

namespace {

// What an attribute's value may be, for messages.
constexpr const char* kValueForms =
    "an integer (4), a width from the model width D (D, D*k, D/k or D*k/m, each may end in +c or -c: D*2+240) or a real "
    "(1.0)";

enum class TokenKind { Name, Number, Symbol, End };

struct Token {
  TokenKind kind;
  std::string_view text;  // into the text being parsed
};

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

std::string describe(const Token& token) {
  if (token.kind == TokenKind::End) return "the end of the line";
  std::string quoted = "'";
  return quoted.append(token.text).append("'");
}

// Parses one file; `fail` throws at the current line.
class Parser {
 public:
  Parser(std::string_view text, std::string_view file) : text_(text), file_(file) {}

  Program parse() {
    enum class Stage { BeforeProgram, Body, AfterReturn } stage = Stage::BeforeProgram;
    Program program;
    std::vector<std::string> comments;  // waiting for the line they belong to
    int program_line = 0;
    size_t start = 0;
    while (start < text_.size()) {
      const size_t newline = text_.find('\n', start);
      std::string_view line = text_.substr(start, newline == std::string_view::npos ? std::string_view::npos : newline - start);
      start = newline == std::string_view::npos ? text_.size() : newline + 1;
      ++line_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const size_t indent = line.find_first_not_of(" \t");
      if (indent == std::string_view::npos) continue;  // blank lines are not kept
      line.remove_prefix(indent);

      if (line[0] == '#') {
        if (stage == Stage::AfterReturn) {
          fail("a comment after `return` belongs to no statement; move it above `return` or above `program`");
        }
        std::string_view comment = line.substr(1);
        if (!comment.empty() && comment[0] == ' ') comment.remove_prefix(1);
        // Trailing blanks carry nothing, and a kept '\r' would read back as a line ending.
        comment.remove_suffix(comment.size() - (comment.find_last_not_of(" \t\r") + 1));
        comments.emplace_back(comment);
        continue;
      }
      if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
        fail("a comment after code is not allowed; move '" + std::string(line.substr(hash)) + "' onto its own line above");
      }
      tokenize(line);
      // `program` and `return` lines; a statement may still name a value "return" (`return = ...`).
      const bool keyword_line = peek().kind == TokenKind::Name && (tokens_.size() == 1 || tokens_[1].text != "=");
      if (stage == Stage::BeforeProgram) {
        program.name = parse_program_line();
        program.comments = std::move(comments);
        program_line = line_;
        stage = Stage::Body;
      } else if (stage == Stage::AfterReturn) {
        fail("the program ends with `return` on line " + std::to_string(program.return_line) +
             "; move this line above `return`");
      } else if (keyword_line && peek().text == "program") {
        fail("`program` is already opened on line " + std::to_string(program_line) +
             "; a file holds one program: remove this line or start a new file");
      } else if (keyword_line && peek().text == "return") {
        program.result = parse_return_line();
        program.return_comments = std::move(comments);
        program.return_line = line_;
        stage = Stage::AfterReturn;
      } else {
        Statement statement = parse_statement();
        statement.comments = std::move(comments);
        statement.line = line_;
        program.body.push_back(std::move(statement));
      }
      comments.clear();
    }
    if (stage == Stage::BeforeProgram) {
      line_ = std::max(line_, 1);
      fail("no `program NAME` line found; start the program with `program NAME`, e.g. `program my_mixer`");
    }
    if (stage == Stage::Body) {
      fail("program '" + program.name + "' has no `return`; end it with `return NAME` naming the mixer's output");
    }
    detail::resolve(program, file_);
    return program;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw ProgramError(std::string(file_), line_, message); }

  void tokenize(std::string_view line) {
    tokens_.clear();
    next_ = 0;
    size_t i = 0;
    while (i < line.size()) {
      const char c = line[i];
      if (c == ' ' || c == '\t') {
        ++i;
      } else if (is_name_start(c)) {
        const size_t begin = i;
        while (i < line.size() && is_name_char(line[i])) ++i;
        tokens_.push_back({TokenKind::Name, line.substr(begin, i - begin)});
      } else if (is_digit(c) || (c == '-' && i + 1 < line.size() && is_digit(line[i + 1]))) {
        const size_t begin = i;
        if (c == '-') ++i;
        while (i < line.size() && is_digit(line[i])) ++i;
        if (i < line.size() && line[i] == '.') {
          ++i;
          while (i < line.size() && is_digit(line[i])) ++i;
        }
        if (i < line.size() && (line[i] == 'e' || line[i] == 'E')) {
          size_t j = i + 1;
          if (j < line.size() && (line[j] == '+' || line[j] == '-')) ++j;
          if (j < line.size() && is_digit(line[j])) {
            i = j;
            while (i < line.size() && is_digit(line[i])) ++i;
          }
        }
        if (i < line.size() && (is_name_char(line[i]) || line[i] == '.')) {
          size_t end = i;
          while (end < line.size() && (is_name_char(line[end]) || line[end] == '.')) ++end;
          const std::string word(line.substr(begin, end - begin));
          fail("'" + word + "' is not a number; write an integer such as 4 or a real such as 1.0 or 1e-3");
        }
        tokens_.push_back({TokenKind::Number, line.substr(begin, i - begin)});
      } else if (std::string_view("=(),*/+").find(c) != std::string_view::npos) {
        tokens_.push_back({TokenKind::Symbol, line.substr(i, 1)});
        ++i;
      } else {
        fail("unexpected character '" + std::string(1, c) +
             "'; a statement is written `NAME = OP(ARG, ..., KEY=VALUE)`, with ARG a value name or a number and VALUE one of " +
             kValueForms);
      }
    }
  }

  const Token& peek() const {
    static const Token end{TokenKind::End, ""};
    return next_ < tokens_.size() ? tokens_[next_] : end;
  }
  Token take() {
    Token token = peek();
    if (next_ < tokens_.size()) ++next_;
    return token;
  }
  bool take_symbol(char symbol) {
    if (peek().kind != TokenKind::Symbol || peek().text[0] != symbol) return false;
    ++next_;
    return true;
  }

  // A name token that must be a valid name. `what` says what it names and `expected()` what to
  // write, for the message: it is built only when there is one, since every line takes names.
  template <typename Hint>
  std::string take_name(std::string_view what, Hint expected) {
    const Token token = take();
    if (token.kind != TokenKind::Name) fail("expected " + std::string(what) + ", found " + describe(token) + "; " + std::string(expected()));
    if (!detail::valid_name(token.text)) {
      fail("'" + std::string(token.text) + "' is not a valid " + std::string(what) + "; use lowercase letters, digits and '_', e.g. '" +
           detail::suggested_name(token.text) + "'");
    }
    return std::string(token.text);
  }

  void expect_end(const std::string& after) {
    if (peek().kind != TokenKind::End) fail("unexpected " + describe(peek()) + " after " + after + "; end the line there");
  }

  std::string parse_program_line() {
    const Token keyword = take();
    if (keyword.kind != TokenKind::Name || keyword.text != "program") {
      fail("expected `program NAME` before any statement, found " + describe(keyword) +
           "; start the program with `program NAME`");
    }
    std::string name = take_name("program name", [] { return "write `program NAME`"; });
    expect_end("the program name");
    return name;
  }

  std::string parse_return_line() {
    take();
    std::string name = take_name("value name", [] { return "write `return NAME` with the value the mixer outputs"; });
    expect_end("`return " + name + "`");
    return name;
  }

  Statement parse_statement() {
    Statement s;
    const std::string_view form = "write `NAME = OP(ARG, ..., KEY=VALUE)`";
    s.name = take_name("value name", [&] { return form; });
    if (!take_symbol('=')) fail("expected '=' after '" + s.name + "', found " + describe(peek()) + "; " + std::string(form));
    if (tokens_.size() == next_ + 1 && peek().kind == TokenKind::Name) {
      const std::string value(peek().text);
      fail("'" + s.name + " = " + value + "' only copies a value, and a copy is not needed: use '" + value + "' where you would use '" +
           s.name + "'");
    }
    s.op = take_name("operator name", [&] { return "write an operator call such as `" + s.name + " = linear(x, out=D)`"; });
    if (!take_symbol('(')) {
      fail("expected '(' after '" + s.op + "', found " + describe(peek()) + "; write " + s.op + "(ARG, ...)");
    }
    if (!take_symbol(')')) {
      do {
        parse_item(s);
      } while (take_symbol(','));
      if (!take_symbol(')')) {
        fail("expected ',' or ')' in the call of " + s.op + ", found " + describe(peek()) +
             "; separate arguments with ', ' and close the call with ')'" +
             (s.attrs.empty() ? std::string() : std::string("; an attribute's value is ") + kValueForms));
      }
    }
    expect_end("the call of " + s.op);
    return s;
  }

  // One argument (a value name or a number) or KEY=VALUE attribute of a call.
  void parse_item(Statement& s) {
    const bool is_attr = peek().kind == TokenKind::Name && next_ + 1 < tokens_.size() && tokens_[next_ + 1].text == "=";
    const std::string name = peek().kind == TokenKind::Number
                                 ? literal_text(parse_real(take().text))
                                 : take_name(is_attr ? "attribute name" : "argument",
                                             [] { return "arguments are value names or numbers, attributes are KEY=VALUE"; });
    if (!is_attr) {
      if (!s.attrs.empty()) {
        fail("argument '" + name + "' follows the attribute '" + s.attrs.back().key +
             "'; put all arguments before the KEY=VALUE attributes");
      }
      s.args.push_back(name);
      return;
    }
    take();  // '='
    s.attrs.push_back(Attr{name, parse_value(name)});
  }

  AttrValue parse_value(const std::string& key) {
    const Token token = take();
    if (token.kind == TokenKind::Number) {
      if (token.text.find_first_of(".eE") != std::string_view::npos) return parse_real(token.text);
      return Dim{false, parse_integer(token.text), 1};
    }
    if (token.kind != TokenKind::Name || token.text != "D") {
      fail("attribute '" + key + "' has no valid value (found " + describe(token) + "); write " + kValueForms);
    }
    Dim dim{true, 1, 1};
    if (take_symbol('*')) dim.num = take_integer("D*", false);
    if (take_symbol('/')) dim.den = take_integer("D/", false);
    if (dim.den == 0) fail("'" + key + "' divides D by zero; write D/k with k at least 1");
    // An offset: `+c`, or `-c`, which the tokenizer reads as one negative number.
    if (take_symbol('+')) {
      dim.offset = take_integer("+", false);
    } else if (peek().kind == TokenKind::Number && peek().text[0] == '-') {
      dim.offset = take_integer("D", true);
    }
    return dim;
  }

  // An integer token after `after`; negative only where `negative` allows it.
  int64_t take_integer(const std::string& after, bool negative) {
    const Token token = take();
    if (token.kind != TokenKind::Number || token.text.find_first_of(".eE") != std::string_view::npos ||
        (!negative && token.text[0] == '-')) {
      fail("expected a whole number after '" + after + "', found " + describe(token) + "; write " + kValueForms);
    }
    return parse_integer(token.text);
  }

  int64_t parse_integer(std::string_view text) {
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) fail("integer '" + std::string(text) + "' is out of range; use a smaller one");
    return value;
  }

  double parse_real(std::string_view text) {
    double value = 0.0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) fail("number '" + std::string(text) + "' is out of range; use a smaller one");
    return value;
  }

  std::string_view text_;
  std::string_view file_;
  int line_ = 0;
  std::vector<Token> tokens_;
  size_t next_ = 0;
};

void print_comments(std::string& out, const std::vector<std::string>& comments, const char* indent) {
  for (const auto& comment : comments) {
    out += indent;
    out += comment.empty() ? "#" : "# " + comment;
    out += '\n';
  }
}

}  // namespace

Program parse(std::string_view text, std::string_view file) { return Parser(text, file).parse(); }

// Appended piece by piece: every structural hash prints a program, and `a + b` makes a
// temporary string each time.
std::string print(const Program& program) {
  std::string out;
  print_comments(out, program.comments, "");
  out.append("program ").append(program.name).append("\n");
  for (const Statement& s : program.body) {
    print_comments(out, s.comments, "  ");
    out.append("  ").append(s.name).append(" = ").append(s.op).append("(");
    const char* separator = "";
    for (const auto& arg : s.args) {
      out.append(separator).append(arg);
      separator = ", ";
    }
    for (const auto& attr : s.attrs) {
      out.append(separator).append(attr.key).append("=").append(detail::format_attr_value(attr.value));
      separator = ", ";
    }
    out.append(")\n");
  }
  print_comments(out, program.return_comments, "  ");
  out.append("  return ").append(program.result).append("\n");
  return out;
}

}  // namespace asiarch::lang
