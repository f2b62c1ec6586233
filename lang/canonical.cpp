// The canonical form and the structural hash (lang/LANGUAGE.md).
#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/hex.h"
#include "lang/program_analysis.h"

namespace asiarch::lang {
namespace {

using detail::kInput;

// Same value, one spelling: D*2/4 becomes D/2, an optional attribute at its default is dropped
// (scale(a, init=1.0) is scale(a)), attributes are sorted by key. `rules` is the operator's row
// (nullptr for an unknown operator).
std::vector<Attr> canonical_attrs(const detail::OperatorRules* rules, std::vector<Attr> attrs) {
  if (rules) {
    std::erase_if(attrs, [&](const Attr& attr) {
      const double* real = std::get_if<double>(&attr.value);
      return real && detail::is_default(*rules, attr.key, *real);
    });
  }
  for (Attr& attr : attrs) {
    if (Dim* dim = std::get_if<Dim>(&attr.value); dim && dim->of_model_width) {
      const int64_t divisor = std::gcd(dim->num, dim->den);
      if (divisor > 1) {
        dim->num /= divisor;
        dim->den /= divisor;
      }
    }
  }
  // A stable insertion sort: a statement has a few attributes, and std::stable_sort allocates.
  for (size_t i = 1; i < attrs.size(); ++i) {
    for (size_t j = i; j > 0 && attrs[j].key < attrs[j - 1].key; --j) std::swap(attrs[j], attrs[j - 1]);
  }
  return attrs;
}

class Canonicalizer {
 public:
  explicit Canonicalizer(const Program& program) : program_(program), graph_(detail::resolve(program, "<program>")) {
    // Arguments come before their uses, so every argument's fingerprint is ready when needed.
    rules_.resize(program.body.size());
    fingerprint_.resize(program.body.size());
    for (size_t i = 0; i < program.body.size(); ++i) {
      if (!graph_.live[i]) continue;
      rules_[i] = detail::find_rules(program.body[i].op);
      fingerprint_[i] = fingerprint(static_cast<int>(i));
    }
  }

  Program result() const { return rooted_at(graph_.result); }

 private:
  static uint64_t mix(uint64_t hash, uint64_t value) {
    uint64_t z = hash ^ (value + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static uint64_t mix(uint64_t hash, std::string_view text) {
    for (unsigned char c : text) hash = mix(hash, c);
    return mix(hash, text.size());
  }

  // The fingerprint of argument `position` of statement `index`: of x, of a number or of an
  // earlier statement.
  uint64_t fingerprint_of(size_t index, size_t position) const {
    const int arg = graph_.args[index][position];
    if (arg == kInput) return 0x6a09e667f3bcc908ULL;
    if (arg == detail::kLiteral) return mix(0xbb67ae8584caa73bULL, program_.body[index].args[position]);
    return fingerprint_[static_cast<size_t>(arg)];
  }

  // A 64-bit structural fingerprint of the sub-expression rooted at `index`: operator,
  // canonical attributes and the arguments' fingerprints (sorted for commutative operators), so
  // it is independent of value names and statement order. It only orders commutative arguments;
  // the structural hash itself is SHA-256 of the canonical text.
  uint64_t fingerprint(int index) const {
    const Statement& s = program_.body[static_cast<size_t>(index)];
    const detail::OperatorRules* rules = rules_[static_cast<size_t>(index)];
    uint64_t hash = mix(0, s.op);
    for (const Attr& attr : canonical_attrs(rules, s.attrs)) {
      hash = mix(hash, attr.key);
      if (const Dim* dim = std::get_if<Dim>(&attr.value)) {
        hash = mix(mix(mix(hash, dim->of_model_width ? 1u : 0u), static_cast<uint64_t>(dim->num)), static_cast<uint64_t>(dim->den));
        if (dim->offset != 0) hash = mix(hash, static_cast<uint64_t>(dim->offset));  // widths without one hash as before
      } else {
        uint64_t bits;
        const double real = std::get<double>(attr.value);
        std::memcpy(&bits, &real, sizeof bits);
        hash = mix(hash, bits);
      }
    }
    std::vector<uint64_t> args;
    args.reserve(s.args.size());
    for (size_t j = 0; j < s.args.size(); ++j) args.push_back(fingerprint_of(static_cast<size_t>(index), j));
    if (rules && rules->commutative) std::sort(args.begin(), args.end());
    for (uint64_t arg : args) hash = mix(hash, arg);
    return hash;
  }

  // The argument positions of statement `index` in canonical order: commutative ones sorted by
  // their sub-expressions' fingerprints (ties keep their order).
  std::vector<size_t> ordered_args(int index) const {
    const auto at = static_cast<size_t>(index);
    std::vector<size_t> positions(graph_.args[at].size());
    std::iota(positions.begin(), positions.end(), size_t{0});
    const detail::OperatorRules* rules = rules_[at];
    if (rules && rules->commutative) {
      std::stable_sort(positions.begin(), positions.end(),
                       [&](size_t a, size_t b) { return fingerprint_of(at, a) < fingerprint_of(at, b); });
    }
    return positions;
  }

  // The canonical program of the sub-expression rooted at `root`: its statements in the order of
  // a depth-first walk (arguments before their use), named v0, v1, ...
  Program rooted_at(int root) const {
    Program out;
    out.name = "canonical";
    std::vector<std::string> names(program_.body.size());
    auto name_of = [&](int index) { return index == kInput ? std::string("x") : names[static_cast<size_t>(index)]; };
    struct Frame {
      int index;
      std::vector<size_t> positions;  // of its arguments, in canonical order
      size_t next = 0;
    };
    std::vector<Frame> stack;
    auto enter = [&](int index) {
      if (index >= 0 && names[static_cast<size_t>(index)].empty()) stack.push_back(Frame{index, ordered_args(index)});
    };
    enter(root);
    while (!stack.empty()) {
      Frame& frame = stack.back();
      const auto at = static_cast<size_t>(frame.index);
      if (frame.next < frame.positions.size()) {
        enter(graph_.args[at][frame.positions[frame.next++]]);  // may reallocate the stack: `frame` is not used after this
        continue;
      }
      const Statement& source = program_.body[at];
      Statement s;
      s.name = std::string("v").append(std::to_string(out.body.size()));
      s.op = source.op;
      for (size_t position : frame.positions) {
        const int arg = graph_.args[at][position];
        s.args.push_back(arg == detail::kLiteral ? source.args[position] : name_of(arg));
      }
      s.attrs = canonical_attrs(rules_[at], source.attrs);
      names[static_cast<size_t>(frame.index)] = s.name;
      out.body.push_back(std::move(s));
      stack.pop_back();
    }
    out.result = name_of(root);
    return out;
  }

  const Program& program_;
  detail::ProgramGraph graph_;
  std::vector<const detail::OperatorRules*> rules_;  // per live statement; nullptr for an unknown operator
  std::vector<uint64_t> fingerprint_;
};

}  // namespace

Program canonical(const Program& program) { return Canonicalizer(program).result(); }

std::string structural_hash_of_canonical(const Program& canonical_program) { return sha256_hex(print(canonical_program)); }

std::string structural_hash(const Program& program) { return structural_hash_of_canonical(canonical(program)); }

}  // namespace asiarch::lang
