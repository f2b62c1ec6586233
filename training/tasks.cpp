// The training tasks: MQAR generated from a seed, and byte-level language modelling on a text
// file with a fixed held-out split.
#include "training/tasks.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>

#include "common/rng.h"
#include "training/model.h"

namespace asiarch::training {
namespace {


// The MQAR test set is the same for every training seed, so results compare across runs.
constexpr uint64_t kMqarTestSeed = 0x6d71617274657374ULL;
// Zoology's power law for query gaps: p(gap = i) proportional to a * i^(a - 1), i = 1..space.
constexpr double kGapPowerA = 0.01;

torch::Tensor as_tensor(std::vector<int64_t>& values, int64_t rows, int64_t columns) {
  return torch::from_blob(values.data(), {rows, columns}, torch::kInt64).clone();
}

// `count` distinct values of [first, first + range), in draw order (a partial Fisher-Yates).
std::vector<int64_t> distinct(Rng& stream, int64_t first, int64_t range, int64_t count) {
  std::vector<int64_t> pool(static_cast<size_t>(range));
  std::iota(pool.begin(), pool.end(), first);
  for (int64_t i = 0; i < count; ++i) {
    const auto j = i + static_cast<int64_t>(stream.below(static_cast<uint64_t>(range - i)));
    std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(j)]);
  }
  pool.resize(static_cast<size_t>(count));
  return pool;
}

// `count` distinct indices of [0, weights.size()) drawn one after another with probability
// proportional to the weights of those not drawn yet (numpy's choice without replacement).
std::vector<int64_t> weighted_distinct(Rng& stream, std::vector<double> weights, int64_t count) {
  std::vector<int64_t> drawn;
  for (int64_t n = 0; n < count; ++n) {
    double r = stream.uniform() * std::accumulate(weights.begin(), weights.end(), 0.0);
    size_t pick = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (weights[i] == 0.0) continue;
      pick = i;  // the last one left, should rounding carry r past the end
      if (r < weights[i]) break;
      r -= weights[i];
    }
    drawn.push_back(static_cast<int64_t>(pick));
    weights[pick] = 0.0;
  }
  return drawn;
}

void validate(const MqarTask& task, int64_t kv_pairs) {
  if (kv_pairs < 1 || task.seq_len % 2 != 0 || 4 * kv_pairs > task.seq_len) {
    throw TaskError("mqar: seq_len must be even and at least 4 * kv_pairs (seq_len " + std::to_string(task.seq_len) +
                    ", kv_pairs " + std::to_string(kv_pairs) + ")");
  }
  if (std::find(task.kv_pairs.begin(), task.kv_pairs.end(), kv_pairs) == task.kv_pairs.end()) {
    throw TaskError("mqar: kv_pairs " + std::to_string(kv_pairs) + " is not a rung of the task's ladder");
  }
  if (kv_pairs >= task.vocab / 2) {
    throw TaskError("mqar: kv_pairs " + std::to_string(kv_pairs) + " needs more distinct keys than vocab " +
                    std::to_string(task.vocab) + " has (keys come from [1, vocab/2)); raise vocab");
  }
}

void validate(const MqarTask& task) {
  if (task.kv_pairs.empty()) throw TaskError("mqar: the ladder kv_pairs needs at least one rung");
  for (int64_t kv : task.kv_pairs) validate(task, kv);
  if (task.test_examples < 1) throw TaskError("mqar: test_examples must be positive");
}

// Each rung has a stream of its own, so adding a rung changes no other rung's examples.
std::string rung_purpose(const char* purpose, int64_t kv_pairs) { return std::string(purpose) + " kv" + std::to_string(kv_pairs); }

class MqarData final : public TaskData {
 public:
  MqarData(const MqarTask& task, uint64_t seed) : task_(task), seed_(seed) { validate(task); }
  int64_t vocab() const override { return task_.vocab; }

  // Steps go through the rungs in turn (their sequences differ in length).
  Batch train_batch(int64_t step, int64_t batch) const override {
    const int64_t kv = task_.kv_pairs[static_cast<size_t>(step % static_cast<int64_t>(task_.kv_pairs.size()))];
    return mqar_examples(task_, kv, seed_, rung_purpose("mqar train", kv), static_cast<uint64_t>(step), batch);
  }

  std::vector<Batch> eval_batches(int64_t batch) const override {
    std::vector<Batch> batches;
    for (size_t r = 0; r < task_.kv_pairs.size(); ++r) {
      const int64_t kv = task_.kv_pairs[r];
      const Batch all = mqar_examples(task_, kv, kMqarTestSeed, rung_purpose("mqar test", kv), 0, task_.test_examples);
      for (int64_t first = 0; first < task_.test_examples; first += batch) {
        const int64_t rows = std::min(batch, task_.test_examples - first);
        batches.push_back({all.inputs.narrow(0, first, rows), all.targets.narrow(0, first, rows), static_cast<int64_t>(r)});
      }
    }
    return batches;
  }
  int64_t eval_groups() const override { return static_cast<int64_t>(task_.kv_pairs.size()); }

 private:
  MqarTask task_;
  uint64_t seed_;
};

class LmData final : public TaskData {
 public:
  LmData(const LmTask& task, uint64_t seed)
      : task_(task), seed_(seed), text_(corpus_bytes(task.corpus.empty() ? kDefaultCorpus : task.corpus)) {
    const auto size = static_cast<int64_t>(text_->size());
    if (task.seq_len < 1 || task.eval_bytes <= task.seq_len) {
      throw TaskError("lm: eval_bytes (" + std::to_string(task.eval_bytes) + ") must exceed seq_len (" + std::to_string(task.seq_len) + ")");
    }
    if (size < task.eval_bytes + 2 * (task.seq_len + 1)) {
      throw TaskError("lm: the corpus has " + std::to_string(size) + " bytes, too few for " + std::to_string(task.eval_bytes) +
                      " held-out bytes and training windows of " + std::to_string(task.seq_len + 1));
    }
    train_end_ = size - task.eval_bytes;
  }
  int64_t vocab() const override { return kByteVocab; }

  Batch train_batch(int64_t step, int64_t batch) const override {
    Rng stream(seed_, "lm train", static_cast<uint64_t>(step));
    std::vector<int64_t> starts;
    for (int64_t row = 0; row < batch; ++row) {
      starts.push_back(static_cast<int64_t>(stream.below(static_cast<uint64_t>(train_end_ - task_.seq_len))));
    }
    return windows(starts);
  }

  // The held-out bytes cut into consecutive windows: every byte after the first is predicted once.
  std::vector<Batch> eval_batches(int64_t batch) const override {
    const int64_t count = (task_.eval_bytes - 1) / task_.seq_len;
    std::vector<Batch> batches;
    for (int64_t first = 0; first < count; first += batch) {
      std::vector<int64_t> starts;
      for (int64_t w = first; w < std::min(count, first + batch); ++w) starts.push_back(train_end_ + w * task_.seq_len);
      batches.push_back(windows(starts));
    }
    return batches;
  }

 private:
  Batch windows(const std::vector<int64_t>& starts) const {
    const int64_t length = task_.seq_len;
    std::vector<int64_t> inputs, targets;
    for (int64_t start : starts) {
      for (int64_t i = 0; i < length; ++i) {
        inputs.push_back(static_cast<unsigned char>((*text_)[static_cast<size_t>(start + i)]));
        targets.push_back(static_cast<unsigned char>((*text_)[static_cast<size_t>(start + i + 1)]));
      }
    }
    const auto rows = static_cast<int64_t>(starts.size());
    return {as_tensor(inputs, rows, length), as_tensor(targets, rows, length)};
  }

  LmTask task_;
  uint64_t seed_;
  std::shared_ptr<const std::string> text_;
  int64_t train_end_ = 0;
};

std::string read_corpus(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw TaskError("corpus '" + path + "' not found: install Debian's dict-gcide (apt-get install dict-gcide) for the default " +
                    "corpus, or pass a text file as the corpus (--corpus FILE)");
  }
  gzFile file = gzopen(path.c_str(), "rb");  // also reads plain files as they are
  if (file == nullptr) throw TaskError("corpus '" + path + "' cannot be opened");
  gzbuffer(file, 1 << 20);
  std::string text;
  std::vector<char> chunk(1 << 20);
  int read = 0;
  while ((read = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) text.append(chunk.data(), static_cast<size_t>(read));
  int error = Z_OK;
  const std::string message = read < 0 ? gzerror(file, &error) : "";
  gzclose(file);
  if (read < 0) throw TaskError("corpus '" + path + "' cannot be read: " + message);
  return text;
}

}  // namespace

Batch mqar_examples(const MqarTask& task, int64_t kv_pairs, uint64_t seed, const std::string& purpose, uint64_t index,
                    int64_t examples) {
  validate(task, kv_pairs);
  Rng stream(seed, purpose, index);
  const int64_t length = mqar_rung_length(task, kv_pairs), pairs = kv_pairs, key_range = task.vocab / 2;
  const int64_t space = (length - 2 * pairs) / 2;
  std::vector<double> gap_weights(static_cast<size_t>(space));
  for (int64_t i = 0; i < space; ++i) gap_weights[static_cast<size_t>(i)] = kGapPowerA * std::pow(static_cast<double>(i + 1), kGapPowerA - 1.0);

  std::vector<int64_t> inputs(static_cast<size_t>(examples * length), 0);
  std::vector<int64_t> targets(static_cast<size_t>(examples * length), kIgnored);
  for (int64_t e = 0; e < examples; ++e) {
    int64_t* in = inputs.data() + e * length;
    int64_t* target = targets.data() + e * length;
    const auto keys = distinct(stream, 1, key_range - 1, pairs);
    const auto values = distinct(stream, key_range, task.vocab - key_range, pairs);
    for (int64_t p = 0; p < pairs; ++p) {
      in[2 * p] = keys[static_cast<size_t>(p)];
      in[2 * p + 1] = values[static_cast<size_t>(p)];
    }
    const auto gaps = weighted_distinct(stream, gap_weights, pairs);
    for (int64_t p = 0; p < pairs; ++p) {
      const int64_t at = 2 * pairs + 2 * gaps[static_cast<size_t>(p)];
      in[at] = keys[static_cast<size_t>(p)];
      target[at] = values[static_cast<size_t>(p)];
    }
    // Keys and values are never 0, so 0 marks the positions left: random tokens (Zoology's
    // random_non_queries), but never one of this sequence's keys. Zoology's vocabulary of 8,192
    // makes such a collision rare; in a small vocabulary a filler equal to a key that is queried
    // later would bind that key to a second, random token, and the task would measure how a
    // mixer resolves the conflict rather than how many pairs its state holds.
    std::vector<bool> is_key(static_cast<size_t>(task.vocab), false);
    for (int64_t key : keys) is_key[static_cast<size_t>(key)] = true;
    for (int64_t t = 0; t < length; ++t) {
      if (in[t] != 0) continue;
      do {
        in[t] = static_cast<int64_t>(stream.below(static_cast<uint64_t>(task.vocab)));
      } while (is_key[static_cast<size_t>(in[t])]);
    }
  }
  return {as_tensor(inputs, examples, length), as_tensor(targets, examples, length)};
}

int64_t mqar_rung_length(const MqarTask& task, int64_t kv_pairs) {
  const int64_t largest = *std::max_element(task.kv_pairs.begin(), task.kv_pairs.end());
  return task.seq_len * kv_pairs / largest / 2 * 2;
}

std::shared_ptr<const std::string> corpus_bytes(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const std::string>> loaded;
  std::lock_guard lock(mutex);
  auto& slot = loaded[path];
  if (!slot) slot = std::make_shared<const std::string>(read_corpus(path));
  return slot;
}

std::unique_ptr<TaskData> make_task(const TrainConfig& config) {
  switch (config.task) {
    case Task::Mqar: return std::make_unique<MqarData>(config.mqar, config.seed);
    case Task::Lm: return std::make_unique<LmData>(config.lm, config.seed);
  }
  throw TaskError("unknown task");
}

}  // namespace asiarch::training
