// libFuzzer target: the architecture language (lang/LANGUAGE.md). Any text either parses or
// is refused with a ProgramError; what parses prints and parses back to the same text, and its
// type check, derived figures and canonical form either work or refuse with a ProgramError.
// Anything else (another exception, a sanitizer report, a round trip that differs) is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>

#include "lang/program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace asiarch::lang;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Program program;
  try {
    program = parse(text, "fuzz.arch");
  } catch (const ProgramError&) {
    return 0;
  }
  const std::string printed = print(program);
  const std::string reprinted = print(parse(printed, "printed.arch"));
  if (reprinted != printed) {
    std::fprintf(stderr, "print(parse(print(p))) != print(p):\n%s\n---\n%s\n", printed.c_str(), reprinted.c_str());
    std::abort();
  }
  try {
    const ModelShape shape{64, 256};
    check(program, shape, "fuzz.arch");
    derive(program, shape);
    structural_hash(canonical(program));
  } catch (const ProgramError&) {
  }
  return 0;
}
