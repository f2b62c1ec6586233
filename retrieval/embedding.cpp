// Hashed bag-of-features embedding. Features are lower-cased words and the character
// trigrams of each word (padded with a space on both sides, so that word starts and ends
// count). Each feature weighs kind_weight * (1 + log tf) and is added with a hash-derived sign
// into one of kEmbeddingDim buckets (signed hashing keeps collisions unbiased). Everything is
// summed in double in ascending hash order and rounded to float once, after normalising, so
// the bytes do not depend on the platform's hash tables or summation order.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "retrieval/cognition_index.h"

namespace asiarch::retrieval {
namespace {

// Function words carry no topic; dropping them keeps "the" and "with" from matching everything.
constexpr std::array<std::string_view, 36> kStopWords = {
    "a",    "an",    "and",  "are",   "as",   "at",   "be",   "by",    "can",
    "does", "each",  "for",  "from",  "has",  "have", "how",  "in",    "into",
    "is",   "it",    "its",  "of",    "on",   "or",   "so",   "than",  "that",
    "the",  "their", "then", "these", "this", "to",   "when", "which", "with"};
static_assert(std::is_sorted(kStopWords.begin(), kStopWords.end()), "binary search needs order");

// Words decide the topic; trigrams only add robustness to inflections ("gate", "gated"), and a
// word yields several of them, so each trigram counts less than a word.
constexpr double kWordWeight = 1.0;
constexpr double kTrigramWeight = 0.5;

// Distinct first bytes keep a word and a trigram with the same letters apart.
constexpr unsigned char kWordTag = 'w';
constexpr unsigned char kTrigramTag = 't';

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

// FNV-1a over the tag and the bytes, then a multiply-xorshift finaliser, because FNV-1a's low
// bits, which pick the bucket, are poorly mixed on their own.
uint64_t feature_hash(unsigned char tag, std::string_view bytes) {
  uint64_t hash = kFnvOffsetBasis;
  const auto mix = [&hash](unsigned char byte) {
    hash ^= byte;
    hash *= kFnvPrime;
  };
  mix(tag);
  for (char c : bytes) mix(static_cast<unsigned char>(c));
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  return hash;
}

// Bytes of 0x80 and above belong to words, so non-ASCII letters in UTF-8 stay inside them;
// only ASCII is lower-cased, so the result does not depend on a locale.
bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

char to_lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_stop_word(std::string_view word) {
  return std::binary_search(kStopWords.begin(), kStopWords.end(), word);
}

struct FeatureCounts {
  std::map<uint64_t, int> words;     // feature hash -> term frequency
  std::map<uint64_t, int> trigrams;  // ordered maps give a fixed summation order
};

FeatureCounts count_features(std::string_view text) {
  FeatureCounts counts;
  std::string word;
  const auto finish_word = [&] {
    if (!word.empty() && !is_stop_word(word)) {
      ++counts.words[feature_hash(kWordTag, word)];
      const std::string padded = " " + word + " ";
      for (size_t start = 0; start + 3 <= padded.size(); ++start) {
        ++counts.trigrams[feature_hash(kTrigramTag, std::string_view(padded).substr(start, 3))];
      }
    }
    word.clear();
  };
  for (char c : text) {
    if (is_word_byte(static_cast<unsigned char>(c))) {
      word += to_lower_ascii(c);
    } else {
      finish_word();
    }
  }
  finish_word();
  return counts;
}

void accumulate(const std::map<uint64_t, int>& counts, double kind_weight,
                std::array<double, kEmbeddingDim>& buckets) {
  for (const auto& [hash, term_frequency] : counts) {
    const double weight = kind_weight * (1.0 + std::log(static_cast<double>(term_frequency)));
    const double sign = (hash >> 63) != 0 ? -1.0 : 1.0;
    buckets[hash % kEmbeddingDim] += sign * weight;
  }
}

}  // namespace

std::vector<float> embed_text(std::string_view text) {
  const FeatureCounts counts = count_features(text);
  std::array<double, kEmbeddingDim> buckets{};
  accumulate(counts.words, kWordWeight, buckets);
  accumulate(counts.trigrams, kTrigramWeight, buckets);

  double squared_norm = 0.0;
  for (double value : buckets) squared_norm += value * value;
  // A text without features (empty, punctuation, stop words only) embeds as the zero vector.
  const double scale = squared_norm > 0.0 ? 1.0 / std::sqrt(squared_norm) : 0.0;

  std::vector<float> embedding(kEmbeddingDim);
  for (int i = 0; i < kEmbeddingDim; ++i) embedding[i] = static_cast<float>(buckets[i] * scale);
  return embedding;
}

}  // namespace asiarch::retrieval
