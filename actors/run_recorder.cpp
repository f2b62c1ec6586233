#include "actors/run_recorder.h"

#include <fstream>

#include "actors/gpu_slot.h"
#include "storage/run_lock.h"

namespace asiarch {
namespace {

uint8_t fidelity_key(msg::Fidelity fidelity) { return fidelity == msg::Fidelity::VERIFY ? 1 : 0; }

// A live campaign's gpu-slots train in this process; a simulated one's need no trainer.
LiveTrainer live_trainer(const Scenario& scenario, uint64_t seed) {
  if (scenario.mode != "live") return {};
  return [scenario, seed](const std::string& dispatch, const std::atomic<bool>& cancelled) {
    return train_live_job(scenario, seed, dispatch, cancelled);
  };
}

}  // namespace

void ChainSink::begin(const std::string& header_bytes) { head_ = storage::sha256(header_bytes); }

bool ChainSink::append(uint64_t seq, const std::string& canonical, msg::Event::Reader) {
  head_ = storage::chain_next(head_, seq, canonical);
  return true;
}

void RunRecorder::begin(const std::string& header_bytes) {
  if (const auto h0 = store_.chain_link(0)) {  // resuming: the chain exists
    if (*h0 != storage::sha256(header_bytes)) {
      throw std::runtime_error("the run's chain does not start from its header (h_0 differs); `asiarch check` shows more");
    }
    head_ = *h0;
    return;
  }
  store_.put_meta(meta_key::kHeader, header_bytes);
  head_ = store_.begin_chain(header_bytes);
  store_.commit();
}

bool RunRecorder::append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) {
  if (seq <= recorded_events_) {
    verify_recorded(seq, canonical);
    return true;
  }
  head_ = store_.append_event(seq, canonical);
  project(event);
  return true;
}

RecordedMatch compare_with_recorded(const storage::RunStore& recorded, uint64_t seq, const std::string& canonical,
                                    const storage::Digest& link) {
  const std::optional<storage::Bytes> stored = recorded.event(seq);
  if (!stored) return RecordedMatch::Missing;
  if (*stored != canonical) return RecordedMatch::EventDiffers;
  return recorded.chain_link(seq) == link ? RecordedMatch::Same : RecordedMatch::LinkDiffers;
}

void RunRecorder::verify_recorded(uint64_t seq, const std::string& canonical) {
  const storage::Digest link = storage::chain_next(head_, seq, canonical);
  if (compare_with_recorded(store_, seq, canonical, link) != RecordedMatch::Same) {
    throw std::runtime_error("the recorded log differs from this binary's campaign at seq " + std::to_string(seq) +
                             ", so it cannot be continued; `asiarch replay` shows the difference");
  }
  head_ = link;
}

// The lineage tables are projections of the log: what was proposed, and what came of it.
void RunRecorder::project(msg::Event::Reader event) {
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
      store_.put_arch(p.getArchId(), msg::canonical_bytes(record.asReader()));
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
      store_.put_result(r.getArchId(), 0, msg::canonical_bytes(record.asReader()));
      break;
    }
    case msg::Payload::TRAIN_RESULT: {
      auto r = payload.getTrainResult();
      auto record = message.initRoot<msg::ResultRecord>();
      record.setArchId(r.getRef().getArchId());
      record.setFidelity(r.getRef().getFidelity());
      record.setOutcome(r.getStatus() == msg::TrainStatus::OK ? msg::Outcome::SCORED : msg::Outcome::FAILED);
      record.setReason(r.getFailure());
      record.setLoss(r.getLoss());
      record.setAccuracy(r.getAccuracy());
      record.setGpuHours(r.getGpuHours());
      record.setVtimeNs(event.getVtimeNs());
      store_.put_result(r.getRef().getArchId(), fidelity_key(r.getRef().getFidelity()), msg::canonical_bytes(record.asReader()));
      break;
    }
    case msg::Payload::POOL_UPDATE: {
      auto u = payload.getPoolUpdate();
      if (u.getOutcome() != msg::Outcome::SCORED) break;
      const uint8_t key = fidelity_key(u.getFidelity());
      auto stored = store_.result(u.getArchId(), key);
      if (!stored) break;
      msg::CanonicalView<msg::ResultRecord> view(*stored);
      message.setRoot(view.root());
      auto record = message.getRoot<msg::ResultRecord>();
      record.setFitness(u.getFitness());
      record.setBreakthrough(u.getBreakthrough());
      store_.put_result(u.getArchId(), key, msg::canonical_bytes(record.asReader()));
      break;
    }
    case msg::Payload::INSIGHT: {
      auto i = payload.getInsight();
      auto record = message.initRoot<msg::InsightRecord>();
      record.setId(i.getInsightId());
      record.setArchId(i.getArchId());
      record.setText(i.getText());
      store_.put_insight(i.getInsightId(), msg::canonical_bytes(record.asReader()));
      break;
    }
    default:
      break;
  }
}

void RunRecorder::checkpoint(const CampaignSummary& summary) {
  capnp::MallocMessageBuilder message;
  auto s = message.initRoot<msg::RunSummary>();
  s.setScenarioName(summary.scenario_name);
  s.setSeed(summary.seed);
  s.setEvents(summary.events);
  s.setExperiments(summary.experiments);
  s.setTargetExperiments(summary.target_experiments);
  s.setBreakthroughs(summary.breakthroughs);
  s.setGpuHours(summary.gpu_hours);
  s.setVtimeNs(summary.vtime_ns);
  s.setDigest(summary.digest);
  s.setFinished(summary.finished);
  s.setStopReason(summary.stop_reason);
  s.setProposals(summary.proposals);
  s.setRejections(summary.rejections);
  auto checks = s.initRejectionsByCheck(static_cast<unsigned>(summary.rejections_by_check.size()));
  unsigned i = 0;
  for (const auto& [check, count] : summary.rejections_by_check) {
    checks[i].setCheck(check);
    checks[i++].setCount(count);
  }
  store_.put_meta(meta_key::kSummary, msg::canonical_bytes(s.asReader()));
  store_.commit();
}

CampaignSummary run_campaign(const Scenario& scenario, uint64_t seed, const std::filesystem::path& out, const ProgressFn& progress) {
  // The run header records the scenario's text: a struct changed after parsing would make the
  // log unreplayable, so it is refused before anything is written.
  if (parse_scenario(scenario.bytes, scenario.file) != scenario) {
    throw std::invalid_argument("the scenario differs from its own text; edit the text and parse it again (the run records the text)");
  }
  std::filesystem::create_directories(out);
  const auto lock = storage::RunLock::acquire(out);
  auto store = storage::RunStore::create(out);
  {
    std::ofstream copy(out / "scenario.toml", std::ios::binary);
    copy << scenario.bytes;
    if (!copy) throw storage::StorageError("cannot write " + (out / "scenario.toml").string() + "; check the disk and permissions");
  }
  std::filesystem::create_directories(out / "report");
  RunRecorder recorder(*store);
  return run_loop(scenario, seed, run_header_bytes(scenario, seed), recorder, progress, live_trainer(scenario, seed));
}

CampaignSummary resume_campaign(const std::filesystem::path& dir, const ProgressFn& progress) {
  if (!std::filesystem::exists(dir / "data.mdb")) {
    throw storage::StorageError("not a run directory: " + dir.string() + " has no data.mdb; pass the directory that `asiarch run` wrote");
  }
  const auto lock = storage::RunLock::acquire(dir);
  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadWrite);
  const RecordedRun run = read_recorded_run(*store);
  bool finished = false;
  try {
    if (const auto summary = store->meta(meta_key::kSummary)) finished = msg::CanonicalView<msg::RunSummary>(*summary).root().getFinished();
  } catch (const kj::Exception&) {
    // A damaged summary does not stop a resume: the log is what counts, and the run rewrites it.
  }
  if (finished) {
    store.reset();
    return read_summary(dir);
  }
  RunRecorder recorder(*store);
  return run_loop(run.scenario, run.seed, run.header_bytes, recorder, progress, live_trainer(run.scenario, run.seed));
}

RecordedRun read_recorded_run(const storage::RunStore& store) {
  const auto header_bytes = store.meta(meta_key::kHeader);
  if (!header_bytes) {
    throw storage::StorageError(store.dir().string() + " has no run header: its campaign ended before it logged anything; start it again with `asiarch run`");
  }
  try {
    msg::CanonicalView<msg::RunHeader> view(*header_bytes);
    auto header = view.root();
    const auto scenario = header.getScenario();
    return RecordedRun{*header_bytes,
                       parse_scenario(std::string(reinterpret_cast<const char*>(scenario.begin()), scenario.size()), header.getScenarioFile().cStr()),
                       header.getSeed(), std::string(header.getVersion().cStr()) + ", " + header.getBuildFlags().cStr()};
  } catch (const kj::Exception& e) {
    throw storage::StorageError(store.dir().string() + ": the run header (meta \"header\") is damaged: " + e.getDescription().cStr() +
                                "; the campaign cannot be recomputed from it");
  }
}

namespace {
class NullSink : public EventSink {
 public:
  void begin(const std::string&) override {}
  bool append(uint64_t, const std::string&, msg::Event::Reader) override { return true; }
  std::string digest_hex() const override { return "(no log)"; }
};
}  // namespace

CampaignSummary simulate_campaign(const Scenario& scenario, uint64_t seed, LogMode mode) {
  if (scenario.mode == "live") throw std::invalid_argument("scenario " + scenario.name + " is live: run it with `asiarch run`, which trains");
  ChainSink chain;
  NullSink none;
  EventSink& sink = mode == LogMode::ChainOnly ? static_cast<EventSink&>(chain) : none;
  return run_loop(scenario, seed, run_header_bytes(scenario, seed), sink, {});
}

CampaignSummary read_summary(const std::filesystem::path& dir) {
  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  auto bytes = store->meta(meta_key::kSummary);
  CampaignSummary summary;
  if (!bytes) {
    // A run in its first moment: the store exists, its first checkpoint is not committed yet.
    summary.stop_reason = "starting: no checkpoint committed yet";
    return summary;
  }
  try {
    msg::CanonicalView<msg::RunSummary> view(*bytes);
    auto s = view.root();
    summary.scenario_name = s.getScenarioName();
    summary.seed = s.getSeed();
    summary.events = s.getEvents();
    summary.experiments = s.getExperiments();
    summary.target_experiments = s.getTargetExperiments();
    summary.breakthroughs = s.getBreakthroughs();
    summary.gpu_hours = s.getGpuHours();
    summary.vtime_ns = s.getVtimeNs();
    summary.digest = s.getDigest();
    summary.finished = s.getFinished();
    summary.stop_reason = s.getStopReason();
    summary.proposals = s.getProposals();
    summary.rejections = s.getRejections();
    for (auto c : s.getRejectionsByCheck()) summary.rejections_by_check[c.getCheck().cStr()] = c.getCount();
  } catch (const kj::Exception& e) {
    throw storage::StorageError(dir.string() + ": the run's summary (meta \"summary\") is damaged: " + e.getDescription().cStr() +
                                "; `asiarch check` and `asiarch replay` still read the log");
  }
  return summary;
}

}  // namespace asiarch
