// `asiarch retrain`: live results are input events, so a replay never trains; this is the
// separate check that a logged training job, run again at the same seed and thread count,
// gives the same metrics bit for bit.
#include <cstring>
#include <sstream>

#include "actors/gpu_slot.h"
#include "campaign/campaign.h"
#include "campaign/run_recorder.h"

namespace asiarch {
namespace {

// The fields retrain compares; wall-clock figures (duration, tokens per second) are left out.
std::string compared_metrics(msg::TrainResult::Reader r) {
  std::ostringstream out;
  out.precision(17);
  out << (r.getStatus() == msg::TrainStatus::OK ? "ok" : "failed (" + std::string(r.getFailure().cStr()) + ")")
      << ", loss " << r.getLoss() << ", accuracy " << r.getAccuracy() << ", peak memory " << r.getPeakMemoryBytes() << " B";
  return out.str();
}

// Metrics are bit-identical only on the same device model (and kernels): a job is retrained only
// where it trained. Results logged before devices were recorded trained on the CPU.
void require_same_device(const LiveJobSettings& settings, const std::string& dispatch_bytes, msg::TrainResult::Reader recorded) {
  msg::CanonicalView<msg::Event> dispatch(dispatch_bytes);
  const uint32_t slot = dispatch.root().getPayload().getDispatch().getSlot();
  const std::string logged = recorded.getDevice().size() > 0 ? recorded.getDevice().cStr() : "cpu";
  const std::string device = training::slot_device(settings.live.device, slot, training::device_info(settings.live.device).cuda_devices);
  const training::DeviceInfo here = training::device_info(device);
  const std::string job = "job " + std::to_string(recorded.getRef().getJobId());
  if (!here.problem.empty()) {
    throw std::invalid_argument(job + " trained on " + logged + "; here it would train on " + device + ", where " + here.problem);
  }
  if (here.name != logged) {
    throw std::invalid_argument(job + " trained on " + logged + ", and here it would train on " + here.name + " (" + device +
                                "): metrics are bit-identical only on the same device model, so retrain it on a machine with " + logged);
  }
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_metrics(msg::TrainResult::Reader a, msg::TrainResult::Reader b) {
  return a.getStatus() == b.getStatus() && a.getFailure() == b.getFailure() && same_bits(a.getLoss(), b.getLoss()) &&
         same_bits(a.getAccuracy(), b.getAccuracy()) && a.getPeakMemoryBytes() == b.getPeakMemoryBytes();
}

}  // namespace

bool RetrainReport::identical() const {
  for (const auto& job : jobs) {
    if (!job.identical) return false;
  }
  return !jobs.empty();
}

RetrainReport retrain_architecture(const std::filesystem::path& dir, uint64_t arch_id,
                                   const std::function<void(const RetrainedJob&)>& on_job) {
  auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  const RecordedRun run = read_recorded_run(*store);
  if (run.scenario.mode != Mode::Live) {
    throw std::invalid_argument(dir.string() + " is a simulated campaign: its results come from an oracle, so there is nothing to retrain");
  }
  // Each job's dispatch (its program) and its logged result, in log order.
  std::map<uint64_t, std::string> dispatches;
  std::vector<std::pair<std::string, std::string>> jobs;  // dispatch event, result event
  store->for_each_event([&](uint64_t, std::string_view bytes) {
    msg::CanonicalView<msg::Event> view(bytes);
    auto payload = view.root().getPayload();
    if (payload.which() == msg::Payload::DISPATCH && payload.getDispatch().getJob().getRef().getArchId() == arch_id) {
      dispatches[payload.getDispatch().getJob().getRef().getJobId()] = std::string(bytes);
    } else if (payload.which() == msg::Payload::TRAIN_RESULT && view.root().getInput() &&
               payload.getTrainResult().getRef().getArchId() == arch_id) {
      jobs.emplace_back(dispatches.at(payload.getTrainResult().getRef().getJobId()), std::string(bytes));
    }
  });
  if (jobs.empty()) {
    throw std::invalid_argument("architecture " + std::to_string(arch_id) + " has no logged training result in " + dir.string() +
                                "; `asiarch top` lists the architectures that were trained");
  }
  const LiveJobSettings settings = LiveJobSettings::of(run.scenario);
  for (const auto& [dispatch, result_event] : jobs) {
    require_same_device(settings, dispatch, msg::CanonicalView<msg::Event>(result_event).root().getPayload().getTrainResult());
  }
  RetrainReport report;
  report.arch_id = arch_id;
  const std::atomic<bool> never{false};
  for (const auto& [dispatch, result_event] : jobs) {
    msg::CanonicalView<msg::Event> recorded(result_event);
    auto recorded_result = recorded.root().getPayload().getTrainResult();
    const std::string retrained_bytes = train_live_job(settings, run.seed, dispatch, never);
    msg::CanonicalView<msg::Payload> retrained(retrained_bytes);
    RetrainedJob job;
    job.job_id = recorded_result.getRef().getJobId();
    job.fidelity = recorded_result.getRef().getFidelity() == msg::Fidelity::VERIFY ? "verify" : "explore";
    job.identical = same_metrics(recorded_result, retrained.root().getTrainResult());
    job.recorded = compared_metrics(recorded_result);
    job.retrained = compared_metrics(retrained.root().getTrainResult());
    if (on_job) on_job(job);
    report.jobs.push_back(std::move(job));
  }
  return report;
}

}  // namespace asiarch
