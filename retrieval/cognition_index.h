#pragma once
// The cognition base: research knowledge from the linear-attention literature, plus insights a
// campaign writes, retrievable by text through a faiss index. Embeddings are computed offline
// and deterministically (retrieval/embedding.cpp), so retrieval is the same on every machine.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace asiarch::retrieval {

struct Entry {
  std::string id;                     // stable id, e.g. "deltanet-recall"
  std::string title;                  // source title
  int year = 0;
  std::string source;                 // e.g. "arXiv:2406.06484"
  std::string insight;                // the design insight, in one or two sentences
  std::string applies_when;           // situations in which it applies
  std::vector<std::string> rewrites;  // mutation operator names it suggests (actors/mutations.h)
};

// The shipped base (retrieval/data/*.toml, compiled in), in file order.
// Throws std::runtime_error naming the data file and line if it is malformed.
const std::vector<Entry>& shipped_base();

// Deterministic text embedding: hashed word unigrams and character trigrams, TF weighted,
// projected to `dim` floats and L2-normalised. Same input, same bytes, on every machine.
constexpr int kEmbeddingDim = 256;
std::vector<float> embed_text(std::string_view text);

struct Hit {
  size_t index;  // into entries()
  float score;   // inner product of unit vectors, in [-1, 1]
};

// A faiss inner-product index over entries' texts (title, insight, applies_when).
class CognitionIndex {
 public:
  explicit CognitionIndex(std::vector<Entry> entries);
  ~CognitionIndex();
  CognitionIndex(const CognitionIndex&) = delete;
  CognitionIndex& operator=(const CognitionIndex&) = delete;

  void add(Entry entry);  // e.g. an insight written by the analyst during the run
  // Top-k by score, best first; ties broken by lower index. k is capped at size().
  std::vector<Hit> query(std::string_view text, int k) const;
  const Entry& entry(size_t index) const;
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asiarch::retrieval
