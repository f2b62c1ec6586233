#pragma once
// Event sinks that record a campaign: into a run directory (the LMDB run store, with the lineage
// tables projected from the events), or into memory (a chain only, for benchmarks and tests).
#include <memory>

#include "actors/coordinator.h"
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
class RunRecorder : public EventSink {
 public:
  explicit RunRecorder(storage::RunStore& store) : store_(store), recorded_events_(store.last_seq()) {}
  void begin(const std::string& header_bytes) override;
  bool append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) override;
  void checkpoint(const CampaignSummary& summary) override;
  std::string digest_hex() const override { return storage::to_hex(head_); }
  std::optional<std::string> recorded_event(uint64_t seq) const override {
    return seq <= recorded_events_ ? store_.event(seq) : std::nullopt;
  }

 private:
  void verify_recorded(uint64_t seq, const std::string& canonical);
  void project(msg::Event::Reader event);
  storage::RunStore& store_;
  uint64_t recorded_events_;  // events the store held before this process began
  storage::Digest head_{};
};

// How a recomputed event and the chain link it makes compare with the recorded log at its seq:
// the one check behind `replay` (which reports differences) and `resume` (which refuses them).
enum class RecordedMatch { Same, Missing, EventDiffers, LinkDiffers };
RecordedMatch compare_with_recorded(const storage::RunStore& recorded, uint64_t seq, const std::string& canonical,
                                    const storage::Digest& link);

// What a run directory says about how its campaign was started.
struct RecordedRun {
  std::string header_bytes;  // canonical RunHeader
  Scenario scenario;         // parsed from the header's copy of the scenario
  uint64_t seed = 0;
  std::string build;         // "version, build flags" of the binary that recorded it
};
// Throws storage::StorageError when the run has no header (it ended before logging anything).
RecordedRun read_recorded_run(const storage::RunStore& store);

// Meta keys of a run directory.
namespace meta_key {
inline constexpr const char* kHeader = "header";    // canonical RunHeader
inline constexpr const char* kSummary = "summary";  // canonical RunSummary, at each checkpoint
}  // namespace meta_key

}  // namespace asiarch
