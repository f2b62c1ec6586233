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

class RunRecorder : public EventSink {
 public:
  explicit RunRecorder(storage::RunStore& store) : store_(store) {}
  void begin(const std::string& header_bytes) override;
  bool append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) override;
  void checkpoint(const CampaignSummary& summary) override;
  std::string digest_hex() const override { return storage::to_hex(store_.head()); }

 private:
  void project(msg::Event::Reader event);
  storage::RunStore& store_;
};

// Meta keys of a run directory.
namespace meta_key {
inline constexpr const char* kHeader = "header";    // canonical RunHeader
inline constexpr const char* kSummary = "summary";  // canonical RunSummary, at each checkpoint
}  // namespace meta_key

}  // namespace asiarch
