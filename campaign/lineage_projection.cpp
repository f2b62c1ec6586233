// The lineage tables as projections of the event log: see lineage_projection.h.
#include "campaign/lineage_projection.h"

#include <tuple>
#include <vector>

#include "messages/codec.h"

namespace asiarch {
namespace {

uint8_t fidelity_key(msg::Fidelity fidelity) { return fidelity == msg::Fidelity::VERIFY ? 1 : 0; }

}  // namespace

void project_event(msg::Event::Reader event, LineageTables& tables) {
  auto payload = event.getPayload();
  capnp::MallocMessageBuilder message;
  switch (payload.which()) {
    case msg::Payload::PROPOSAL: {
      auto p = payload.getProposal();
      auto record = message.initRoot<msg::ArchRecord>();
      record.setId(p.getArchId());
      record.setParentIds(p.getParentIds());
      record.setProgram(p.getProgram());
      record.setOperator(p.getOperator());
      record.setMotivation(p.getMotivation());
      record.setVtimeNs(event.getVtimeNs());
      tables.put_arch(p.getArchId(), msg::canonical_bytes(record.asReader()));
      break;
    }
    case msg::Payload::REJECTION: {
      auto r = payload.getRejection();
      auto record = message.initRoot<msg::ResultRecord>();
      record.setArchId(r.getArchId());
      record.setFidelity(msg::Fidelity::EXPLORE);
      record.setOutcome(msg::Outcome::REJECTED);
      record.setReason(std::string(r.getCheck().cStr()) + ": " + r.getReason().cStr());
      record.setVtimeNs(event.getVtimeNs());
      tables.put_result(r.getArchId(), 0, msg::canonical_bytes(record.asReader()));
      break;
    }
    case msg::Payload::TRAIN_RESULT: {
      // One record per architecture and fidelity: each seed's result is appended to its list;
      // the first failure's reason stays (the analyst's judgment below sets the means).
      auto r = payload.getTrainResult();
      const uint8_t key = fidelity_key(r.getRef().getFidelity());
      const bool ok = r.getStatus() == msg::TrainStatus::OK;
      std::vector<std::tuple<uint32_t, bool, double, double>> seeds;
      double gpu_hours = 0;
      bool failed_before = false;
      std::string reason;
      msg::FailureKind failure_kind = r.getFailureKind();
      if (auto stored = tables.result(r.getRef().getArchId(), key)) {
        msg::CanonicalView<msg::ResultRecord> view(*stored);
        for (auto seed : view.root().getSeeds()) seeds.emplace_back(seed.getReplicate(), seed.getOk(), seed.getLoss(), seed.getAccuracy());
        gpu_hours = view.root().getGpuHours();
        failed_before = view.root().getOutcome() == msg::Outcome::FAILED;
        reason = view.root().getReason();
        if (failed_before) failure_kind = view.root().getFailureKind();
      }
      seeds.emplace_back(r.getRef().getReplicate(), ok, r.getLoss(), r.getAccuracy());
      auto record = message.initRoot<msg::ResultRecord>();
      record.setArchId(r.getRef().getArchId());
      record.setFidelity(r.getRef().getFidelity());
      record.setOutcome(ok && !failed_before ? msg::Outcome::SCORED : msg::Outcome::FAILED);
      record.setReason(failed_before ? reason : std::string(r.getFailure().cStr()));
      record.setFailureKind(failure_kind);
      record.setLoss(r.getLoss());
      record.setAccuracy(r.getAccuracy());
      record.setGpuHours(gpu_hours + r.getGpuHours());
      record.setVtimeNs(event.getVtimeNs());
      auto list = record.initSeeds(static_cast<unsigned>(seeds.size()));
      for (unsigned i = 0; i < seeds.size(); ++i) {
        const auto& [replicate, seed_ok, loss, accuracy] = seeds[i];
        list[i].setReplicate(replicate);
        list[i].setOk(seed_ok);
        list[i].setLoss(loss);
        list[i].setAccuracy(accuracy);
      }
      tables.put_result(r.getRef().getArchId(), key, msg::canonical_bytes(record.asReader()));
      break;
    }
    case msg::Payload::POOL_UPDATE: {
      auto u = payload.getPoolUpdate();
      if (u.getReusedFrom() != 0) {  // a duplicate: its result is reused, it has no training of its own
        auto record = message.initRoot<msg::ResultRecord>();
        record.setArchId(u.getArchId());
        record.setFidelity(u.getFidelity());
        record.setOutcome(u.getOutcome());
        record.setReason("same function as arch " + std::to_string(u.getReusedFrom()) + ": its result is reused");
        record.setLoss(u.getLoss());
        record.setAccuracy(u.getAccuracy());
        record.setFitness(u.getFitness());
        record.setVtimeNs(event.getVtimeNs());
        tables.put_result(u.getArchId(), fidelity_key(u.getFidelity()), msg::canonical_bytes(record.asReader()));
        break;
      }
      if (u.getOutcome() != msg::Outcome::SCORED) break;
      const uint8_t key = fidelity_key(u.getFidelity());
      auto stored = tables.result(u.getArchId(), key);
      if (!stored) break;
      msg::CanonicalView<msg::ResultRecord> view(*stored);
      message.setRoot(view.root());
      auto record = message.getRoot<msg::ResultRecord>();
      record.setOutcome(msg::Outcome::SCORED);
      record.setFitness(u.getFitness());
      record.setBreakthrough(u.getBreakthrough());
      record.setLoss(u.getLoss());
      record.setAccuracy(u.getAccuracy());
      if (u.hasEvidence()) record.setEvidence(u.getEvidence());
      tables.put_result(u.getArchId(), key, msg::canonical_bytes(record.asReader()));
      break;
    }
    case msg::Payload::INSIGHT: {
      auto i = payload.getInsight();
      auto record = message.initRoot<msg::InsightRecord>();
      record.setId(i.getInsightId());
      record.setArchId(i.getArchId());
      record.setText(i.getText());
      tables.put_insight(i.getInsightId(), msg::canonical_bytes(record.asReader()));
      break;
    }
    default:
      break;
  }
}

std::optional<std::string> StoreTables::result(uint64_t id, uint8_t fidelity) const { return store_.result(id, fidelity); }
void StoreTables::put_arch(uint64_t id, const std::string& value) { store_.put_arch(id, value); }
void StoreTables::put_result(uint64_t id, uint8_t fidelity, const std::string& value) { store_.put_result(id, fidelity, value); }
void StoreTables::put_insight(uint64_t id, const std::string& value) { store_.put_insight(id, value); }

std::optional<std::string> ProjectedTables::result(uint64_t id, uint8_t fidelity) const {
  const auto found = results.find({id, fidelity});
  if (found == results.end()) return std::nullopt;
  return found->second;
}
void ProjectedTables::put_arch(uint64_t id, const std::string& value) { archs[id] = value; }
void ProjectedTables::put_result(uint64_t id, uint8_t fidelity, const std::string& value) { results[{id, fidelity}] = value; }
void ProjectedTables::put_insight(uint64_t id, const std::string& value) { insights[id] = value; }

}  // namespace asiarch
