// `asiarch cognition list` and `asiarch cognition query` as a user drives them: JSON output with
// one object per entry or hit, and exit code 2 for bad usage.
#include <catch2/catch.hpp>

#include <string>

#include "retrieval/cognition_index.h"
#include "tests/test_helpers.h"

using namespace asiarch::testing;

namespace {

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

// A light shape check: the text is one JSON array (first and last non-space characters).
bool looks_like_json_array(const std::string& text) {
  const size_t first = text.find_first_not_of(" \n");
  const size_t last = text.find_last_not_of(" \n");
  return first != std::string::npos && text[first] == '[' && text[last] == ']';
}

}  // namespace

TEST_CASE("cognition list --json has one object per shipped entry", "[cli][cognition]") {
  const Result list = sh(cli("cognition list --json"));
  REQUIRE(list.code == 0);
  CHECK(looks_like_json_array(list.output));
  const size_t entries = asiarch::retrieval::shipped_base().size();
  CHECK(entries >= 100);
  CHECK(occurrences(list.output, "\"id\":") == entries);
  CHECK(occurrences(list.output, "\"insight\":") == entries);
  CHECK(list.output.find("\"id\": \"deltanet-recall\"") != std::string::npos);
}

TEST_CASE("cognition list prints a table that ends with the entry count", "[cli][cognition]") {
  const Result list = sh(cli("cognition list"));
  REQUIRE(list.code == 0);
  CHECK(list.output.find("deltanet-recall") != std::string::npos);
  CHECK(list.output.find("arXiv:2406.06484") != std::string::npos);
  CHECK(list.output.find(std::to_string(asiarch::retrieval::shipped_base().size()) + " entries)") !=
        std::string::npos);
}

TEST_CASE("cognition query returns k hits with scores, best first", "[cli][cognition]") {
  const Result query = sh(cli("cognition query \"delta rule recall\" -k 3 --json"));
  REQUIRE(query.code == 0);
  CHECK(looks_like_json_array(query.output));
  CHECK(occurrences(query.output, "\"id\":") == 3);
  CHECK(occurrences(query.output, "\"score\":") == 3);
  CHECK(occurrences(query.output, "\"rewrites\":") == 3);
  CHECK(occurrences(query.output, "\"applies_when\":") == 3);

  const Result text = sh(cli("cognition query \"delta rule recall\""));
  REQUIRE(text.code == 0);
  CHECK(text.output.find("1. ") != std::string::npos);
  CHECK(text.output.find("5. ") != std::string::npos);
  CHECK(text.output.find("6. ") == std::string::npos);
}

TEST_CASE("cognition commands exit 2 on bad usage", "[cli][cognition]") {
  CHECK(sh(cli("cognition query \"delta rule\" -k 0")).code == 2);
  CHECK(sh(cli("cognition query \"delta rule\" -k many")).code == 2);
  CHECK(sh(cli("cognition query")).code == 2);
  CHECK(sh(cli("cognition query \"  \"")).code == 2);
  CHECK(sh(cli("cognition")).code == 2);
  CHECK(sh(cli("cognition list --yaml")).code == 2);
}
