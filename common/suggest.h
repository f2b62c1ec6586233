#pragma once
// "Did you mean ...?": the candidate closest to a misspelt word, for error messages.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace asiarch {

// Levenshtein distance: insertions, deletions and substitutions each cost one.
inline size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word`, or "" if none is close enough to suggest: at most two
// edits, and fewer edits than the word has letters. The first of equally close ones wins.
inline std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  size_t best_distance = std::min<size_t>(3, word.size());
  std::string best;
  for (const auto& candidate : candidates) {
    const size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace asiarch
