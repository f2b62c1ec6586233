#include "oracles/surrogate_oracle.h"

#include <faiss/IndexFlat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "messages/codec.h"
#include "retrieval/cognition_index.h"
#include "scenario/run_header.h"
#include "training/training.h"

namespace asiarch {
namespace {

constexpr double kDistanceFloor = 0.05;  // weights 1 / (d + floor): a near-twin dominates, none is infinite

struct Record {
  uint64_t arch_id;
  bool ok;
  std::string failure;
  msg::FailureKind failure_kind;
  double loss, accuracy;
};

// The key of a program: its algebraic normal form's text (a canonical form that also sees through
// the identities simulation treats as one function).
std::string key_of(const lang::Program& program) { return lang::print(lang::algebraic_normal_form(program)); }

}  // namespace

std::vector<float> program_embedding(const lang::Program& program) {
  const lang::Program form = lang::algebraic_normal_form(program);
  std::map<std::string, std::string> op_of{{"x", "input"}};
  std::string text;
  for (const auto& s : form.body) {
    op_of[s.name] = s.op;
    text += s.op;
    for (const auto& a : s.attrs) {
      text += " " + s.op + "_" + a.key + "_";
      if (const auto* d = std::get_if<lang::Dim>(&a.value)) {
        text += d->of_model_width ? "d" + std::to_string(d->num) + "_" + std::to_string(d->den) : std::to_string(d->num);
      } else {
        text += std::to_string(std::llround(std::get<double>(a.value) * 1000));
      }
    }
    for (const auto& arg : s.args) text += " " + (lang::is_literal(arg) ? std::string("number") : op_of.at(arg)) + "_to_" + s.op;
    text += "\n";
  }
  return retrieval::embed_text(text);
}

struct SurrogateOracle::Impl {
  struct Fidelity {
    std::vector<Record> records;           // row i of `index`
    std::map<std::string, size_t> exact;   // key -> first record (lowest arch id)
    faiss::IndexFlatL2 index{retrieval::kEmbeddingDim};
  };
  Fidelity fidelities[2];  // by msg::Fidelity
  uint32_t k = 5;
  double noise = 0;
};

SurrogateOracle::SurrogateOracle(const OracleSection& oracle, const std::string& scenario_file) : impl_(std::make_unique<Impl>()) {
  impl_->k = oracle.k;
  impl_->noise = oracle.noise;
  const std::filesystem::path dir = oracle.run;
  auto fail = [&](const std::string& what) {
    throw ScenarioError(scenario_file + ": [oracle] run = \"" + oracle.run + "\" " + what);
  };
  if (!std::filesystem::exists(dir / "data.mdb")) {
    fail("is not a run directory (it has no data.mdb); point it at the directory a live `asiarch run` wrote");
  }
  std::unique_ptr<storage::RunStore> store;
  try {
    store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
    if (read_recorded_run(*store).scenario.mode != Mode::Live) {
      fail("is a simulated run: a surrogate learns from measured results; record a live run first (mode = \"live\")");
    }
  } catch (const storage::StorageError& e) {
    fail(std::string("cannot be read: ") + e.what());
  }
  std::map<uint64_t, std::string> programs;
  store->for_each_arch([&](uint64_t id, std::string_view bytes) {
    programs[id] = msg::CanonicalView<msg::ArchRecord>(bytes).root().getProgram().cStr();
  });
  store->for_each_result([&](uint64_t id, uint8_t fidelity, std::string_view bytes) {
    const auto text = programs.find(id);
    if (text == programs.end() || fidelity > 1) return;
    msg::CanonicalView<msg::ResultRecord> view(bytes);
    auto r = view.root();
    if (r.getOutcome() == msg::Outcome::REJECTED) return;
    lang::Program program;
    try {
      program = lang::parse(text->second, "arch " + std::to_string(id));
    } catch (const lang::ProgramError&) {
      return;  // recorded by a build whose language differed: nothing to learn from
    }
    Impl::Fidelity& f = impl_->fidelities[fidelity];
    const bool ok = r.getOutcome() != msg::Outcome::FAILED && std::isfinite(r.getLoss()) && std::isfinite(r.getAccuracy());
    f.exact.emplace(key_of(program), f.records.size());
    // A run recorded before results carried failure kinds: its failures count as numerical.
    const msg::FailureKind kind = ok ? msg::FailureKind::NONE
                                : r.getFailureKind() == msg::FailureKind::NONE ? msg::FailureKind::NUMERICAL
                                                                               : r.getFailureKind();
    f.records.push_back(Record{id, ok, r.getReason().cStr(), kind, r.getLoss(), r.getAccuracy()});
    const std::vector<float> embedding = program_embedding(program);
    f.index.add(1, embedding.data());
  });
  if (impl_->fidelities[0].records.empty() && impl_->fidelities[1].records.empty()) {
    fail("holds no training result yet; let the live run finish at least one experiment");
  }
}

SurrogateOracle::~SurrogateOracle() = default;

size_t SurrogateOracle::recorded(msg::Fidelity fidelity) const { return impl_->fidelities[fidelity == msg::Fidelity::VERIFY].records.size(); }

OracleOutcome SurrogateOracle::evaluate(const lang::Program& program, const lang::ModelShape&, msg::Fidelity fidelity, bool,
                                        Rng& noise) const {
  const int wanted = fidelity == msg::Fidelity::VERIFY ? 1 : 0;
  const Impl::Fidelity& f = impl_->fidelities[wanted].records.empty() ? impl_->fidelities[1 - wanted] : impl_->fidelities[wanted];
  OracleOutcome out;
  if (auto exact = f.exact.find(key_of(program)); exact != f.exact.end()) {
    const Record& r = f.records[exact->second];
    out.ok = r.ok;
    out.failure = r.ok ? "" : "as recorded for arch " + std::to_string(r.arch_id) + ": " + r.failure;
    out.failure_kind = r.failure_kind;
    out.loss = r.loss;
    out.accuracy = r.accuracy;
    return out;
  }
  // Every row is searched and ties are broken by row, so the neighbours do not depend on how
  // faiss orders equal distances.
  const auto n = static_cast<faiss::Index::idx_t>(f.records.size());
  const std::vector<float> query = program_embedding(program);
  std::vector<float> distances(static_cast<size_t>(n));
  std::vector<faiss::Index::idx_t> rows(static_cast<size_t>(n));
  f.index.search(1, query.data(), n, distances.data(), rows.data());
  std::vector<std::pair<float, faiss::Index::idx_t>> nearest;
  for (faiss::Index::idx_t i = 0; i < n; ++i) {
    if (rows[static_cast<size_t>(i)] >= 0) nearest.emplace_back(distances[static_cast<size_t>(i)], rows[static_cast<size_t>(i)]);
  }
  std::sort(nearest.begin(), nearest.end());
  if (nearest.size() > impl_->k) nearest.resize(impl_->k);
  double weight_ok = 0, weight_failed = 0, loss = 0, accuracy = 0;
  msg::FailureKind nearest_failure = msg::FailureKind::NONE;
  for (const auto& [squared, row] : nearest) {
    const Record& r = f.records[static_cast<size_t>(row)];
    const double weight = 1.0 / (std::sqrt(std::max(0.0f, squared)) + kDistanceFloor);
    if (!r.ok) {
      if (nearest_failure == msg::FailureKind::NONE) nearest_failure = r.failure_kind;
      weight_failed += weight;
      continue;
    }
    weight_ok += weight;
    loss += weight * r.loss;
    accuracy += weight * r.accuracy;
  }
  if (noise.chance(weight_failed / (weight_ok + weight_failed))) {
    out.ok = false;
    out.failure = "training failed (surrogate: like its nearest recorded programs)";
    out.failure_kind = nearest_failure;
    return out;
  }
  out.loss = loss / weight_ok * (1.0 + impl_->noise * noise.normal());
  out.accuracy = std::clamp(accuracy / weight_ok + impl_->noise * noise.normal(), 0.0, 1.0);
  return out;
}

}  // namespace asiarch
