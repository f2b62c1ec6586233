// The cognition base: the shipped data is valid, embeddings are deterministic unit vectors,
// retrieval finds the right entries in a deterministic order, and malformed data files are
// reported at their file and line.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "retrieval/cognition_index.h"
#include "retrieval/cognition_base.h"

using namespace asiarch::retrieval;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

size_t index_of(const CognitionIndex& index, const std::string& id) {
  for (size_t i = 0; i < index.size(); ++i) {
    if (index.entry(i).id == id) return i;
  }
  FAIL("no entry with id " << id);
  return 0;
}

size_t rank_of(const std::vector<Hit>& hits, size_t entry_index) {
  const auto found = std::find_if(hits.begin(), hits.end(),
                                  [&](const Hit& hit) { return hit.index == entry_index; });
  return static_cast<size_t>(found - hits.begin());
}

double squared_length(const std::vector<float>& v) {
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * x;
  return sum;
}

// FNV-1a over the floats' bytes: a fingerprint of an embedding, exact to the bit.
uint64_t bytes_digest(const std::vector<float>& v) {
  uint64_t digest = 0xcbf29ce484222325ULL;
  for (float x : v) {
    unsigned char bytes[sizeof x];
    std::memcpy(bytes, &x, sizeof x);
    for (unsigned char byte : bytes) {
      digest ^= byte;
      digest *= 0x100000001b3ULL;
    }
  }
  return digest;
}

Entry make_entry(std::string id, std::string insight) {
  return Entry{std::move(id), "A test note", 2025, "test", std::move(insight), "tests", {}};
}

const char* const kValidEntry = R"([[entry]]
id = "good-entry"
title = "A title"
year = 2024
source = "arXiv:0000.00000"
insight = "Something true."
applies_when = "Always."
rewrites = ["wrap_norm"]
)";

}  // namespace

TEST_CASE("the shipped base parses and every entry is complete", "[cognition]") {
  const std::vector<Entry>& base = shipped_base();
  REQUIRE(base.size() >= 100);
  std::set<std::string> ids;
  for (const Entry& entry : base) {
    INFO(entry.id);
    CHECK(ids.insert(entry.id).second);
    CHECK_FALSE(entry.title.empty());
    CHECK_FALSE(entry.insight.empty());
    CHECK_FALSE(entry.applies_when.empty());
    CHECK_FALSE(entry.source.empty());
    CHECK_FALSE(entry.rewrites.empty());
    for (const std::string& rewrite : entry.rewrites) {
      INFO(rewrite);
      CHECK(std::find(kRewriteOperators.begin(), kRewriteOperators.end(), rewrite) !=
            kRewriteOperators.end());
    }
  }
}

TEST_CASE("every shipped entry cites an arXiv id that agrees with its year", "[cognition]") {
  // arXiv:YYMM.NNNNN. A paper submitted on the last days of December can be numbered in January
  // of the next year, so the year may also be the one before the id's.
  const std::regex arxiv_id(R"(arXiv:(\d{2})(\d{2})\.\d{4,5})");
  for (const Entry& entry : shipped_base()) {
    INFO(entry.id << ": " << entry.source << ", " << entry.year);
    std::smatch match;
    REQUIRE(std::regex_match(entry.source, match, arxiv_id));
    const int id_year = 2000 + std::stoi(match[1].str());
    const int id_month = std::stoi(match[2].str());
    CHECK(id_month >= 1);
    CHECK(id_month <= 12);
    CHECK((entry.year == id_year || (entry.year == id_year - 1 && id_month == 1)));
  }
}

TEST_CASE("the shipped base suggests every rewrite operator somewhere", "[cognition]") {
  std::set<std::string> suggested;
  for (const Entry& entry : shipped_base()) {
    suggested.insert(entry.rewrites.begin(), entry.rewrites.end());
  }
  for (std::string_view op : kRewriteOperators) {
    INFO(op);
    CHECK(suggested.count(std::string(op)) == 1);
  }
}

TEST_CASE("embeddings are deterministic unit vectors", "[cognition]") {
  const std::string text = "Gated linear attention with a data-dependent decay";
  const std::vector<float> first = embed_text(text);
  const std::vector<float> second = embed_text(text);
  REQUIRE(first.size() == static_cast<size_t>(kEmbeddingDim));
  CHECK(first == second);
  CHECK(squared_length(first) == Approx(1.0).epsilon(1e-6));
  CHECK(embed_text("DeltaNet RECALL") == embed_text("deltanet recall"));
  CHECK(embed_text("delta rule") != embed_text("decay gate"));
}

TEST_CASE("the embedding of a fixed text is pinned to the bit", "[cognition]") {
  // Recorded once; a machine, compiler or code change that alters any byte of an embedding
  // changes retrieval, so it must show up here.
  const std::vector<float> embedding =
      embed_text("Gated DeltaNet: the delta rule, with a decay gate, recalls associations.");
  CHECK(bytes_digest(embedding) == 0x96f349e26e754ef7ULL);
}

TEST_CASE("a text without features embeds as the zero vector", "[cognition]") {
  for (const char* text : {"", "  ,.;  ", "the with of"}) {
    INFO(text);
    CHECK(squared_length(embed_text(text)) == 0.0);
  }
}

TEST_CASE("an entry's own insight retrieves that entry first", "[cognition]") {
  const CognitionIndex index(shipped_base());
  for (size_t i = 0; i < index.size(); ++i) {
    INFO(index.entry(i).id);
    const std::vector<Hit> hits = index.query(index.entry(i).insight, 1);
    REQUIRE(hits.size() == 1);
    CHECK(hits[0].index == i);
  }
}

TEST_CASE("a query about recall with the delta rule prefers DeltaNet to RetNet decay",
          "[cognition]") {
  const CognitionIndex index(shipped_base());
  const std::vector<Hit> hits =
      index.query("associative recall with the delta rule", static_cast<int>(index.size()));
  const size_t deltanet = rank_of(hits, index_of(index, "deltanet-recall"));
  const size_t retnet = rank_of(hits, index_of(index, "retnet-multiscale-decay"));
  CHECK(deltanet < retnet);
  CHECK(deltanet < 3);
}

TEST_CASE("situations described in words retrieve the entries that address them", "[cognition]") {
  // Each situation must bring at least one of its entries into the top five, as the researcher
  // would see them. The last three are the analyst's diagnoses (actors/analyst.cpp) verbatim.
  struct Situation {
    std::string text;
    std::vector<std::string> any_of;
  };
  const std::vector<Situation> situations = {
      {"keys collide and old associations are never erased",
       {"fast-weight-delta-rule", "deltanet-recall", "gated-deltanet"}},
      {"the model cannot find the token after a key without position information",
       {"deltanet-short-conv", "h3-shift-conv-recall", "induction-heads-previous-token"}},
      {"state forgets too slowly on long sequences",
       {"gla-data-dependent-gate", "gla-gate-temperature", "retnet-multiscale-decay"}},
      {"training loss spikes and the mixer output is not normalised",
       {"transnormer-output-norm", "mamba2-gated-norm", "jamba-mamba-inner-norm"}},
      {"attention weights are too flat to focus on a single token", {"hedgehog-spiky-features"}},
      {"the recurrence cannot track state such as parity or permutations",
       {"negative-eigenvalues-state-tracking", "deltaproduct-householder-steps", "illusion-of-state"}},
      {"all heads share one memory horizon", {"retnet-multiscale-decay", "alibi-head-slopes"}},
      {"the recurrent state is too small to store many key-value pairs",
       {"based-state-size", "hgrn2-state-expansion", "xlstm-matrix-memory"}},
      {"the read-out goes to the output projection without a multiplicative gate",
       {"gla-output-gate", "griffin-gated-branch"}},
      {"recurrence parameters are fixed over time and cannot select content",
       {"mamba-selective-state", "gateloop-data-controlled-transitions"}},
      {"associative recall is weaker than the reference (0.412 vs 0.530); language modelling loss is "
       "better (3.1021 vs 3.2544); improve memory capacity and key retrieval",
       {"deltanet-recall", "gated-deltanet", "based-state-size", "h3-shift-conv-recall"}},
      {"recall is stronger than the reference (0.611 vs 0.530); language modelling loss is worse "
       "(3.3120 vs 3.2544); improve forgetting, gating and normalisation",
       {"retnet-gated-groupnorm", "gla-data-dependent-gate", "transnormer-output-norm",
        "forgetting-transformer-forget-gate", "forgetting-transformer-pro-block"}},
      {"associative recall is weaker than the reference (0.412 vs 0.530); language modelling loss is "
       "worse (3.3120 vs 3.2544); improve memory capacity and key retrieval; improve forgetting, "
       "gating and normalisation",
       {"deltanet-recall", "gated-deltanet", "based-state-size", "retnet-gated-groupnorm"}},
  };
  const CognitionIndex index(shipped_base());
  for (const Situation& situation : situations) {
    for (const std::string& id : situation.any_of) index_of(index, id);  // no misspelt ids
    std::vector<std::string> top;
    for (const Hit& hit : index.query(situation.text, 5)) top.push_back(index.entry(hit.index).id);
    INFO(situation.text);
    INFO("top five: " << Catch::Detail::stringify(top));
    CHECK(std::find_first_of(top.begin(), top.end(), situation.any_of.begin(), situation.any_of.end()) !=
          top.end());
  }
}

TEST_CASE("results are ordered by score, ties by index, and scores are cosines", "[cognition]") {
  const CognitionIndex index(shipped_base());
  const std::vector<Hit> hits =
      index.query("short convolution before the recurrence", static_cast<int>(index.size()));
  REQUIRE(hits.size() == index.size());
  std::set<size_t> seen;
  for (size_t i = 0; i < hits.size(); ++i) {
    CHECK(seen.insert(hits[i].index).second);
    CHECK(hits[i].score <= 1.0001f);
    CHECK(hits[i].score >= -1.0001f);
    if (i > 0) {
      CHECK(hits[i - 1].score >= hits[i].score);
      if (hits[i - 1].score == hits[i].score) CHECK(hits[i - 1].index < hits[i].index);
    }
  }
}

TEST_CASE("entries tied at the cut-off are taken by lowest index", "[cognition]") {
  // Entries 1..8 are identical, so they tie; the best three must be the lowest indices.
  std::vector<Entry> entries{make_entry("other", "unrelated words about tokenizers")};
  for (int i = 1; i <= 8; ++i) {
    entries.push_back(make_entry("twin-" + std::to_string(i), "sliding window attention hybrid"));
  }
  const CognitionIndex index(std::move(entries));
  const std::vector<Hit> hits = index.query("sliding window attention hybrid", 3);
  REQUIRE(hits.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(hits[i].index == i + 1);
    CHECK(hits[i].score == hits[0].score);
  }
}

TEST_CASE("an added entry becomes retrievable", "[cognition]") {
  CognitionIndex index(shipped_base());
  const size_t before = index.size();
  const std::string insight = "Sparse mixture of memories with tiled xylophone state banks";
  CHECK(index.query(insight, 1)[0].index != before);
  index.add(make_entry("analyst-insight-1", insight));
  REQUIRE(index.size() == before + 1);
  const std::vector<Hit> hits = index.query(insight, 1);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].index == before);
  CHECK(index.entry(hits[0].index).id == "analyst-insight-1");
}

TEST_CASE("k is capped at the index size and k <= 0 returns nothing", "[cognition]") {
  const CognitionIndex index(shipped_base());
  CHECK(index.query("decay", static_cast<int>(index.size()) + 50).size() == index.size());
  CHECK(index.query("decay", 0).empty());
  CHECK(index.query("decay", -3).empty());
  const CognitionIndex empty({});
  CHECK(empty.query("decay", 5).empty());
  CHECK_THROWS_AS(index.entry(index.size()), std::out_of_range);
}

TEST_CASE("a valid file parses to its entry", "[cognition]") {
  const std::vector<Entry> entries = parse_cognition_file(kValidEntry, "good.toml");
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].id == "good-entry");
  CHECK(entries[0].year == 2024);
  CHECK(entries[0].rewrites == std::vector<std::string>{"wrap_norm"});
}

TEST_CASE("malformed cognition files are reported at file and line", "[cognition]") {
  const std::string valid = kValidEntry;
  const auto replaced = [&](const std::string& from, const std::string& to) {
    std::string text = valid;
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  SECTION("TOML syntax error") {
    CHECK_THROWS_WITH(parse_cognition_file(replaced("year = 2024", "year = = 2024"), "bad.toml"),
                      StartsWith("bad.toml:4: invalid TOML"));
  }
  SECTION("missing key, reported at the entry header") {
    CHECK_THROWS_WITH(
        parse_cognition_file(replaced("insight = \"Something true.\"\n", ""), "bad.toml"),
        StartsWith("bad.toml:1: entry 'good-entry' has no 'insight'; add insight = "));
  }
  SECTION("wrong type") {
    CHECK_THROWS_WITH(parse_cognition_file(replaced("2024", "\"2024\""), "bad.toml"),
                      StartsWith("bad.toml:4: 'year' of entry 'good-entry' must be an integer"));
  }
  SECTION("unknown key") {
    CHECK_THROWS_WITH(parse_cognition_file(valid + "url = \"x\"\n", "bad.toml"),
                      StartsWith("bad.toml:9:") && Contains("unknown key 'url'"));
  }
  SECTION("rewrite outside the vocabulary") {
    CHECK_THROWS_WITH(
        parse_cognition_file(replaced("\"wrap_norm\"", "\"wrap_norm\", \"add_moe\""), "bad.toml"),
        StartsWith("bad.toml:8:") && Contains("unknown rewrite 'add_moe'") &&
            Contains("swap_activation"));
  }
  SECTION("duplicate id") {
    CHECK_THROWS_WITH(parse_cognition_file(valid + "\n" + valid, "bad.toml"),
                      StartsWith("bad.toml:10: duplicate id 'good-entry'") &&
                          Contains("first defined at bad.toml:1"));
  }
  SECTION("unknown top-level key") {
    CHECK_THROWS_WITH(parse_cognition_file("version = 2\n" + valid, "bad.toml"),
                      StartsWith("bad.toml:1: unknown top-level key 'version'"));
  }
  SECTION("ids are unique across files") {
    const asiarch::EmbeddedFile first{"a.toml", valid};
    const asiarch::EmbeddedFile second{"b.toml", valid};
    CHECK_THROWS_WITH(parse_cognition_files({first, second}),
                      StartsWith("b.toml:1: duplicate id") && Contains("a.toml:1"));
  }
}
