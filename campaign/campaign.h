#pragma once
// Running, replaying and reading campaigns: the public face of the campaign library.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "remote/remote_workers.h"
#include "scenario/scenario.h"

namespace asiarch {

struct CampaignSummary {
  std::string scenario_name;
  uint64_t seed = 0;
  uint64_t events = 0;
  uint64_t experiments = 0;  // explore results (trained or failed)
  uint64_t target_experiments = 0;  // the scenario's max_experiments
  uint64_t proposals = 0;
  uint64_t rejections = 0;
  std::map<std::string, uint64_t> rejections_by_check;  // engineer's check name -> count
  std::map<std::string, uint64_t> faults;  // injected faults seen: crash, timeout, late, garbage, log_write
  uint32_t breakthroughs = 0;
  double gpu_hours = 0;      // summed over finished jobs
  uint64_t vtime_ns = 0;
  std::string digest;        // hex chain head
  bool finished = false;
  std::string stop_reason;
  // Seconds of wall clock inside each actor's handler (the gpu-slots together as "gpu-slots"),
  // and in the whole loop. A measurement for `asiarch bench sim`: never logged, never stored in
  // the summary, never read by a decision.
  std::map<std::string, double> actor_seconds;
  double loop_seconds = 0;
};

using ProgressFn = std::function<void(const CampaignSummary&)>;

// Runs a campaign into the new run directory `out` (refused if it already holds a run): the
// event log, chain, lineage tables, a copy of the scenario and an empty report/ folder. The
// scenario must be what parse_scenario made of scenario.bytes (std::invalid_argument if not).
// With `listen`, a live campaign's jobs are trained by remote workers instead of this process.
CampaignSummary run_campaign(const Scenario& scenario, uint64_t seed, const std::filesystem::path& out,
                             const ProgressFn& progress = {}, const std::optional<ListenOptions>& listen = std::nullopt);

// Continues a campaign whose process ended before it finished (killed, power lost): the loop
// runs again from the recorded header and seed; the events already logged are checked byte for
// byte rather than written again, and the rest is recorded. In simulation the resumed campaign
// ends with the digest of an uninterrupted one. A finished run is returned as it is. Throws
// storage::StorageError when DIR is not a run or another process is writing it, and
// std::runtime_error when the log does not match what this binary computes.
CampaignSummary resume_campaign(const std::filesystem::path& dir, const ProgressFn& progress = {},
                                const std::optional<ListenOptions>& listen = std::nullopt);

// Runs a campaign without a run directory: with the hash chain kept in memory (the digest is
// the same as a recorded run's), or with no log at all (the benchmark's reference).
enum class LogMode { None, ChainOnly };
CampaignSummary simulate_campaign(const Scenario& scenario, uint64_t seed, LogMode mode = LogMode::ChainOnly);

struct ReplayReport {
  bool identical = false;
  uint64_t events = 0;        // events compared
  std::string digest;         // recomputed chain head
  uint64_t divergence_seq = 0;
  std::string recorded_kind, replayed_kind;
  std::string diff;           // readable, line by line
  std::string note;           // build or version differences worth knowing
};

// Recomputes the campaign in `dir` from its recorded scenario and seed and compares every event
// and chain link with the log.
ReplayReport replay_campaign(const std::filesystem::path& dir);

// `asiarch retrain`: one architecture's logged training jobs of a live run, trained again.
struct RetrainedJob {
  uint64_t job_id = 0;
  std::string fidelity;            // explore or verify
  bool identical = false;          // status, failure, loss, accuracy and peak memory all equal
  std::string recorded, retrained; // the compared metrics, readable
};
struct RetrainReport {
  uint64_t arch_id = 0;
  std::vector<RetrainedJob> jobs;  // in log order
  bool identical() const;
};
// Throws std::invalid_argument when the run is not live or holds no result for the
// architecture, storage::StorageError when DIR is not a run.
RetrainReport retrain_architecture(const std::filesystem::path& dir, uint64_t arch_id,
                                   const std::function<void(const RetrainedJob&)>& on_job = {});

// The run's summary as of its last commit; works while the campaign is still running.
CampaignSummary read_summary(const std::filesystem::path& dir);

}  // namespace asiarch
