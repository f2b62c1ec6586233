// The architecture language: text form, type checking, derived figures, canonical form and the
// shipped baselines (lang/LANGUAGE.md).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "lang/program.h"

using namespace asiarch::lang;

namespace {

const ModelShape kShape{256, 2048};

// Parses and type-checks `text`, expecting a ProgramError; returns it.
ProgramError error_of(const std::string& text, const ModelShape& shape = kShape) {
  try {
    check(parse(text, "test.arch"), shape, "test.arch");
  } catch (const ProgramError& e) {
    return e;
  }
  FAIL("expected a ProgramError for:\n" << text);
  throw std::logic_error("unreachable");
}

Program checked(const std::string& text, const ModelShape& shape = kShape) {
  Program p = parse(text);
  check(p, shape);
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

TEST_CASE("the shipped baselines are exactly the seven published mixers") {
  std::vector<std::string> names;
  for (const auto& b : baselines()) names.push_back(b.name);
  CHECK(names == std::vector<std::string>{"deltanet", "gated_deltanet", "gla", "linear_attention", "mamba2", "retnet",
                                          "softmax_attention"});
  for (const auto& b : baselines()) CHECK(b.reference_only == (b.name == "softmax_attention"));
  REQUIRE(find_baseline("gated_deltanet") != nullptr);
  CHECK(find_baseline("gated_deltanet")->name == "gated_deltanet");
  CHECK(find_baseline("gated_delta") == nullptr);
}

TEST_CASE("the embedded baselines are the files in lang/baselines") {
  for (const auto& b : baselines()) {
    INFO(b.name);
    CHECK(read_file(std::string(ASIARCH_SOURCE_DIR) + "/lang/baselines/" + b.name + ".arch") == b.text);
  }
}

TEST_CASE("every baseline round-trips exactly, type-checks and has the right figures") {
  for (const auto& b : baselines()) {
    INFO(b.name);
    const Program p = parse(b.text, b.name + ".arch");
    CHECK(p.name == b.name);
    CHECK(print(p) == b.text);
    CHECK(parse(print(p)) == p);
    CHECK_FALSE(p.comments.empty());  // the header citing the paper
    CHECK(b.text.find("arXiv:") != std::string::npos);
    for (const ModelShape shape : {ModelShape{256, 2048}, ModelShape{64, 2048}}) {
      REQUIRE_NOTHROW(check(p, shape));
      const Figures f = derive(p, shape);
      CHECK(f.causal);
      CHECK(f.subquadratic == !b.reference_only);
      CHECK(f.params > 0);
      CHECK(f.state_size > 0);
      // Sorting commutative arguments keeps the program well typed and its figures unchanged.
      const Figures canonical_figures = derive(canonical(p), shape);
      CHECK(canonical_figures.params == f.params);
      CHECK(canonical_figures.flops_per_token == f.flops_per_token);
      CHECK(canonical_figures.state_size == f.state_size);
    }
  }
  // softmax attention's cost grows with the context; the others' does not.
  const Program softmax = parse(find_baseline("softmax_attention")->text);
  CHECK(derive(softmax, {256, 8192}).flops_per_token > derive(softmax, {256, 2048}).flops_per_token);
  CHECK_FALSE(derive(softmax, kShape).subquadratic);
}

TEST_CASE("parse(print(p)) == p for programs built in code") {
  Program p;
  p.name = "built";
  p.comments = {"a header", "", "  indented text"};
  p.body.push_back(Statement{"a", "linear", {"x"}, {Attr{"out", Dim{true, 2, 1}}}, {"widen"}, 0});
  p.body.push_back(Statement{"b", "linear", {"a"}, {Attr{"out", Dim{true, 1, 4}}}, {}, 0});
  p.body.push_back(Statement{"c", "short_conv", {"b"}, {Attr{"k", Dim{false, 4, 1}}}, {}, 0});
  p.body.push_back(Statement{"d", "linear", {"c"}, {Attr{"out", Dim{true, 1, 1}}}, {}, 0});
  p.body.push_back(Statement{"r1", "linear", {"x"}, {Attr{"out", Dim{false, 2, 1}}}, {}, 0});
  p.body.push_back(Statement{"e", "route", {"r1", "d", "x"}, {Attr{"temp", 0.5}}, {"two paths", "routed"}, 0});
  p.body.push_back(Statement{"f", "route", {"r1", "e", "x"}, {Attr{"temp", 1.0}}, {}, 0});
  p.body.push_back(Statement{"g", "route", {"r1", "f", "x"}, {Attr{"temp", 1e-3}}, {}, 0});
  p.body.push_back(Statement{"h", "route", {"r1", "g", "x"}, {Attr{"temp", 2.5e20}}, {}, 0});
  p.body.push_back(Statement{"i", "route", {"r1", "h", "x"}, {Attr{"temp", 0.1}}, {}, 0});
  p.result = "i";
  p.return_comments = {"the output"};

  const std::string text = print(p);
  CHECK(text ==
        "# a header\n"
        "#\n"
        "#   indented text\n"
        "program built\n"
        "  # widen\n"
        "  a = linear(x, out=D*2)\n"
        "  b = linear(a, out=D/4)\n"
        "  c = short_conv(b, k=4)\n"
        "  d = linear(c, out=D)\n"
        "  r1 = linear(x, out=2)\n"
        "  # two paths\n"
        "  # routed\n"
        "  e = route(r1, d, x, temp=0.5)\n"
        "  f = route(r1, e, x, temp=1.0)\n"
        "  g = route(r1, f, x, temp=0.001)\n"
        "  h = route(r1, g, x, temp=2.5e+20)\n"
        "  i = route(r1, h, x, temp=0.1)\n"
        "  # the output\n"
        "  return i\n");
  const Program back = parse(text);
  CHECK(back == p);
  CHECK(back.body[0].line == 6);
  CHECK(back.return_line == 19);
  CHECK_NOTHROW(check(back, kShape));
}

TEST_CASE("parsing accepts free spacing and blank lines and prints the canonical layout") {
  const Program p = parse("\n# head\n\nprogram   spaced\n    a=silu( x )\n\n\treturn a\n\n");
  CHECK(print(p) == "# head\nprogram spaced\n  a = silu(x)\n  return a\n");
  CHECK(p.body.at(0).line == 5);
  CHECK(p.return_line == 7);
  const Program reals = parse("program r\n  a = route(x, x, x, temp=1e-3)\n  return a\n");
  CHECK(std::get<double>(reals.body[0].attrs[0].value) == 1e-3);
  CHECK(print(reals).find("temp=0.001") != std::string::npos);
  // A comment's trailing blanks and carriage returns are dropped: kept, a '\r' would print as a
  // line ending and read back shorter (fuzz/regressions/fuzz_program/comment-ending-in-cr.arch).
  const Program crlf = parse("program c\r\n# x \r\r\n  a = silu(x)\r\n  return a\r\n");
  CHECK(crlf.body.at(0).comments == std::vector<std::string>{"x"});
  CHECK(print(parse(print(crlf))) == print(crlf));
}

TEST_CASE("ProgramError::what() is FILE:LINE: message") {
  const ProgramError e("dir/f.arch", 7, "something is wrong; do this instead");
  CHECK(std::string(e.what()) == "dir/f.arch:7: something is wrong; do this instead");
  CHECK(e.file() == "dir/f.arch");
  CHECK(e.line() == 7);
  CHECK(e.message() == "something is wrong; do this instead");
}

TEST_CASE("errors name the line, what is wrong and what to write instead") {
  struct Case {
    const char* what;
    std::string text;
    int line;
    std::vector<std::string> fragments;
  };
  const std::string head = "# header\nprogram p\n";
  const std::vector<Case> cases = {
      {"unknown operator", head + "  a = linear(x, out=D)\n  b = slu(a)\n  return b\n", 4,
       {"unknown operator 'slu'", "did you mean 'silu'?", "asiarch arch ops"}},
      {"use before definition", head + "  a = silu(q)\n  q = silu(x)\n  return a\n", 3,
       {"'q' is used before it is defined", "define it on an earlier line"}},
      {"undefined value", head + "  q_act = silu(x)\n  a = silu(q_ac)\n  return a\n", 4,
       {"'q_ac' is not defined", "did you mean 'q_act'?"}},
      {"redefinition", head + "  a = silu(x)\n  q = silu(a)\n  q = tanh(a)\n  return q\n", 5,
       {"'q' is already defined on line 4", "choose a new name"}},
      {"redefining x", head + "  x = silu(x)\n  return x\n", 3, {"'x' is the program input", "choose a new name"}},
      {"comment after code", head + "  a = silu(x)  # why\n  return a\n", 3,
       {"comment after code", "onto its own line above"}},
      {"no return", head + "  a = silu(x)\n", 3, {"has no `return`", "return NAME"}},
      {"statement after return", head + "  a = silu(x)\n  return a\n  b = silu(a)\n", 5,
       {"ends with `return` on line 4", "move this line above `return`"}},
      {"no program line", "# only a comment\n  a = silu(x)\n", 2, {"`program NAME`"}},
      {"argument after attribute", head + "  a = linear(x, out=D, x)\n  return a\n", 3,
       {"follows the attribute 'out'", "put all arguments before"}},
      {"missing parenthesis", head + "  a = silu(x\n  return a\n", 3, {"expected ',' or ')'", "close the call with ')'"}},
      {"bad value name", head + "  Q = silu(x)\n  return Q\n", 3, {"'Q' is not a valid value name", "'q'"}},
      {"bad attribute value", head + "  a = linear(x, out=E)\n  return a\n", 3, {"D, D*k, D/k"}},
      {"arity", head + "  a = linear(x, out=D)\n  b = split_heads(a, h=4)\n  o = linear_attn(b, b)\n  return a\n", 5,
       {"linear_attn: takes 3 arguments, got 2", "write linear_attn(q, k, v)"}},
      {"missing attribute", head + "  a = linear(x)\n  return a\n", 3,
       {"linear: needs the attribute 'out'", "write linear(a, out=N)"}},
      {"unknown attribute", head + "  a = linear(x, outt=D)\n  return a\n", 3,
       {"unknown attribute 'outt'", "did you mean 'out'?"}},
      {"attribute on an operator without any", head + "  a = silu(x, k=4)\n  return a\n", 3,
       {"silu: takes no attributes", "remove 'k=4'"}},
      {"real where a dimension belongs", head + "  a = short_conv(x, k=4.0)\n  return a\n", 3,
       {"k=4.0 is a real number", "takes a dimension", "write an integer"}},
      {"dimension where a real belongs", head + "  r = linear(x, out=2)\n  a = route(r, x, x, temp=2)\n  return a\n", 4,
       {"temp=2 is a dimension", "takes a real number", "temp=1.0"}},
      {"non-positive dimension", head + "  a = linear(x, out=0)\n  return a\n", 3, {"out=0 must be positive"}},
      {"non-positive real", head + "  r = linear(x, out=2)\n  a = route(r, x, x, temp=-1.0)\n  return a\n", 4,
       {"temp=-1.0 must be a positive number"}},
      {"attribute given twice", head + "  a = linear(x, out=D, out=D)\n  return a\n", 3, {"given twice", "give it once"}},
      {"D/3 at D=256", head + "  a = linear(x, out=D/3)\n  b = linear(a, out=D)\n  return b\n", 3,
       {"out=D/3 is not a whole number at D=256", "e.g. out=D/2"}},
      {"heads do not divide", head + "  a = linear(x, out=D)\n  b = split_heads(a, h=3)\n  c = merge_heads(b)\n  return c\n", 4,
       {"does not split into 3 heads", "choose h that divides 256, e.g. h=2"}},
      {"wrong kind of argument", head + "  a = linear(x, out=D)\n  b = split_heads(a, h=4)\n  c = short_conv(b, k=4)\n  return c\n",
       5, {"must be seq[n], got heads[4, 64]", "merge_heads(b)"}},
      {"no broadcast between these", head + "  a = linear(x, out=D/2)\n  b = add(a, x)\n  return b\n", 4,
       {"cannot combine seq[128] ('a') with seq[256] ('x')", "heads[h, d] with scalars[h]"}},
      {"beta of the wrong type", head +
                                     "  a = linear(x, out=D)\n  q = split_heads(a, h=4)\n  bp = linear(x, out=2)\n"
                                     "  beta = head_scalars(bp)\n  o = delta_rule(q, q, q, beta)\n  m = merge_heads(o)\n  return m\n",
       7, {"beta", "must be scalars[4], got scalars[2]", "out=4"}},
      {"return not seq[D]", head + "  a = linear(x, out=D)\n  b = split_heads(a, h=4)\n  # the result\n  return b\n", 6,
       {"returns 'b' of type heads[4, 64]", "seq[D] = seq[256]", "merge_heads(b)", "linear(b_seq, out=D)"}},
      {"return of an unknown value", head + "  a = silu(x)\n  return y\n", 4, {"'y' is not defined"}},
      {"a copy", head + "  v = silu(x)\n  o = v\n  return o\n", 4, {"'o = v' only copies a value", "a copy is not needed", "use 'v'"}},
      {"a name from another framework", head + "  a = clamp(x)\n  return a\n", 3, {"unknown operator 'clamp'", "max(a, LOW)", "min(a, HIGH)"}},
      {"divide", head + "  a = divide(x, x)\n  return a\n", 3, {"write div(a, b, eps=E)"}},
      {"a bias on linear", head + "  a = linear(x, out=4, bias=1)\n  return a\n", 3,
       {"linear: has no bias", "bias(linear(...))"}},
      {"unknown attribute without a close one", head + "  a = linear(x, colour=4)\n  return a\n", 3,
       {"unknown attribute 'colour'; write linear(a, out=N)"}},
      {"a width of a form the grammar lacks", head + "  a = linear(x, out=2*D)\n  return a\n", 3,
       {"D*k/m, each may end in +c or -c: D*2+240"}},
      {"an offset that is not a number", head + "  a = linear(x, out=D+E)\n  return a\n", 3,
       {"D*k/m, each may end in +c or -c: D*2+240"}},
      {"a width below 1", head + "  a = linear(x, out=D-300)\n  b = linear(a, out=D)\n  return b\n", 3,
       {"out=D-300 is -44 at D=256", "at least 1"}},
      {"a number where a value belongs", head + "  a = silu(1.0)\n  return a\n", 3,
       {"silu: argument 1 is the number 1.0", "only the elementwise operators of two arguments"}},
      {"numbers only", head + "  a = add(1.0, 2.0)\n  return a\n", 3, {"every argument is a number"}},
      {"a decay of unknown sign",
       head + "  a = linear(x, out=D)\n  q = split_heads(a, h=4)\n  gp = linear(x, out=4)\n  g = head_scalars(gp)\n"
              "  o = decay_attn(q, q, q, g)\n  m = merge_heads(o)\n  return m\n",
       7, {"decay_attn: the decay g", "must be a log decay, <= 0", "logsigmoid", "min(g, 0.0)"}},
      {"a negative initial scale", head + "  a = scale(x, init=-1.0)\n  return a\n", 3, {"init=-1.0 must be a positive number"}},
      {"the wrong router weights", head + "  w = linear(x, out=3)\n  a = weighted_paths(w, x, x)\n  return a\n", 4,
       {"the weights, argument 1 ('w'), must be seq[2], one per path, got seq[3]"}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const ProgramError e = error_of(c.text);
    CHECK(e.file() == "test.arch");
    CHECK(e.line() == c.line);
    CHECK(std::string(e.what()).rfind("test.arch:" + std::to_string(c.line) + ": ", 0) == 0);
    for (const auto& fragment : c.fragments) CHECK_THAT(e.message(), Catch::Matchers::Contains(fragment));
  }
}

TEST_CASE("numbers, width offsets and optional attributes read, print and check") {
  const Program p = checked(
      "program n\n  a = mul(x, 0.50)\n  b = add(1, a)\n  c = max(b, -2e-3)\n  w = linear(c, out=D*2+240)\n"
      "  s = linear(w, out=D/2-8)\n  t = scale(s, init=2.0)\n  u = bias(t)\n  y = linear(u, out=D)\n  return y\n");
  CHECK(p.body[0].args == std::vector<std::string>{"x", "0.5"});
  CHECK(p.body[1].args == std::vector<std::string>{"1.0", "a"});
  CHECK(p.body[2].args == std::vector<std::string>{"b", "-0.002"});
  CHECK(is_literal("0.5"));
  CHECK(is_literal("-0.002"));
  CHECK_FALSE(is_literal("x"));
  CHECK(literal_value("-0.002") == -0.002);
  const std::string text = print(p);
  CHECK(text.find("out=D*2+240") != std::string::npos);
  CHECK(text.find("out=D/2-8") != std::string::npos);
  CHECK(print(parse(text)) == text);
  const std::vector<Type> types = check(p, kShape);
  CHECK(types[3] == Type{Kind::Seq, 0, 2 * 256 + 240});
  CHECK(types[4] == Type{Kind::Seq, 0, 256 / 2 - 8});
  // scale's and bias's parameters: one per channel.
  const Figures f = derive(p, kShape);
  CHECK(f.params == 256 * 752 + 752 * 120 + 120 + 120 + 120 * 256);

  // The canonical form: numbers are leaves (sorted with the commutative arguments), a default
  // is dropped, an offset is part of the width.
  auto hash = [](const std::string& body) { return structural_hash(parse("program h\n" + body)); };
  CHECK(hash("  a = add(x, 1.0)\n  return a\n") == hash("  a = add(1.0, x)\n  return a\n"));
  CHECK(hash("  a = add(x, 1.0)\n  return a\n") != hash("  a = add(x, 2.0)\n  return a\n"));
  CHECK(hash("  a = sub(x, 1.0)\n  return a\n") != hash("  a = sub(1.0, x)\n  return a\n"));
  CHECK(hash("  a = scale(x, init=1.0)\n  return a\n") == hash("  a = scale(x)\n  return a\n"));
  CHECK(hash("  a = scale(x, init=2.0)\n  return a\n") != hash("  a = scale(x)\n  return a\n"));
  CHECK(hash("  a = fir(x, k=4, noise=0.0, dirac=1.0)\n  return a\n") == hash("  a = fir(x, k=4)\n  return a\n"));
  CHECK(hash("  a = fir(x, k=4, noise=0.02)\n  return a\n") != hash("  a = fir(x, k=4)\n  return a\n"));
  CHECK_THROWS_WITH(check(parse("program f\n  a = fir(x, k=4, noise=-0.1)\n  return a\n"), kShape),
                    Catch::Contains("noise=-0.1 must be at least 0"));
  CHECK(hash("  a = linear(x, out=D+8)\n  return a\n") != hash("  a = linear(x, out=D)\n  return a\n"));
  CHECK(print(canonical(parse("program h\n  a = sub(x, 0.5)\n  return a\n"))).find("sub(x, 0.5)") != std::string::npos);
  // The algebraic normal form drops neutral numbers.
  auto algebraic = [](const std::string& body) { return algebraic_hash(parse("program h\n" + body)); };
  const std::string silu = algebraic("  a = silu(x)\n  return a\n");
  CHECK(algebraic("  a = silu(x)\n  b = mul(1.0, a)\n  return b\n") == silu);
  CHECK(algebraic("  a = silu(x)\n  b = add(a, 0.0)\n  c = sub(b, 0.0)\n  return c\n") == silu);
  CHECK(algebraic("  a = silu(x)\n  b = sub(0.0, a)\n  return b\n") != silu);
  CHECK(algebraic("  a = silu(x)\n  b = mul(a, 2.0)\n  return b\n") != silu);
  // The canonical form is a fixed point, which lets algebraic_hash hash the normal form's text
  // without canonicalising it again.
  for (const auto& shipped : {baselines(), discoveries()}) {
    for (const Baseline& b : shipped) {
      const Program p = parse(b.text, b.name);
      INFO(b.name);
      CHECK(canonical(canonical(p)) == canonical(p));
      CHECK(algebraic_hash(p) == structural_hash(algebraic_normal_form(p)));
      // Callers that have the canonical form hash from it and get the same values.
      CHECK(structural_hash_of_canonical(canonical(p)) == structural_hash(p));
      CHECK(algebraic_hash_of_canonical(canonical(p)) == algebraic_hash(p));
    }
  }
}

TEST_CASE("the added operators: types, signs and figures") {
  const std::string head = "program p\n  a = linear(x, out=D)\n  h = split_heads(a, h=4)\n";
  auto type_of_last = [&](const std::string& lines) {
    const Program p = parse(head + lines + "  y = linear(x, out=D)\n  return y\n");
    return check(p, kShape).at(p.body.size() - 2);
  };
  CHECK(type_of_last("  r = reduce_sum(a)\n") == Type{Kind::Seq, 0, 1});
  CHECK(type_of_last("  r = reduce_max(h)\n") == Type{Kind::Scalars, 4, 0});
  CHECK(type_of_last("  r = entropy(h)\n") == Type{Kind::Scalars, 4, 0});
  CHECK(type_of_last("  r = heads_std(h)\n") == Type{Kind::Heads, 4, 64});
  CHECK(type_of_last("  r = linear(h, out=16)\n") == Type{Kind::Heads, 4, 16});
  CHECK(type_of_last("  s = reduce_mean(a)\n  r = div(a, s, eps=1e-6)\n") == Type{Kind::Seq, 0, 256});
  CHECK(type_of_last("  w = linear(x, out=2)\n  r = weighted_paths(w, a, x)\n") == Type{Kind::Seq, 0, 256});
  CHECK(type_of_last("  w = split_heads(x, h=4)\n  wl = linear(w, out=2)\n  r = weighted_paths(wl, h, h)\n") ==
        Type{Kind::Heads, 4, 64});
  CHECK(type_of_last("  w = linear(x, out=2)\n  r = weighted_paths(w, h, h)\n") == Type{Kind::Heads, 4, 64});

  // A head-shared linear has one [N, d] weight; it pays for every head's product.
  const Figures shared = derive(parse(head + "  m = linear(h, out=16)\n  n = merge_heads(m)\n  y = linear(n, out=D)\n  return y\n"), kShape);
  CHECK(shared.params == 256 * 256 + 64 * 16 + 64 * 256);
  CHECK(shared.flops_per_token == Approx(2.0 * 256 * 256 + 2.0 * 4 * 64 * 16 + 2.0 * 64 * 256));

  // Decays: a sign the checker can see.
  const std::string qkv = "program d\n  a = linear(x, out=D)\n  q = split_heads(a, h=4)\n  gp = linear(x, out=4)\n  gs = head_scalars(gp)\n";
  const std::string tail = "  o = decay_attn(q, q, q, g)\n  m = merge_heads(o)\n  return m\n";
  for (const char* decay : {"  g = logsigmoid(gs)\n", "  g = min(gs, 0.0)\n", "  e = softplus(gs)\n  g = neg(e)\n",
                            "  e = sigmoid(gs)\n  g = sub(0.0, e)\n", "  e = exp(gs)\n  g = mul(e, -0.5)\n",
                            "  g = retnet_decay(x, h=4)\n"}) {
    INFO(decay);
    CHECK_NOTHROW(check(parse(qkv + decay + tail), kShape));
  }
  for (const char* decay : {"  g = tanh(gs)\n", "  g = max(gs, 0.0)\n", "  e = softplus(gs)\n  g = sub(e, 1.0)\n",
                            "  g = mul(gs, -0.5)\n"}) {
    INFO(decay);
    CHECK_THROWS_WITH(check(parse(qkv + decay + tail), kShape), Catch::Contains("must be a log decay"));
    CHECK_FALSE(provably_non_positive(parse(qkv + decay + tail), "g", kShape));
  }
  CHECK(provably_non_positive(parse(qkv + "  g = logsigmoid(gs)\n" + tail), "g", kShape));
  CHECK_FALSE(provably_non_positive(parse(qkv + "  g = logsigmoid(gs)\n" + tail), "gs", kShape));
}

TEST_CASE("every added form type-checks in one program, and its canonical form keeps its figures") {
  const Program p = parse(read_file(ASIARCH_SOURCE_DIR "/tests/programs/every_addition.arch"), "every_addition.arch");
  const ModelShape shape{32, 64};
  REQUIRE_NOTHROW(check(p, shape));
  CHECK(print(parse(print(p))) == print(p));
  const Figures f = derive(p, shape);
  const Figures c = derive(canonical(p), shape);
  CHECK(f.params == c.params);
  CHECK(f.flops_per_token == Approx(c.flops_per_token));
  CHECK(f.causal);
  CHECK(f.subquadratic);
}

TEST_CASE("scoping errors are found by parse, typing errors by check") {
  CHECK_THROWS_AS(parse("program p\n  a = silu(q)\n  return a\n"), ProgramError);
  const Program unknown_op = parse("program p\n  a = slu(x)\n  return a\n");  // parses: operators are checked by check()
  CHECK_THROWS_AS(check(unknown_op, kShape), ProgramError);
}

TEST_CASE("D/3 is a type error only where it does not divide D") {
  const std::string text = "program third\n  a = linear(x, out=D/3)\n  b = linear(a, out=D)\n  return b\n";
  CHECK_THROWS_AS(check(parse(text), ModelShape{256, 2048}), ProgramError);
  const std::vector<Type> types = check(parse(text), ModelShape{255, 2048});
  CHECK(types == std::vector<Type>{Type{Kind::Seq, 0, 85}, Type{Kind::Seq, 0, 255}});
  CHECK(to_string(types[0]) == "seq[85]");
}

TEST_CASE("check returns the type of every statement, with broadcasts in either order") {
  const Program p = checked(
      "program types\n"
      "  a = linear(x, out=D)\n"
      "  h = split_heads(a, h=4)\n"
      "  s_proj = linear(x, out=4)\n"
      "  s = head_scalars(s_proj)\n"
      "  left = mul(h, s)\n"
      "  right = mul(s, h)\n"
      "  diff = sub(s, h)\n"
      "  both = concat(a, a)\n"
      "  stats = path_stats(left, right, diff)\n"
      "  m = merge_heads(right)\n"
      "  return m\n");
  const std::vector<Type> types = check(p, kShape);
  REQUIRE(types.size() == 10);
  CHECK(to_string(types[1]) == "heads[4, 64]");
  CHECK(to_string(types[3]) == "scalars[4]");
  CHECK(types[4] == types[1]);
  CHECK(types[5] == types[1]);
  CHECK(types[6] == types[1]);
  CHECK(to_string(types[7]) == "seq[512]");
  CHECK(to_string(types[8]) == "seq[6]");
}

TEST_CASE("hand-computed parameters, FLOPs and state of a tiny program") {
  // D = 8, T = 16.
  //   a = linear(x, out=D)      params 8*8 = 64, FLOPs 2*8*8 = 128
  //   c = short_conv(a, k=3)    params 8*3 = 24, FLOPs 2*8*3 = 48, state 8*(3-1) = 16
  //   h = split_heads(c, h=2)   heads[2, 4], free
  //   o = linear_attn(h, h, h)  FLOPs 4*2*4*4 = 128, state 2*4*4 = 32
  //   m = merge_heads(o)        free
  //   g = silu(m)               FLOPs 8 (one per element)
  //   y = linear(g, out=D)      params 64, FLOPs 128
  //   unused = linear(x, ...)   dead: not counted
  const Program p = checked(
      "program tiny\n"
      "  a = linear(x, out=D)\n"
      "  c = short_conv(a, k=3)\n"
      "  h = split_heads(c, h=2)\n"
      "  o = linear_attn(h, h, h)\n"
      "  m = merge_heads(o)\n"
      "  g = silu(m)\n"
      "  unused = linear(x, out=D*4)\n"
      "  y = linear(g, out=D)\n"
      "  return y\n",
      ModelShape{8, 16});
  const Figures f = derive(p, ModelShape{8, 16});
  CHECK(f.params == 64 + 24 + 64);
  CHECK(f.flops_per_token == Approx(128 + 48 + 128 + 8 + 128));
  CHECK(f.state_size == 16 + 32);
  CHECK(f.causal);
  CHECK(f.subquadratic);

  // Softmax attention at T = 16: FLOPs 2*h*T*(dk+dv) = 2*2*16*8 = 512, state h*T*(dk+dv) = 256.
  const Program softmax = checked(
      "program tiny_softmax\n"
      "  h = split_heads(x, h=2)\n"
      "  o = softmax_attn(h, h, h)\n"
      "  m = merge_heads(o)\n"
      "  return m\n",
      ModelShape{8, 16});
  const Figures fs = derive(softmax, ModelShape{8, 16});
  CHECK(fs.params == 0);
  CHECK(fs.flops_per_token == Approx(512));
  CHECK(fs.state_size == 256);
  CHECK_FALSE(fs.subquadratic);  // 4T costs 2048 >= 2 * 512

  // Sliding-window attention at W = 4: FLOPs 2*h*W*(dk+dv) = 128 at any T.
  const Program swa = checked(
      "program tiny_swa\n"
      "  h = split_heads(x, h=2)\n"
      "  o = swa(h, h, h, window=4)\n"
      "  m = merge_heads(o)\n"
      "  return m\n",
      ModelShape{8, 16});
  CHECK(derive(swa, ModelShape{8, 16}).flops_per_token == Approx(128));
  CHECK(derive(swa, ModelShape{8, 16}).subquadratic);
}

TEST_CASE("learned scales and norms count their parameters per channel or per head") {
  const Program p = checked(
      "program learned\n"
      "  h = split_heads(x, h=2)\n"
      "  hs = scale(h)\n"
      "  ht = temperature(hs)\n"
      "  hn = rmsnorm(ht)\n"
      "  m = merge_heads(hn)\n"
      "  ms = scale(m)\n"
      "  mt = temperature(ms)\n"
      "  mn = rmsnorm(mt)\n"
      "  return mn\n",
      ModelShape{8, 16});
  // scale: 2 heads + 8 channels; temperature: 2 heads + 1; rmsnorm: last dimension 4 + 8.
  CHECK(derive(p, ModelShape{8, 16}).params == 2 + 2 + 4 + 8 + 1 + 8);
}

TEST_CASE("per-head routing operators: types, hand-computed figures and errors") {
  // D = 8, T = 16, h = 2, d = 4, k = 2 paths.
  //   v = split_heads(x, h=2)            heads[2, 4], free
  //   f = fir(v, k=3)                    params 8*3 = 24, FLOPs 2*8*3 = 48, state 8*2 = 16
  //   s = fir(x, k=5)                    params 8*5 = 40, FLOPs 80, state 8*4 = 32
  //   abs = head_mean_abs(f, v)          seq[4], FLOPs 2*16 = 32
  //   ms = head_mean_std(f, v)           seq[8], FLOPs 4*16 = 64
  //   both = concat(abs, ms)             seq[12]
  //   g_proj = linear(both, out=4)       params 48, FLOPs 96
  //   g = split_heads(g_proj, h=2)       heads[2, 2]
  //   gs = sharpen(g)                    params 2 (per head), FLOPs 4
  //   fused = sigmoid_fuse(gs, f, v)     FLOPs 4*4 + 2*2*8 = 48
  //   routed = head_route(g, f, v)       FLOPs 3*4 + 2*2*8 = 44
  //   sum = add(fused, routed)           FLOPs 8
  //   m = merge_heads(sum)
  //   y = add(m, s)                      FLOPs 8
  const ModelShape shape{8, 16};
  const Program p = checked(
      "program per_head\n"
      "  v = split_heads(x, h=2)\n"
      "  f = fir(v, k=3)\n"
      "  s = fir(x, k=5)\n"
      "  abs = head_mean_abs(f, v)\n"
      "  ms = head_mean_std(f, v)\n"
      "  both = concat(abs, ms)\n"
      "  g_proj = linear(both, out=4)\n"
      "  g = split_heads(g_proj, h=2)\n"
      "  gs = sharpen(g)\n"
      "  fused = sigmoid_fuse(gs, f, v, floor=0.02)\n"
      "  routed = head_route(g, f, v)\n"
      "  sum = add(fused, routed)\n"
      "  m = merge_heads(sum)\n"
      "  y = add(m, s)\n"
      "  return y\n",
      shape);
  const std::vector<Type> types = check(p, shape);
  CHECK(to_string(types[1]) == "heads[2, 4]");
  CHECK(to_string(types[2]) == "seq[8]");
  CHECK(to_string(types[3]) == "seq[4]");
  CHECK(to_string(types[4]) == "seq[8]");
  CHECK(to_string(types[8]) == "heads[2, 2]");
  CHECK(to_string(types[9]) == "heads[2, 4]");
  CHECK(to_string(types[10]) == "heads[2, 4]");
  const Figures f = derive(p, shape);
  CHECK(f.params == 24 + 40 + 48 + 2);
  CHECK(f.flops_per_token == Approx(48 + 80 + 32 + 64 + 96 + 4 + 48 + 44 + 8 + 8));
  CHECK(f.state_size == 16 + 32);
  CHECK(f.causal);
  CHECK(f.subquadratic);
  CHECK(derive(checked("program sh\n  a = sharpen(x)\n  return a\n", shape), shape).params == 1);
  // The order of the paths is meaningful: swapping them is another program.
  const std::string swapped = "program per_head2\n  v = split_heads(x, h=2)\n  f = fir(v, k=3)\n  g_proj = linear(x, out=4)\n"
                              "  g = split_heads(g_proj, h=2)\n  r = head_route(g, ";
  CHECK(structural_hash(parse(swapped + "f, v)\n  m = merge_heads(r)\n  return m\n")) !=
        structural_hash(parse(swapped + "v, f)\n  m = merge_heads(r)\n  return m\n")));

  const std::string head = "program bad\n  v = split_heads(x, h=4)\n  g_proj = linear(x, out=8)\n  g = split_heads(g_proj, h=4)\n";
  const std::string floor = error_of(head + "  o = sigmoid_fuse(g, v, v, floor=1.5)\n  m = merge_heads(o)\n  return m\n").message();
  CHECK(floor.find("floor below 1") != std::string::npos);
  const std::string logits = error_of(head + "  o = head_route(g, v, v, v)\n  m = merge_heads(o)\n  return m\n").message();
  CHECK(logits.find("must be heads[4, 3]") != std::string::npos);
  CHECK(logits.find("out=12") != std::string::npos);
  const std::string seq_path = error_of("program bad\n  s = head_mean_abs(x)\n  return x\n").message();
  CHECK(seq_path.find("heads[h, d]") != std::string::npos);
  CHECK(error_of("program bad\n  h = split_heads(x, h=4)\n  f = fir(h, k=0)\n  return x\n").message().find("positive") != std::string::npos);
  CHECK(error_of(head + "  o = head_route(g, v)\n  m = merge_heads(o)\n  return m\n").message().find("at least 3 arguments") !=
        std::string::npos);
}

TEST_CASE("the discoveries are ASI-Arch's five named architectures, shipped and checked like the baselines") {
  std::vector<std::string> names;
  for (const auto& d : discoveries()) names.push_back(d.name);
  CHECK(names == std::vector<std::string>{"ada_multi_path_net", "content_sharp_router", "fusion_gated_firnet", "hier_gate_net",
                                          "path_gate_fusion_net"});
  for (const auto& d : discoveries()) {
    INFO(d.name);
    CHECK(d.discovery);
    CHECK_FALSE(d.reference_only);
    REQUIRE(find_baseline(d.name) == &d);
    CHECK(read_file(std::string(ASIARCH_SOURCE_DIR) + "/lang/discoveries/" + d.name + ".arch") == d.text);
    const Program p = parse(d.text, d.name + ".arch");
    CHECK(p.name == d.name);
    CHECK(print(p) == d.text);
    // Each names the paper, its entry in the release and what still differs from the source.
    CHECK(d.text.find("arXiv:2507.18074") != std::string::npos);
    CHECK(d.text.find("data/106.json") != std::string::npos);
    CHECK(d.text.find("Differences from the source:") != std::string::npos);
    for (const ModelShape shape : {ModelShape{256, 2048}, ModelShape{64, 2048}}) {
      REQUIRE_NOTHROW(check(p, shape));
      const Figures f = derive(p, shape);
      CHECK(f.causal);
      CHECK(f.subquadratic);
      CHECK(derive(canonical(p), shape).params == f.params);
    }
  }
  for (const auto& b : baselines()) CHECK_FALSE(b.discovery);
  // What defines each: its paths and how they are mixed.
  auto ops_of = [](const std::string& name) {
    std::multiset<std::string> ops;
    for (const auto& s : parse(find_baseline(name)->text).body) ops.insert(s.op);
    return ops;
  };
  const auto fusion = ops_of("fusion_gated_firnet");
  CHECK(fusion.count("gated_delta_rule") == 1);  // the delta rule with the per-head retention
  CHECK(fusion.count("fir") == 2);
  CHECK(fusion.count("sigmoid_fuse") == 1);
  CHECK(fusion.count("gelu") == 1);
  const auto router = ops_of("content_sharp_router");
  CHECK(router.count("sharpen") == 1);
  CHECK(router.count("silu") >= 4);  // the router's MLP uses SiLU, as the source does
  CHECK(router.count("gelu") == 0);
  CHECK(router.count("penalty") == 1);
  CHECK(ops_of("path_gate_fusion_net").count("weighted_paths") == 1);
  CHECK(ops_of("hier_gate_net").count("head_route") == 1);
  CHECK(ops_of("ada_multi_path_net").count("fir") == 5);
  CHECK(ops_of("ada_multi_path_net").count("penalty") == 1);
}

TEST_CASE("the coverage study's programs (research/asi-arch) read, print back and type-check") {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(ASIARCH_SOURCE_DIR) + "/research/asi-arch")) {
    if (entry.path().extension() != ".arch") continue;
    INFO(entry.path().filename().string());
    const std::string text = read_file(entry.path().string());
    const Program p = parse(text, entry.path().filename().string());
    CHECK(print(p) == text);
    CHECK(text.find("data/106.json entry " + p.name) != std::string::npos);
    CHECK(text.find("# Verdict: ") != std::string::npos);
    CHECK_NOTHROW(check(p, ModelShape{256, 2048}));
    ++count;
  }
  CHECK(count == 21);
}

TEST_CASE("the operator table names the role of every argument of a token mixer") {
  CHECK(argument_slot("linear_attn", ArgRole::Query) == 0u);
  CHECK(argument_slot("swa", ArgRole::Value) == 2u);
  CHECK(argument_slot("decay_attn", ArgRole::Decay) == 3u);
  CHECK(argument_slot("delta_rule", ArgRole::Beta) == 3u);
  CHECK(argument_slot("gated_delta_rule", ArgRole::Beta) == 3u);
  CHECK(argument_slot("gated_delta_rule", ArgRole::Decay) == 4u);
  CHECK_FALSE(argument_slot("delta_rule", ArgRole::Decay));
  CHECK_FALSE(argument_slot("linear", ArgRole::Query));
  CHECK_FALSE(argument_slot("no_such_op", ArgRole::Query));
  // softmax_attn is quadratic: a search never swaps it in.
  CHECK(subquadratic_mixers() == std::vector<std::string>{"linear_attn", "decay_attn", "delta_rule", "gated_delta_rule", "swa"});
  CHECK(find_operator("softmax_attn")->memory == Memory::Everything);
  CHECK(find_operator("swa")->memory == Memory::Window);
  CHECK(find_operator("gated_fuse")->roles.empty());
  // Every role list matches the arguments a checked statement has, so a slot always exists.
  for (const auto& shipped : {baselines(), discoveries()}) {
    for (const Baseline& b : shipped) {
      for (const Statement& s : parse(b.text, b.name).body) {
        const std::vector<ArgRole>& roles = find_operator(s.op)->roles;
        INFO(b.name << ": " << s.op);
        if (!roles.empty()) CHECK(roles.size() == s.args.size());
      }
    }
  }
}

TEST_CASE("a non-causal operator reaching the result makes the program non-causal") {
  const Program mean = checked("program m\n  a = seq_mean(x)\n  b = add(a, x)\n  return b\n");
  CHECK_FALSE(derive(mean, kShape).causal);
  const Program conv = checked("program c\n  a = noncausal_conv(x, k=3)\n  return a\n");
  CHECK_FALSE(derive(conv, kShape).causal);
  const Program dead = checked("program d\n  a = seq_mean(x)\n  b = silu(x)\n  return b\n");
  CHECK(derive(dead, kShape).causal);
  const Program causal_conv = checked("program s\n  a = short_conv(x, k=3)\n  return a\n");
  CHECK(derive(causal_conv, kShape).causal);
}

TEST_CASE("canonical form ignores names, comments, dead code, statement order and commutative order") {
  const Program original = parse(
      "# first spelling\n"
      "program one\n"
      "  q = linear(x, out=D)\n"
      "  k = linear(x, out=D/2)\n"
      "  kk = linear(k, out=D)\n"
      "  # a sum\n"
      "  s = add(q, kk)\n"
      "  p = mul(s, x)\n"
      "  return p\n");
  const Program renamed = parse(
      "program two\n"
      "  # keys first this time\n"
      "  key = linear(x, out=D/2)\n"
      "  unused = silu(x)\n"
      "  key_up = linear(key, out=D)\n"
      "  query = linear(x, out=D)\n"
      "  total = add(key_up, query)\n"
      "  prod = mul(x, total)\n"
      "  return prod\n");
  CHECK(canonical(original) == canonical(renamed));
  CHECK(structural_hash(original) == structural_hash(renamed));
  CHECK(print(canonical(original)) ==
        "program canonical\n"
        "  v0 = linear(x, out=D/2)\n"
        "  v1 = linear(v0, out=D)\n"
        "  v2 = linear(x, out=D)\n"
        "  v3 = add(v1, v2)\n"
        "  v4 = mul(x, v3)\n"
        "  return v4\n");
  CHECK(canonical(canonical(original)) == canonical(original));
  CHECK(derive(original, kShape).params == derive(canonical(original), kShape).params);

  // Real changes: another operator, another attribute, swapped arguments of sub.
  const Program other_op = parse(
      "program three\n  q = linear(x, out=D)\n  k = linear(x, out=D/2)\n  kk = linear(k, out=D)\n"
      "  s = sub(q, kk)\n  p = mul(s, x)\n  return p\n");
  const Program other_attr = parse(
      "program four\n  q = linear(x, out=D)\n  k = linear(x, out=D/4)\n  kk = linear(k, out=D)\n"
      "  s = add(q, kk)\n  p = mul(s, x)\n  return p\n");
  const Program swapped_sub = parse(
      "program five\n  q = linear(x, out=D)\n  k = linear(x, out=D/2)\n  kk = linear(k, out=D)\n"
      "  s = sub(kk, q)\n  p = mul(s, x)\n  return p\n");
  CHECK(structural_hash(other_op) != structural_hash(original));
  CHECK(structural_hash(other_attr) != structural_hash(original));
  CHECK(structural_hash(swapped_sub) != structural_hash(other_op));
}

TEST_CASE("fresh_name gives the first base_N the program does not use, never the input x") {
  const Program p = parse("program names\n  g_1 = silu(x)\n  g_2 = silu(g_1)\n  y = linear(g_2, out=D)\n  return y\n");
  CHECK(fresh_name(p, "g") == "g_3");
  CHECK(fresh_name(p, "y") == "y_1");
  CHECK(fresh_name(parse("program input\n  y = linear(x, out=D)\n  return y\n"), "x") == "x_1");
}

TEST_CASE("canonical form keeps shared values shared") {
  const Program shared = parse("program s\n  a = linear(x, out=D)\n  b = add(a, a)\n  return b\n");
  const Program separate = parse("program t\n  a = linear(x, out=D)\n  c = linear(x, out=D)\n  b = add(a, c)\n  return b\n");
  CHECK(print(canonical(shared)) == "program canonical\n  v0 = linear(x, out=D)\n  v1 = add(v0, v0)\n  return v1\n");
  CHECK(structural_hash(shared) != structural_hash(separate));
}

TEST_CASE("structural hashes are 64 lowercase hex digits and tell the baselines apart") {
  std::set<std::string> hashes;
  for (const auto& b : baselines()) {
    const std::string hash = structural_hash(parse(b.text));
    CHECK(hash.size() == 64);
    CHECK(hash.find_first_not_of("0123456789abcdef") == std::string::npos);
    hashes.insert(hash);
  }
  CHECK(hashes.size() == baselines().size());
  // SHA-256 of the canonical text of `return x`, computed independently (sha256sum).
  CHECK(structural_hash(parse("program identity\n  return x\n")) ==
        "feed957556f391133e1f9670be32faff132a35d360c158cd28546c8be07d5ab2");
}

TEST_CASE("the operator table lists every operator of LANGUAGE.md once") {
  const std::vector<std::string> expected = {
      "linear",     "split_heads", "merge_heads", "head_scalars", "concat",         "silu",         "sigmoid",
      "softplus",   "logsigmoid",  "elu1",        "relu",         "exp",            "tanh",         "neg",
      "add",        "sub",         "mul",         "scale",        "temperature",    "l2norm",       "rmsnorm",
      "gated_rmsnorm", "short_conv", "noncausal_conv", "seq_mean", "linear_attn", "decay_attn", "delta_rule",
      "gated_delta_rule", "swa",  "softmax_attn", "retnet_decay", "gated_fuse",     "route",        "path_stats",
      "fir",        "sharpen",     "head_mean_abs", "head_mean_std", "sigmoid_fuse", "head_route",
      "gelu",       "abs",         "log",         "sqrt",         "div",            "max",          "min",
      "bias",       "softmax",     "weighted_paths", "reduce_sum", "reduce_mean",   "reduce_max",   "entropy",
      "heads_mean", "heads_std", "penalty"};
  std::vector<std::string> names;
  for (const auto& op : operators()) names.push_back(op.name);
  CHECK(std::set<std::string>(names.begin(), names.end()) == std::set<std::string>(expected.begin(), expected.end()));
  CHECK(names.size() == expected.size());
  for (const auto& op : operators()) {
    INFO(op.name);
    CHECK(op.causal == (op.name != "noncausal_conv" && op.name != "seq_mean"));
    CHECK(op.summary.rfind(op.name + "(", 0) == 0);
  }
  REQUIRE(find_operator("linear") != nullptr);
  CHECK(find_operator("linear")->attrs == std::vector<std::string>{"out"});
  CHECK(find_operator("linear")->op_class == OpClass::Projection);
  CHECK(find_operator("route")->attrs == std::vector<std::string>{"temp"});
  CHECK(find_operator("sigmoid_fuse")->attrs == std::vector<std::string>{"floor"});
  CHECK(find_operator("fir")->attrs == std::vector<std::string>{"k", "dirac", "noise"});
  CHECK(find_operator("gated_delta_rule")->op_class == OpClass::Recurrence);
  CHECK(find_operator("slu") == nullptr);
}
