// libFuzzer target: the scenario parser (scenario/scenario.cpp over toml++). Any bytes either make
// a scenario or are refused with a ScenarioError ("FILE:LINE: ..."); a scenario parses again
// from its own text to the same struct. Anything else is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "scenario/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const asiarch::Scenario scenario = asiarch::parse_scenario(text, "fuzz.toml");
    if (!(asiarch::parse_scenario(scenario.bytes, scenario.file) == scenario)) {
      std::fprintf(stderr, "a scenario does not parse to itself from its own text\n");
      std::abort();
    }
  } catch (const asiarch::ScenarioError& e) {
    if (std::string(e.what()).rfind("fuzz.toml:", 0) != 0) {
      std::fprintf(stderr, "a scenario error that does not name the file: %s\n", e.what());
      std::abort();
    }
  }
  return 0;
}
