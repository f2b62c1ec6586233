#include "actors/gpu_slot.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>

#include "common/virtual_time.h"

namespace asiarch {

SimulatedGpuSlotState::Settings SimulatedGpuSlotState::Settings::of(const Scenario& scenario) {
  return {CostModel::of(scenario), scenario.faults};
}

SimulatedGpuSlotState::SimulatedGpuSlotState(Settings settings, uint64_t seed, uint32_t slot, std::shared_ptr<const Oracle> oracle)
    : settings_(std::move(settings)), seed_(seed), slot_(slot), oracle_(std::move(oracle)) {}

void SimulatedGpuSlotState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  if (payload.which() != msg::Payload::DISPATCH) throw std::logic_error("gpu-slot: unexpected " + msg::kind_name(payload.which()));
  auto job = payload.getDispatch().getJob();
  auto ref = job.getRef();
  const lang::ModelShape shape = settings_.costs.shape(ref.getFidelity());

  // One noise stream per job: the result does not depend on which slot runs it, or when.
  Rng noise(seed_, "oracle/job/" + std::to_string(ref.getJobId()));
  OracleOutcome outcome;
  JobCost cost;
  try {
    const lang::Program program = lang::parse(job.getProgram().cStr(), "job " + std::to_string(ref.getJobId()));
    outcome = oracle_->evaluate(program, shape, ref.getFidelity(), ref.getBaseline(), noise);
    cost = settings_.costs.job(program, ref.getFidelity());
  } catch (const lang::ProgramError& e) {
    // A model that cannot be built at this fidelity fails like a crashed training job.
    outcome.ok = false;
    outcome.failure = std::string("the model cannot be built: ") + e.what();
    outcome.failure_kind = msg::FailureKind::MODEL;
    cost.gpu_hours = settings_.costs.cost.overhead_gpu_hours;
  }
  // A failed job stops part-way through its budget.
  const double hours = outcome.ok ? cost.gpu_hours : cost.gpu_hours * (0.1 + 0.8 * noise.uniform());
  const uint64_t delay_ns = hours_to_ns(hours);
  auto fill = [&](msg::TrainResult::Builder result) {
    result.setRef(ref);
    result.setSlot(slot_);
    result.setStatus(outcome.ok ? msg::TrainStatus::OK : msg::TrainStatus::FAILED);
    result.setFailure(outcome.failure);
    result.setFailureKind(outcome.failure_kind);
    result.setLoss(outcome.loss);
    result.setAccuracy(outcome.accuracy);
    result.setGpuHours(hours);
    result.setTokensPerSecond(cost.tokens_per_second);
    result.setPeakMemoryBytes(cost.peak_memory_bytes);
  };
  if (!settings_.faults.slot_faults_armed()) {
    fill(out.send(actor_name::kAnalyst, delay_ns).initTrainResult());
    out.send(actor_name::kCoordinator, delay_ns).initSlotIdle().setSlot(slot_);
    return;
  }
  capnp::MallocMessageBuilder message;
  fill(message.initRoot<msg::TrainResult>());
  answer_with_faults(payload.getDispatch(), message.getRoot<msg::TrainResult>(), delay_ns, out);
}

// What this attempt of the job suffers is drawn from its own stream: the same job and attempt
// meet the same fault on any slot, at any time, in a replay or a resume.
void SimulatedGpuSlotState::answer_with_faults(msg::Dispatch::Reader dispatch, msg::TrainResult::Builder result, uint64_t delay_ns,
                                               msg::OutboxWriter& out) const {
  const uint64_t job_id = dispatch.getJob().getRef().getJobId();
  const uint32_t attempt = dispatch.getAttempt();
  const FaultSpec& faults = settings_.faults;
  Rng draw(seed_, "fault/job/" + std::to_string(job_id), attempt);
  double u = draw.uniform();
  if ((u -= faults.slot_crash) < 0) {
    auto crash = out.send(actor_name::kCoordinator, static_cast<uint64_t>(static_cast<double>(delay_ns) * (0.05 + 0.9 * draw.uniform())))
                     .initSlotCrash();
    crash.setSlot(slot_);
    crash.setJobId(job_id);
    crash.setAttempt(attempt);
    return;
  }
  if ((u -= faults.slot_hang) < 0) return;  // never answers
  if ((u -= faults.slot_late) < 0) {
    delay_ns = dispatch.getTimeoutNs() + 1 + static_cast<uint64_t>(static_cast<double>(delay_ns) * (0.05 + 0.5 * draw.uniform()));
  }
  std::string bytes;
  if ((u -= faults.slot_garbage) < 0) {
    switch (draw.below(3)) {
      case 0:  // a metric that is not a number
        result.setStatus(msg::TrainStatus::OK);
        result.setLoss(std::numeric_limits<double>::quiet_NaN());
        break;
      case 1:  // another job's id
        result.getRef().setJobId(job_id + 1 + draw.below(1000));
        break;
      default:  // bytes that are not a message
        for (uint64_t words = 1 + draw.below(8); words > 0; --words) {
          const uint64_t word = draw.next();
          bytes.append(reinterpret_cast<const char*>(&word), sizeof word);
        }
    }
  }
  if (bytes.empty()) bytes = msg::canonical_bytes(result.asReader());
  auto answer = out.send(actor_name::kCoordinator, delay_ns).initSlotAnswer();
  answer.setSlot(slot_);
  answer.setJobId(job_id);
  answer.setAttempt(attempt);
  answer.setResult(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
}

}  // namespace asiarch

namespace asiarch {

LiveJobSettings LiveJobSettings::of(const Scenario& scenario) {
  return {scenario.fidelity, scenario.model, scenario.campaign.reference, scenario.task, scenario.live};
}

training::ExperimentConfig live_experiment_config(const LiveJobSettings& settings, uint64_t seed, msg::Fidelity fidelity, uint64_t job_id) {
  const bool verify = fidelity == msg::Fidelity::VERIFY;
  const FidelitySpec& spec = verify ? settings.fidelity.verify : settings.fidelity.explore;
  Rng job_seeds(seed, "train/job/" + std::to_string(job_id));
  training::ExperimentConfig config;
  for (auto [task, train] : {std::pair{training::Task::Lm, &config.lm}, std::pair{training::Task::Mqar, &config.mqar}}) {
    *train = verify ? training::verify_config(task) : training::explore_config(task);
    train->mqar = verify ? training::verify_task(settings.task.mqar) : settings.task.mqar;
    train->lm = verify ? training::verify_task(settings.task.lm) : settings.task.lm;
    train->d_model = spec.d_model;
    train->layers = spec.layers;
    if (spec.steps > 0) train->steps = spec.steps;
    if (spec.batch > 0) train->batch = spec.batch;
    if (spec.lr > 0) train->lr = spec.lr;
    train->threads = settings.live.threads;
    train->dtype = settings.live.dtype;
    train->seed = job_seeds.next();
  }
  config.measure.d_model = spec.d_model;
  config.measure.context = settings.live.measure_context;
  config.measure.threads = settings.live.threads;
  config.measure.seed = job_seeds.next();
  // The engineer holds programs to the parameter budget statically; measured, the same band
  // applies at the fidelity's width, scaled from the reference baseline there.
  const lang::Baseline* reference = lang::find_baseline(settings.reference);
  const lang::Program reference_program = lang::parse(reference->text, reference->name);
  const double at_model = static_cast<double>(lang::derive(reference_program, {settings.model.d_model, settings.model.context}).params);
  const double at_fidelity = static_cast<double>(lang::derive(reference_program, {spec.d_model, settings.model.context}).params);
  const double target = settings.model.param_target > 0 ? static_cast<double>(settings.model.param_target) : at_model;
  config.measure.param_target = static_cast<int64_t>(std::llround(target * at_fidelity / at_model));
  config.measure.param_tolerance = settings.model.param_tolerance;
  return config;
}

void set_measured_result(msg::TrainResult::Builder result, const training::ExperimentMetrics& metrics) {
  result.setStatus(metrics.ok ? msg::TrainStatus::OK : msg::TrainStatus::FAILED);
  result.setFailure(metrics.failure);
  result.setFailureKind(metrics.failure_kind);
  result.setFailedStep(metrics.failed_step);
  result.setLoss(metrics.loss);
  result.setAccuracy(metrics.accuracy);
  result.setGpuHours(metrics.seconds / 3600.0);
  result.setTokensPerSecond(metrics.tokens_per_second);
  result.setPeakMemoryBytes(metrics.peak_memory_bytes);
  result.setDevice(metrics.device_name);
  result.setTorchVersion(metrics.torch_version);
}

std::filesystem::path kept_weights_prefix(const std::filesystem::path& run_dir, uint64_t arch_id, msg::Fidelity fidelity) {
  return run_dir / "weights" / ("arch-" + std::to_string(arch_id) + (fidelity == msg::Fidelity::VERIFY ? "-verify" : "-explore"));
}

std::string train_live_job(const LiveJobSettings& settings, uint64_t seed, const std::string& dispatch_event_bytes,
                           const std::atomic<bool>& cancelled, const std::filesystem::path& run_dir) {
  msg::CanonicalView<msg::Event> event(dispatch_event_bytes);
  auto dispatch = event.root().getPayload().getDispatch();
  auto job = dispatch.getJob();
  auto ref = job.getRef();
  training::ExperimentMetrics metrics;
  try {
    const lang::Program program = lang::parse(job.getProgram().cStr(), "job " + std::to_string(ref.getJobId()));
    training::ExperimentConfig config = live_experiment_config(settings, seed, ref.getFidelity(), ref.getJobId());
    config.cancelled = &cancelled;
    config.lm.device = config.mqar.device =
        training::slot_device(settings.live.device, dispatch.getSlot(), training::device_info(settings.live.device).cuda_devices);
    // The engineer's retry of a job that diverged runs at a lower learning rate.
    if (ref.getLrScale() > 0) {
      config.lm.lr *= ref.getLrScale();
      config.mqar.lr *= ref.getLrScale();
    }
    // One set of weights per architecture and fidelity: the first verify seed's (replicates train
    // at once on several slots, and the last to finish would otherwise decide which is kept).
    if (!run_dir.empty() && ref.getReplicate() == 0) {
      const std::filesystem::path prefix = kept_weights_prefix(run_dir, ref.getArchId(), ref.getFidelity());
      std::error_code error;
      std::filesystem::create_directories(prefix.parent_path(), error);
      if (error) spdlog::warn("job {}: cannot create {} for its weights: {}", ref.getJobId(), prefix.parent_path().string(), error.message());
      else config.weights_prefix = prefix.string();
    }
    metrics = training::run_experiment(program, config);
    for (const std::string& problem : metrics.weights_errors) {
      spdlog::warn("job {} (arch {}): its weights were not kept: {}", ref.getJobId(), ref.getArchId(), problem);
    }
  } catch (const lang::ProgramError& e) {
    metrics.failure = std::string("model: ") + e.what();
    metrics.failure_kind = msg::FailureKind::MODEL;
  }
  capnp::MallocMessageBuilder message;
  auto result = message.initRoot<msg::Payload>().initTrainResult();
  result.setRef(ref);
  result.setSlot(dispatch.getSlot());
  set_measured_result(result, metrics);
  return msg::canonical_bytes(message.getRoot<msg::Payload>().asReader());
}

}  // namespace asiarch
