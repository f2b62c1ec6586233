#pragma once
// Event sinks that record a campaign: into a run directory (the LMDB run store, with the lineage
// tables projected from the events), or into memory (a chain only, for benchmarks and tests).
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "campaign/loop.h"
#include "scenario/run_header.h"
#include "storage/run_store.h"

namespace asiarch {

// Keeps the hash chain of what it is given, and nothing else.
class ChainSink : public EventSink {
 public:
  void begin(const std::string& header_bytes) override;
  bool append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) override;
  std::string digest_hex() const override { return storage::to_hex(head_); }

 protected:
  storage::Digest head_{};
};

// Records into a run store. When resuming, the store already holds the first events of the
// campaign: the recorder checks that each recomputed event is byte for byte the stored one
// (and its chain link the stored link), and records only what comes after them.
//
// A commit that fails (LMDB refuses it, or [faults] log_write_failure injects a failure) loses
// the writes since the last commit: the recorder keeps those events, writes them again and
// retries, with a growing pause, up to log_write_retries times; then it gives up with
// LogWriteError, and what was committed before stays for `asiarch resume`. Injected failures
// are drawn from a stream per commit, named by the seed and the number of times the run was
// started (meta "starts"), so a resumed run meets other failures than the process before it.
class RunRecorder : public EventSink {
 public:
  explicit RunRecorder(storage::RunStore& store, const FaultSpec& faults = {}, uint64_t seed = 0)
      : store_(store), recorded_events_(store.last_seq()), faults_(faults), seed_(seed) {}
  void begin(const std::string& header_bytes) override;
  bool append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) override;
  void commit(const CampaignSummary& summary) override;
  // The loop's summary with the log-write failures of every start of the run counted in.
  CampaignSummary with_log_write_failures(CampaignSummary summary) const;
  std::string digest_hex() const override { return storage::to_hex(head_); }
  std::optional<std::string> recorded_event(uint64_t seq) const override {
    return seq <= recorded_events_ ? store_.event(seq) : std::nullopt;
  }

 private:
  void verify_recorded(uint64_t seq, const std::string& canonical);
  void project(msg::Event::Reader event);
  void commit_with_head();  // the store's transaction, then DIR/head
  void count_starts();
  storage::RunStore& store_;
  uint64_t recorded_events_;  // events the store held before this process began
  storage::Digest head_{};
  FaultSpec faults_;
  uint64_t seed_;
  uint64_t starts_ = 0;       // this process's start of the run: 1, 2, ... (with log-write faults)
  uint64_t commits_ = 0;      // commits this process made
  std::vector<std::string> uncommitted_;  // events appended since the last commit, in seq order
  uint64_t log_write_failures_ = 0;       // over every start of the run
  bool gave_up_ = false;
};

// The canonical RunSummary bytes of meta "summary" (the log-write failures are kept apart), and
// back (throws kj::Exception when the bytes do not decode).
std::string summary_bytes(const CampaignSummary& summary);
CampaignSummary decode_summary(std::string_view bytes);

// The failed commits of the run's log so far (meta "log_write_failures"; 0 when none).
uint64_t stored_log_write_failures(const storage::RunStore& store);

// The recorder gave up committing the log: the campaign stops (exit 1), resumable.
class LogWriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How a recomputed event and the chain link it makes compare with the recorded log at its seq:
// the one check behind `replay` (which reports differences) and `resume` (which refuses them).
enum class RecordedMatch { Same, Missing, EventDiffers, LinkDiffers };
RecordedMatch compare_with_recorded(const storage::RunStore& recorded, uint64_t seq, const std::string& canonical,
                                    const storage::Digest& link);

}  // namespace asiarch
