#include <faiss/IndexFlat.h>

#include <algorithm>
#include <string>

#include "retrieval/cognition_index.h"

namespace asiarch::retrieval {

struct CognitionIndex::Impl {
  std::vector<Entry> entries;
  faiss::IndexFlatIP vectors{kEmbeddingDim};  // row i embeds entries[i]
};

namespace {

std::string indexed_text(const Entry& entry) {
  return entry.title + "\n" + entry.insight + "\n" + entry.applies_when;
}

bool ranks_before(const Hit& a, const Hit& b) {
  return a.score != b.score ? a.score > b.score : a.index < b.index;
}

}  // namespace

CognitionIndex::CognitionIndex(std::vector<Entry> entries) : impl_(std::make_unique<Impl>()) {
  for (Entry& entry : entries) add(std::move(entry));
}

CognitionIndex::~CognitionIndex() = default;

void CognitionIndex::add(Entry entry) {
  const std::vector<float> embedding = embed_text(indexed_text(entry));
  impl_->vectors.add(1, embedding.data());
  impl_->entries.push_back(std::move(entry));
}

std::vector<Hit> CognitionIndex::query(std::string_view text, int k) const {
  const size_t total = size();
  if (k <= 0 || total == 0) return {};
  const size_t wanted = std::min(static_cast<size_t>(k), total);
  const std::vector<float> embedding = embed_text(text);

  // faiss keeps an arbitrary subset of the entries tied at the last place. Widen the search
  // until the last result scores strictly below the wanted-th one (or everything is in), so all
  // entries tied with the wanted-th are present, then rank by (score desc, index asc). A small
  // index is searched whole at once: campaign insights often tie, and each widening would
  // compute every inner product again.
  constexpr size_t kSearchWhole = 1024;
  std::vector<float> scores;
  std::vector<faiss::Index::idx_t> labels;
  for (size_t width = total <= kSearchWhole ? total : wanted;; width = std::min(total, 2 * width)) {
    scores.resize(width);
    labels.resize(width);
    impl_->vectors.search(1, embedding.data(), static_cast<faiss::Index::idx_t>(width),
                          scores.data(), labels.data());
    if (width == total || scores[width - 1] < scores[wanted - 1]) break;
  }

  std::vector<Hit> hits;
  hits.reserve(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    hits.push_back(Hit{static_cast<size_t>(labels[i]), scores[i]});
  }
  std::sort(hits.begin(), hits.end(), ranks_before);
  hits.resize(wanted);
  return hits;
}

const Entry& CognitionIndex::entry(size_t index) const { return impl_->entries.at(index); }

size_t CognitionIndex::size() const { return impl_->entries.size(); }

}  // namespace asiarch::retrieval
