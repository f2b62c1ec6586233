#pragma once
// The run header: what a run directory says about how its campaign was started (the scenario's
// bytes, the seed, the binary's version and build flags), and the meta keys of a run store. h_0
// of a run's hash chain is the SHA-256 of the header's canonical bytes.
#include <cstdint>
#include <string>

#include "scenario/scenario.h"
#include "storage/run_store.h"

namespace asiarch {

// The canonical RunHeader of a campaign run by this binary.
std::string run_header_bytes(const Scenario& scenario, uint64_t seed);

struct RecordedRun {
  std::string header_bytes;  // canonical RunHeader
  // Parsed from the header's copy of the scenario; gpu_slots = 0 (one per GPU) is replaced by the
  // count the run's start event recorded, when it has one.
  Scenario scenario;
  uint64_t seed = 0;
  std::string build;         // "version, build flags" of the binary that recorded it
};
// Throws storage::StorageError when the run has no header (it ended before logging anything)
// or the header does not decode.
RecordedRun read_recorded_run(const storage::RunStore& store);

// Meta keys of a run directory.
namespace meta_key {
inline constexpr const char* kHeader = "header";    // canonical RunHeader
inline constexpr const char* kSummary = "summary";  // canonical RunSummary, at each commit
inline constexpr const char* kStarts = "starts";    // be64: processes that ran the campaign (with log-write faults)
inline constexpr const char* kLogWriteFailures = "log_write_failures";  // be64: failed commits of the log, over every start
}  // namespace meta_key

}  // namespace asiarch
