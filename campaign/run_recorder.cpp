#include "campaign/run_recorder.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <map>
#include <tuple>
#include <thread>

#include "actors/gpu_slot.h"
#include "campaign/lineage_projection.h"
#include "common/rng.h"
#include "llm/llm_client.h"
#include "remote/remote_workers.h"
#include "storage/committed_head.h"
#include "storage/run_lock.h"

namespace asiarch {
namespace {

// A live campaign's gpu-slots train in this process, or on remote workers when it listens for
// them; a simulated one's need no trainer.
LiveTrainer live_trainer(const Scenario& scenario, uint64_t seed, const std::filesystem::path& dir,
                         const std::optional<ListenOptions>& listen) {
  if (listen && scenario.mode != Mode::Live) {
    throw std::invalid_argument("scenario " + scenario.name + " is simulated: its gpu-slots need no workers; run it without --listen");
  }
  if (scenario.mode != Mode::Live) return {};
  if (listen) return remote_trainer(*listen, worker_secret(*listen, dir), scenario, seed);
  // Jobs trained here keep their weights in the run directory.
  return [settings = LiveJobSettings::of(scenario), seed, dir](const std::string& dispatch, const std::atomic<bool>& cancelled) {
    return train_live_job(settings, seed, dispatch, cancelled, dir);
  };
}

// A live campaign that trains here on a GPU needs one: refused (std::invalid_argument, exit 2)
// before anything is written. Remote workers check their own device.
void require_device(const Scenario& scenario, const std::optional<ListenOptions>& listen) {
  if (scenario.mode != Mode::Live || listen || scenario.live.device == "cpu") return;
  if (const std::string problem = training::device_info(scenario.live.device).problem; !problem.empty()) {
    throw std::invalid_argument(scenario.file + ": [live] device = \"" + scenario.live.device + "\": " + problem);
  }
}

// gpu_slots = 0: one slot per GPU this process sees. The start event records the count, and
// read_recorded_run takes it from there for replay and resume.
Scenario with_slot_count(Scenario scenario, const std::optional<ListenOptions>& listen) {
  if (scenario.campaign.gpu_slots != 0) return scenario;
  if (listen) {
    throw std::invalid_argument(scenario.file +
                                ": gpu_slots = 0 counts this machine's GPUs, but remote workers train this campaign: set gpu_slots to their slots");
  }
  scenario.campaign.gpu_slots = static_cast<uint32_t>(training::device_info(scenario.live.device).cuda_devices);
  return scenario;
}

// A campaign that asks a language model asks it over HTTP ([llm]); a replay passes no client.
LlmClient llm_client(const Scenario& scenario) { return scenario.uses_llm() ? http_llm_client(scenario.llm) : LlmClient{}; }

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
    if (const auto why = storage::rolled_back(store_, storage::read_committed_head(store_.dir()))) {
      throw storage::StorageError(*why + "; it is not continued");
    }
    head_ = *h0;
    log_write_failures_ = stored_log_write_failures(store_);
    count_starts();
    return;
  }
  store_.put_meta(meta_key::kHeader, header_bytes);
  head_ = store_.begin_chain(header_bytes);
  count_starts();
}

// Committed before any failure is injected, so that each start draws its own failures.
void RunRecorder::count_starts() {
  if (faults_.log_write_failure > 0) {
    const auto stored = store_.meta(meta_key::kStarts);
    starts_ = (stored && stored->size() == 8 ? storage::from_be64(*stored) : 0) + 1;
    store_.put_meta(meta_key::kStarts, storage::be64(starts_));
  }
  commit_with_head();
}

bool RunRecorder::append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) {
  if (seq <= recorded_events_) {
    verify_recorded(seq, canonical);
    return true;
  }
  head_ = store_.append_event(seq, canonical);
  project(event);
  uncommitted_.push_back(canonical);
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

void RunRecorder::project(msg::Event::Reader event) {
  StoreTables tables(store_);
  project_event(event, tables);
}

uint64_t stored_log_write_failures(const storage::RunStore& store) {
  const auto stored = store.meta(meta_key::kLogWriteFailures);
  return stored && stored->size() == 8 ? storage::from_be64(*stored) : 0;
}

CampaignSummary RunRecorder::with_log_write_failures(CampaignSummary summary) const {
  if (log_write_failures_ > 0) summary.faults["log_write"] = log_write_failures_;
  return summary;
}

std::string summary_bytes(const CampaignSummary& summary) {
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
  const std::map<std::string, uint64_t>& faults = summary.faults;  // the log-write count has a key of its own
  auto counts = s.initFaults(static_cast<unsigned>(faults.size()));
  i = 0;
  for (const auto& [kind, count] : faults) {
    counts[i].setKind(kind);
    counts[i++].setCount(count);
  }
  return msg::canonical_bytes(s.asReader());
}

// Every commit is followed by DIR/head. The file may lag the store (a kill between the two),
// never lead it: a failed write of it is only a warning, since the commit stands.
void RunRecorder::commit_with_head() {
  store_.commit();
  try {
    storage::write_committed_head(store_.dir(), storage::committed_head(store_));
  } catch (const storage::StorageError& e) {
    spdlog::warn("{}", e.what());
  }
}

void RunRecorder::commit(const CampaignSummary& summary) {
  if (gave_up_) return;  // the store holds what was committed; nothing more is written
  Rng injected(seed_, "fault/log-write/" + std::to_string(starts_) + "/" + std::to_string(++commits_));
  for (uint32_t attempt = 0;; ++attempt) {
    try {
      // A resume re-runs the recorded events before it writes new ones: until it passes them, the
      // stored summary (of the killed process) says more than this one.
      if (summary.events >= recorded_events_ || !summary.stop_reason.empty()) store_.put_meta(meta_key::kSummary, summary_bytes(summary));
      if (log_write_failures_ > 0) store_.put_meta(meta_key::kLogWriteFailures, storage::be64(log_write_failures_));
      if (injected.chance(faults_.log_write_failure)) store_.fail_next_commit("an injected write failure ([faults] log_write_failure)");
      commit_with_head();
      uncommitted_.clear();
      return;
    } catch (const storage::StorageError& e) {
      ++log_write_failures_;
      const uint64_t committed = store_.last_seq();
      if (attempt >= faults_.log_write_retries) {
        gave_up_ = true;
        // The failures are counted even though the campaign's writes are lost: one more commit of
        // the count alone, not injected; when the disk refuses it too, the count is lost with them.
        try {
          store_.put_meta(meta_key::kLogWriteFailures, storage::be64(log_write_failures_));
          commit_with_head();
        } catch (const storage::StorageError&) {
        }
        throw LogWriteError("the event log could not be committed after " + std::to_string(attempt + 1) + (attempt == 0 ? " attempt (" : " attempts (") + e.what() +
                            "); " + (committed == 0 ? std::string("no event was committed yet") : "events 1 to " + std::to_string(committed) + " are committed") +
                            ": `asiarch resume " + store_.dir().string() + "` continues the campaign");
      }
      spdlog::warn("committing the event log failed (attempt {} of {}): {}; retrying", attempt + 1, faults_.log_write_retries + 1, e.what());
      // A bounded backoff: the writer waits, not the campaign's virtual time.
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<uint64_t>(100, uint64_t{1} << attempt)));
      // The failed commit discarded the events since the last one: they are written again.
      for (size_t k = 0; k < uncommitted_.size(); ++k) {
        store_.append_event(committed + 1 + k, uncommitted_[k]);
        msg::CanonicalView<msg::Event> view(uncommitted_[k]);
        project(view.root());
      }
    }
  }
}

CampaignSummary run_campaign(const Scenario& scenario, uint64_t seed, const std::filesystem::path& out, const ProgressFn& progress,
                             const std::optional<ListenOptions>& listen) {
  // The run header records the scenario's text: a struct changed after parsing would make the
  // log unreplayable, so it is refused before anything is written.
  if (parse_scenario(scenario.bytes, scenario.file) != scenario) {
    throw std::invalid_argument("the scenario differs from its own text; edit the text and parse it again (the run records the text)");
  }
  require_device(scenario, listen);
  const Scenario resolved = with_slot_count(scenario, listen);
  std::error_code error;
  std::filesystem::create_directories(out, error);
  if (error || !std::filesystem::is_directory(out)) {
    throw storage::StorageError("cannot create the run directory " + out.string() + ": " +
                                (error ? error.message() : std::string("a file of that name exists")) + "; choose another --out directory");
  }
  const auto lock = storage::RunLock::acquire(out);
  // Listening (when it does) fails on a taken port before the store is created.
  const LiveTrainer trainer = live_trainer(resolved, seed, out, listen);
  auto store = storage::RunStore::create(out);
  {
    std::ofstream copy(out / "scenario.toml", std::ios::binary);
    copy << scenario.bytes;
    if (!copy) throw storage::StorageError("cannot write " + (out / "scenario.toml").string() + "; check the disk and permissions");
  }
  std::filesystem::create_directories(out / "report");
  RunRecorder recorder(*store, scenario.faults, seed);
  return recorder.with_log_write_failures(
      run_loop(resolved, seed, run_header_bytes(scenario, seed), recorder, progress, trainer, llm_client(scenario)));
}

CampaignSummary resume_campaign(const std::filesystem::path& dir, const ProgressFn& progress, const std::optional<ListenOptions>& listen) {
  if (!std::filesystem::exists(dir / "data.mdb")) {
    throw storage::StorageError("not a run directory: " + dir.string() + " has no data.mdb; pass the directory that `asiarch run` wrote (a run killed " +
                                "before it created its store left none: start it again with `asiarch run SCENARIO --out " + dir.string() +
                                "`, which reuses the directory)");
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
  require_device(run.scenario, listen);
  const Scenario resolved = with_slot_count(run.scenario, listen);  // a run killed before its start event
  RunRecorder recorder(*store, run.scenario.faults, run.seed);
  const LiveTrainer trainer = live_trainer(resolved, run.seed, dir, listen);
  return recorder.with_log_write_failures(
      run_loop(resolved, run.seed, run.header_bytes, recorder, progress, trainer, llm_client(run.scenario)));
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
  if (scenario.mode == Mode::Live) throw std::invalid_argument("scenario " + scenario.name + " is live: run it with `asiarch run`, which trains");
  ChainSink chain;
  NullSink none;
  EventSink& sink = mode == LogMode::ChainOnly ? static_cast<EventSink&>(chain) : none;
  return run_loop(scenario, seed, run_header_bytes(scenario, seed), sink, {}, {}, llm_client(scenario));
}

CampaignSummary decode_summary(std::string_view bytes) {
  msg::CanonicalView<msg::RunSummary> view(bytes);
  auto s = view.root();
  CampaignSummary summary;
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
  for (auto f : s.getFaults()) summary.faults[f.getKind().cStr()] = f.getCount();
  return summary;
}

CampaignSummary read_summary(const std::filesystem::path& dir) {
  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  auto bytes = store->meta(meta_key::kSummary);
  CampaignSummary summary;
  if (!bytes) {
    // A run in its first moment: the store exists, its first commit is not written yet.
    summary.stop_reason = "starting: nothing committed yet";
    return summary;
  }
  try {
    summary = decode_summary(*bytes);
    if (const uint64_t failures = stored_log_write_failures(*store)) summary.faults["log_write"] = failures;
  } catch (const kj::Exception& e) {
    throw storage::StorageError(dir.string() + ": the run's summary (meta \"summary\") is damaged: " + e.getDescription().cStr() +
                                "; `asiarch check` and `asiarch replay` still read the log");
  }
  // A summary of an unfinished run was written by a writer that may since have died.
  if (!summary.finished && summary.stop_reason.empty() && !storage::RunLock::held(dir)) {
    summary.stop_reason = "stopped: no process is writing the run (it was killed or failed); `asiarch resume " + dir.string() + "` continues it";
  }
  return summary;
}

}  // namespace asiarch
