// asiarch cognition list | query
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "retrieval/cognition_index.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

std::string json_string_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i > 0 ? ", " : "") + json_string(items[i]);
  return out + "]";
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// The fields of an entry, without the braces, so that a query hit can append its score.
std::string entry_json_fields(const retrieval::Entry& entry) {
  return "\"id\": " + json_string(entry.id) + ", \"title\": " + json_string(entry.title) +
         ", \"year\": " + std::to_string(entry.year) + ", \"source\": " + json_string(entry.source) +
         ", \"insight\": " + json_string(entry.insight) + ", \"applies_when\": " + json_string(entry.applies_when) +
         ", \"rewrites\": " + json_string_array(entry.rewrites);
}

// Prints one JSON array, one element per line, so that large outputs stay readable and diffable.
void print_json_array(const std::vector<std::string>& objects) {
  std::cout << "[";
  for (size_t i = 0; i < objects.size(); ++i) std::cout << (i > 0 ? ",\n " : "\n ") << objects[i];
  std::cout << "\n]" << std::endl;
}

int list(bool json) {
  const std::vector<retrieval::Entry>& base = retrieval::shipped_base();
  if (json) {
    std::vector<std::string> objects;
    for (const retrieval::Entry& entry : base) objects.push_back("{" + entry_json_fields(entry) + "}");
    print_json_array(objects);
    return 0;
  }
  std::printf("%-34s %4s  %-16s  %s\n", "id", "year", "source", "title / insight");
  for (const retrieval::Entry& entry : base) {
    std::printf("%-34s %4d  %-16s  %s\n", entry.id.c_str(), entry.year, entry.source.c_str(), entry.title.c_str());
    std::printf("%58s%s\n", "", entry.insight.c_str());
  }
  std::cout << "(" << base.size() << " entries)" << std::endl;
  return 0;
}

int query(const std::string& text, int k, bool json) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    std::cerr << "the query is empty; describe the situation in words, e.g. \"associative recall is weak\"" << std::endl;
    return 2;
  }
  const retrieval::CognitionIndex index(retrieval::shipped_base());
  const std::vector<retrieval::Hit> hits = index.query(text, k);
  if (json) {
    std::vector<std::string> objects;
    for (const retrieval::Hit& hit : hits) {
      char score[32];
      std::snprintf(score, sizeof score, "%.6f", hit.score);
      objects.push_back("{" + entry_json_fields(index.entry(hit.index)) + ", \"score\": " + score + "}");
    }
    print_json_array(objects);
    return 0;
  }
  for (size_t rank = 0; rank < hits.size(); ++rank) {
    const retrieval::Entry& entry = index.entry(hits[rank].index);
    std::printf("%zu. %.3f  %s  %s (%d, %s)\n", rank + 1, hits[rank].score, entry.id.c_str(), entry.title.c_str(),
                entry.year, entry.source.c_str());
    std::printf("   insight:      %s\n   applies when: %s\n   rewrites:     %s\n", entry.insight.c_str(),
                entry.applies_when.c_str(), joined(entry.rewrites).c_str());
  }
  return 0;
}

}  // namespace

void add_cognition_commands(CLI::App& app, int& exit_code) {
  auto* cognition = app.add_subcommand("cognition", "The cognition base: design insights from the linear-attention literature");
  cognition->require_subcommand(1);

  auto list_json = std::make_shared<bool>(false);
  auto* list_cmd = cognition->add_subcommand("list", "List every shipped entry with its source and insight");
  list_cmd->add_flag("--json", *list_json, "One JSON array of entries instead of text");
  list_cmd->callback([list_json, &exit_code] { exit_code = list(*list_json); });

  struct QueryArgs {
    std::string text;
    int k = 5;
    bool json = false;
  };
  auto args = std::make_shared<QueryArgs>();
  auto* query_cmd = cognition->add_subcommand("query", "The entries that best match a situation, best first, as the researcher retrieves them");
  query_cmd->add_option("text", args->text, "The situation, e.g. \"associative recall is weaker than the reference\"")->required();
  query_cmd->add_option("-k", args->k, "How many entries to return")->check(CLI::Range(1, std::numeric_limits<int>::max()))->capture_default_str();
  query_cmd->add_flag("--json", args->json, "One JSON array of hits, each with its score, instead of text");
  query_cmd->callback([args, &exit_code] { exit_code = query(args->text, args->k, args->json); });
}

}  // namespace asiarch::tools
