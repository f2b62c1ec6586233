#include "actors/coordinator.h"

#include <capnp/schema.h>

#include <cmath>

#include "common/virtual_time.h"

namespace asiarch {

CoordinatorState::Settings CoordinatorState::Settings::of(const Scenario& scenario) {
  return {scenario.campaign.gpu_slots, scenario.faults, CostModel::of(scenario)};
}

CoordinatorState::CoordinatorState(Settings settings) : settings_(std::move(settings)), supervising_(settings_.faults.slot_faults_armed()) {
  for (uint32_t i = 0; i < settings_.gpu_slots; ++i) free_slots_.insert(i);
}

void CoordinatorState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  const uint64_t now = event.getVtimeNs();
  switch (payload.which()) {
    case msg::Payload::TRAIN_JOB: {
      auto copy = std::make_unique<capnp::MallocMessageBuilder>();
      copy->setRoot(payload.getTrainJob());
      enqueue(Waiting{std::move(copy), 0}, false, now, out);
      break;
    }
    case msg::Payload::SLOT_IDLE:
      slot_available(payload.getSlotIdle().getSlot(), now, out);
      break;
    case msg::Payload::SLOT_ANSWER:
      on_answer(payload.getSlotAnswer(), now, out);
      break;
    case msg::Payload::SLOT_CRASH: {
      auto crash = payload.getSlotCrash();
      // A crash of a dispatch that was already timed out is of a slot that was killed then.
      if (running(crash.getSlot(), crash.getJobId(), crash.getAttempt())) {
        lose_job(crash.getSlot(), msg::FaultKind::CRASH, actor_name::gpu_slot(crash.getSlot()) + " crashed", now, out);
      }
      break;
    }
    case msg::Payload::JOB_TIMEOUT: {
      auto timeout = payload.getJobTimeout();
      // The timer of a job that answered or crashed in time runs out with nothing to do.
      if (running(timeout.getSlot(), timeout.getJobId(), timeout.getAttempt())) {
        lose_job(timeout.getSlot(), msg::FaultKind::TIMEOUT, actor_name::gpu_slot(timeout.getSlot()) + " did not answer in time and was killed",
                 now, out);
      }
      break;
    }
    case msg::Payload::SLOT_RESTART:
      slot_available(payload.getSlotRestart().getSlot(), now, out);
      break;
    case msg::Payload::SLOT_FAULT:
      break;  // the coordinator's own record of what it did, for the log
    default:
      throw std::logic_error("coordinator: unexpected " + msg::kind_name(payload.which()));
  }
}

void CoordinatorState::enqueue(Waiting waiting, bool first, uint64_t now_ns, msg::OutboxWriter& out) {
  if (!free_slots_.empty()) {
    const uint32_t slot = *free_slots_.begin();
    free_slots_.erase(free_slots_.begin());
    dispatch(slot, std::move(waiting), now_ns, out);
  } else if (first) {
    waiting_jobs_.push_front(std::move(waiting));
  } else {
    waiting_jobs_.push_back(std::move(waiting));
  }
}

void CoordinatorState::slot_available(uint32_t slot, uint64_t now_ns, msg::OutboxWriter& out) {
  if (waiting_jobs_.empty()) {
    free_slots_.insert(slot);
  } else {
    Waiting next = std::move(waiting_jobs_.front());
    waiting_jobs_.pop_front();
    dispatch(slot, std::move(next), now_ns, out);
  }
}

void CoordinatorState::dispatch(uint32_t slot, Waiting waiting, uint64_t now_ns, msg::OutboxWriter& out) {
  const auto job = waiting.job->getRoot<msg::TrainJob>().asReader();
  auto d = out.send(actor_name::gpu_slot(slot)).initDispatch();
  d.setSlot(slot);
  d.setJob(job);
  if (!supervising_) return;
  const uint64_t timeout = timeout_ns(job);
  d.setAttempt(waiting.attempt);
  d.setTimeoutNs(timeout);
  auto timer = out.send(actor_name::kCoordinator, timeout).initJobTimeout();
  timer.setSlot(slot);
  timer.setJobId(job.getRef().getJobId());
  timer.setAttempt(waiting.attempt);
  running_[slot] = Running{std::move(waiting.job), waiting.attempt, now_ns};
}

// The cost model's hours of the job, times job_timeout_factor; or the fixed timeout. At least
// 1 ns, as 0 means "no timeout" in a dispatch.
uint64_t CoordinatorState::timeout_ns(msg::TrainJob::Reader job) const {
  const FaultSpec& faults = settings_.faults;
  double hours = faults.job_timeout_gpu_hours;
  if (hours <= 0) {
    double cost = settings_.costs.cost.overhead_gpu_hours;  // what a model that cannot be built costs its slot
    try {
      const lang::Program program = lang::parse(job.getProgram().cStr(), "job " + std::to_string(job.getRef().getJobId()));
      cost = settings_.costs.job(program, job.getRef().getFidelity()).gpu_hours;
    } catch (const lang::ProgramError&) {
    }
    hours = faults.job_timeout_factor * cost;
  }
  return std::max<uint64_t>(1, hours_to_ns(hours));
}

CoordinatorState::Running* CoordinatorState::running(uint32_t slot, uint64_t job_id, uint32_t attempt) {
  auto it = running_.find(slot);
  if (it == running_.end()) return nullptr;
  Running& run = it->second;
  const bool same = run.job->getRoot<msg::TrainJob>().getRef().getJobId() == job_id && run.attempt == attempt;
  return same ? &run : nullptr;
}

namespace {
void report_fault(msg::OutboxWriter& out, msg::FaultKind kind, msg::FaultAction action, uint32_t slot, uint64_t job_id, uint32_t attempt,
                  const std::string& detail) {
  auto fault = out.send(actor_name::kCoordinator).initSlotFault();
  fault.setKind(kind);
  fault.setAction(action);
  fault.setSlot(slot);
  fault.setJobId(job_id);
  fault.setAttempt(attempt);
  fault.setDetail(detail);
}
}  // namespace

void CoordinatorState::on_answer(msg::SlotAnswer::Reader answer, uint64_t now_ns, msg::OutboxWriter& out) {
  const uint32_t slot = answer.getSlot();
  const uint64_t job_id = answer.getJobId();
  if (!running(slot, job_id, answer.getAttempt())) {
    report_fault(out, msg::FaultKind::LATE, msg::FaultAction::IGNORED, slot, job_id, answer.getAttempt(),
                 "the answer came after the dispatch was timed out; the job was re-queued or has ended");
    return;
  }
  const Running run = std::move(running_.at(slot));
  running_.erase(slot);
  const auto bytes = answer.getResult();
  const std::string_view result(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  const std::string problem = slot_answer_problem(result, job_id, slot);
  if (problem.empty()) {
    msg::CanonicalView<msg::TrainResult> view(result);
    out.send(actor_name::kAnalyst).setTrainResult(view.root());
  } else {
    report_fault(out, msg::FaultKind::GARBAGE, msg::FaultAction::FAILED, slot, job_id, run.attempt, problem);
    fail_job(run, slot, msg::FailureKind::GARBAGE, "garbage: " + problem, now_ns, out);
  }
  slot_available(slot, now_ns, out);
}

void CoordinatorState::lose_job(uint32_t slot, msg::FaultKind kind, const std::string& detail, uint64_t now_ns, msg::OutboxWriter& out) {
  Running run = std::move(running_.at(slot));
  running_.erase(slot);
  const uint64_t job_id = run.job->getRoot<msg::TrainJob>().getRef().getJobId();
  const uint32_t retries = settings_.faults.job_retries;
  if (run.attempt < retries) {
    report_fault(out, kind, msg::FaultAction::REQUEUED, slot, job_id, run.attempt,
                 detail + "; attempt " + std::to_string(run.attempt + 2) + " of at most " + std::to_string(retries + 1) + " is queued");
    enqueue(Waiting{std::move(run.job), run.attempt + 1}, true, now_ns, out);
  } else {
    report_fault(out, kind, msg::FaultAction::FAILED, slot, job_id, run.attempt, detail + "; no retries left");
    const auto failure_kind = kind == msg::FaultKind::CRASH ? msg::FailureKind::CRASH : msg::FailureKind::TIMEOUT;
    fail_job(run, slot, failure_kind, msg::enum_name(kind) + ": " + detail + " on each of " + std::to_string(retries + 1) + " attempts",
             now_ns, out);
  }
  out.send(actor_name::kCoordinator, hours_to_ns(settings_.faults.slot_restart_gpu_hours)).initSlotRestart().setSlot(slot);
}

void CoordinatorState::fail_job(const Running& run, uint32_t slot, msg::FailureKind kind, const std::string& failure, uint64_t now_ns,
                                msg::OutboxWriter& out) {
  auto result = out.send(actor_name::kAnalyst).initTrainResult();
  result.setRef(run.job->getRoot<msg::TrainJob>().getRef().asReader());
  result.setSlot(slot);
  result.setStatus(msg::TrainStatus::FAILED);
  result.setFailure(failure);
  result.setFailureKind(kind);
  result.setGpuHours(ns_to_hours(now_ns - run.since_ns));  // what the last attempt held its slot
}

std::string slot_answer_problem(std::string_view result_bytes, uint64_t job_id, uint32_t slot) {
  try {
    msg::CanonicalView<msg::TrainResult> view(result_bytes);
    auto result = view.root();
    result.totalSize();  // follows every pointer: a malformed message throws here
    const uint64_t named = result.getRef().getJobId();
    if (named != job_id) return "the answer names job " + std::to_string(named) + ", not job " + std::to_string(job_id);
    if (result.getSlot() != slot) return "the answer names " + actor_name::gpu_slot(result.getSlot());
    const auto status = static_cast<uint16_t>(result.getStatus());
    if (status > static_cast<uint16_t>(msg::TrainStatus::FAILED)) return "the answer has the unknown status " + std::to_string(status);
    const auto kind = static_cast<uint16_t>(result.getFailureKind());
    if (kind > static_cast<uint16_t>(msg::FailureKind::GARBAGE)) return "the answer has the unknown failure kind " + std::to_string(kind);
    if (!std::isfinite(result.getGpuHours()) || result.getGpuHours() < 0) return "the answer's GPU hours are not a finite non-negative number";
    if (result.getStatus() == msg::TrainStatus::OK &&
        (!std::isfinite(result.getLoss()) || !std::isfinite(result.getAccuracy()) || result.getAccuracy() < 0 || result.getAccuracy() > 1)) {
      return "the ok answer's loss or accuracy is not finite or out of range (loss " + std::to_string(result.getLoss()) + ", accuracy " +
             std::to_string(result.getAccuracy()) + ")";
    }
  } catch (const kj::Exception& e) {
    return std::string("the answer does not decode as a TrainResult: ") + e.getDescription().cStr();
  }
  return "";
}

}  // namespace asiarch
