#include "scenario/run_header.h"

#include <capnp/message.h>
#include <kj/exception.h>

#include "messages/codec.h"

namespace asiarch {

std::string run_header_bytes(const Scenario& scenario, uint64_t seed) {
  capnp::MallocMessageBuilder message;
  auto header = message.initRoot<msg::RunHeader>();
  header.setScenario(kj::arrayPtr(reinterpret_cast<const kj::byte*>(scenario.bytes.data()), scenario.bytes.size()));
  header.setScenarioFile(scenario.file);
  header.setSeed(seed);
  header.setVersion(ASIARCH_VERSION);
  header.setBuildFlags(ASIARCH_BUILD_FLAGS);
  return msg::canonical_bytes(header.asReader());
}

RecordedRun read_recorded_run(const storage::RunStore& store) {
  const auto header_bytes = store.meta(meta_key::kHeader);
  if (!header_bytes) {
    throw storage::StorageError(store.dir().string() + " has no run header: its campaign ended before it logged anything; start it again with `asiarch run SCENARIO --out " +
                                store.dir().string() + "`, which reuses the directory");
  }
  try {
    msg::CanonicalView<msg::RunHeader> view(*header_bytes);
    auto header = view.root();
    const auto text = header.getScenario();
    Scenario scenario = parse_scenario(std::string(reinterpret_cast<const char*>(text.begin()), text.size()), header.getScenarioFile().cStr());
    if (scenario.campaign.gpu_slots == 0) {
      if (const auto first = store.event(1)) {
        msg::CanonicalView<msg::Event> start(*first);
        if (start.root().getPayload().isStart()) scenario.campaign.gpu_slots = start.root().getPayload().getStart().getGpuSlots();
      }
    }
    return RecordedRun{*header_bytes, std::move(scenario), header.getSeed(),
                       std::string(header.getVersion().cStr()) + ", " + header.getBuildFlags().cStr()};
  } catch (const kj::Exception& e) {
    throw storage::StorageError(store.dir().string() + ": the run header (meta \"header\") is damaged: " + e.getDescription().cStr() +
                                "; the campaign cannot be recomputed from it");
  }
}

}  // namespace asiarch
