#pragma once
// The lineage tables (archs, results, insights; byte formats in storage/run_store.h) are
// projections of the event log: what was proposed, and what came of it. The recorder projects
// each event into the run store as it logs it; `asiarch check` projects the whole log into memory
// and requires the stored tables to hold exactly that, byte for byte.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "messages/codec.h"
#include "storage/run_store.h"

namespace asiarch {

// Where a projection reads earlier records and writes new ones.
class LineageTables {
 public:
  virtual ~LineageTables() = default;
  virtual std::optional<std::string> result(uint64_t id, uint8_t fidelity) const = 0;
  virtual void put_arch(uint64_t id, const std::string& value) = 0;
  virtual void put_result(uint64_t id, uint8_t fidelity, const std::string& value) = 0;
  virtual void put_insight(uint64_t id, const std::string& value) = 0;
};

// Applies one logged event to the tables.
void project_event(msg::Event::Reader event, LineageTables& tables);

// The run store's tables.
class StoreTables : public LineageTables {
 public:
  explicit StoreTables(storage::RunStore& store) : store_(store) {}
  std::optional<std::string> result(uint64_t id, uint8_t fidelity) const override;
  void put_arch(uint64_t id, const std::string& value) override;
  void put_result(uint64_t id, uint8_t fidelity, const std::string& value) override;
  void put_insight(uint64_t id, const std::string& value) override;

 private:
  storage::RunStore& store_;
};

// Tables in memory, keyed as in the store.
struct ProjectedTables : LineageTables {
  std::map<uint64_t, std::string> archs;
  std::map<std::pair<uint64_t, uint8_t>, std::string> results;
  std::map<uint64_t, std::string> insights;

  std::optional<std::string> result(uint64_t id, uint8_t fidelity) const override;
  void put_arch(uint64_t id, const std::string& value) override;
  void put_result(uint64_t id, uint8_t fidelity, const std::string& value) override;
  void put_insight(uint64_t id, const std::string& value) override;
};

}  // namespace asiarch
