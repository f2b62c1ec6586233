#pragma once
// Lineage queries over a run directory (storage/run_store.h): every architecture with its parent
// links and what came of it at each fidelity (the archs and results tables), and the analyst's
// judgments in the order the campaign made them (the events table). Read-only: they work on a
// store opened ReadOnly while another process still writes the campaign, and see its last commit.
//
// Unlike the run store, which keeps bytes, these queries decode the Cap'n Proto records
// (messages/asiarch.capnp), so they are a library of their own (asiarch_lineage).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "messages/asiarch.capnp.h"
#include "storage/run_store.h"

namespace asiarch::storage {


// One training of an architecture at a fidelity (a seed).
struct SeedRun {
  uint32_t replicate = 0;  // verify: below the scenario's seeds selection, above replication
  bool ok = false;
  double loss = 0, accuracy = 0;
};

// One stage of the breakthrough rule (msg::EvidenceTest): the candidate's seeds against the best
// baselines'.
struct EvidenceStage {
  uint32_t seeds = 0;
  double loss_mean = 0, loss_sd = 0, accuracy_mean = 0, accuracy_sd = 0;
  double baseline_loss_mean = 0, baseline_accuracy_mean = 0;
  double loss_low = 0, loss_high = 0;          // 95% interval of the loss difference
  double accuracy_low = 0, accuracy_high = 0;  // and of the accuracy difference
  double p_loss = 1, level = 0, recall_bound = 0;
  bool passed = false;
};

// How a verified architecture was judged (msg::Evidence).
struct Evidence {
  // "" (a baseline, or too few seeds), "not better", "not confirmed" or "confirmed".
  std::string verdict;
  uint64_t loss_baseline = 0, recall_baseline = 0, verified = 0;
  uint32_t seeds = 0;  // selection seeds; replicates are numbered from here
  EvidenceStage screening;
  std::optional<EvidenceStage> replication;
};

// What came of one architecture at one fidelity (a ResultRecord, with its judgment).
struct ArchOutcome {
  // "scored" or "failed" (judged by the analyst), "rejected" (by the engineer), "ablation" (an
  // ablation job's trained result, never judged as a candidate), or "pending":
  // trained, not judged yet (waiting for the reference, or still in flight when the campaign
  // stopped).
  std::string outcome;
  std::string reason;  // the failed check or training failure
  double loss = 0, accuracy = 0, gpu_hours = 0, fitness = 0;
  double tokens_per_second = 0;
  bool breakthrough = false;
  uint64_t vtime_ns = 0;
  std::vector<SeedRun> seeds;       // every training, in the order results came in
  std::optional<Evidence> evidence;  // verify, once judged
  bool scored() const { return outcome == "scored"; }
};

struct ArchEntry {
  uint64_t id = 0;
  std::vector<uint64_t> parent_ids;  // empty for the programs the campaign started from
  std::string program;               // text form of the architecture language
  std::string operator_name;         // the mutation that made it, or "baseline"
  std::string motivation;
  uint64_t vtime_ns = 0;             // when it was proposed
  std::optional<ArchOutcome> explore, verify;

  bool baseline() const { return operator_name == "baseline"; }
  // The engineer's architectures: an ablation of a breakthrough ("ablation:COMPONENT") and a
  // repair of a failed proposal ("repair:RULE", linked to it as its parent).
  bool ablation() const { return operator_name.rfind("ablation:", 0) == 0; }
  bool repair() const { return operator_name.rfind("repair:", 0) == 0; }
  bool verified() const { return verify && verify->scored(); }
  // The outcome at the highest fidelity it was scored at (verify when verified()), if any.
  const ArchOutcome* best_scored() const;
};

// One training result as the analyst judged it, with the campaign's totals at that moment.
struct Judgment {
  uint64_t vtime_ns = 0;
  uint64_t arch_id = 0;
  msg::Fidelity fidelity = msg::Fidelity::EXPLORE;
  bool scored = false;  // false: training failed
  double fitness = 0, loss = 0, accuracy = 0;
  double tokens_per_second = 0;  // measured (or simulated) throughput of its training job
  bool breakthrough = false;
  bool baseline = false;
  // Totals over the results delivered so far: GPU hours of finished jobs, explore results
  // (experiments) and breakthroughs judged.
  double gpu_hours = 0;
  uint64_t experiments = 0;
  uint32_t breakthroughs = 0;
};

// The judgments (scored and failed pool updates) in delivery order, which is (virtual time,
// seq) order, up to the campaign's stop: results still in flight when it stopped are left out.
// GPU hours and experiments count delivered training results, as the run's summary does;
// breakthroughs count the analyst's judgments, so a breakthrough judged at the very instant of
// the stop is counted here although the researcher never received it.
std::vector<Judgment> read_judgments(const RunStore& store);

class Lineage {
 public:
  // Reads the archs and results tables and the judgments (read_judgments). Throws StorageError
  // when a record does not decode.
  explicit Lineage(const RunStore& store);

  const std::map<uint64_t, ArchEntry>& archs() const { return archs_; }
  const ArchEntry* find(uint64_t id) const;

  // `id` and every architecture it descends from, oldest first. Ids grow in the order of
  // proposal and a parent is proposed before its child, so ascending ids are a topological
  // order, also when an architecture has several parents. Empty when `id` is unknown.
  std::vector<uint64_t> ancestry(uint64_t id) const;

  // Scored architectures, best first: the verified ones by verify fitness (breakthroughs are
  // among them), then the ones scored only at explore by explore fitness (the researcher's pool
  // order). Verify fitness is measured against the reference's verify result, explore fitness
  // against its explore result, so the two are not ranked against each other.
  std::vector<const ArchEntry*> ranking() const;

  // The explore fitness change from the fittest scored parent to `id`, when both are scored.
  std::optional<double> fitness_change(uint64_t id) const;

  // The judgments it was read with (read_judgments).
  const std::vector<Judgment>& judgments() const { return judgments_; }

 private:
  std::map<uint64_t, ArchEntry> archs_;
  std::vector<Judgment> judgments_;
};

}  // namespace asiarch::storage
