#include "actors/gpu_slot.h"

#include <cmath>

namespace asiarch {

SimulatedGpuSlotState::SimulatedGpuSlotState(const Scenario& scenario, uint64_t seed, uint32_t slot,
                                             std::shared_ptr<const SyntheticOracle> oracle)
    : scenario_(scenario), seed_(seed), slot_(slot), oracle_(std::move(oracle)) {}

void SimulatedGpuSlotState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  if (payload.which() != msg::Payload::DISPATCH) throw std::logic_error("gpu-slot: unexpected " + msg::kind_name(payload.which()));
  auto job = payload.getDispatch().getJob();
  auto ref = job.getRef();
  const bool verify = ref.getFidelity() == msg::Fidelity::VERIFY;
  const FidelitySpec& fidelity = verify ? scenario_.verify : scenario_.explore;
  const lang::ModelShape shape{fidelity.d_model, scenario_.context};

  // One noise stream per job: the result does not depend on which slot runs it, or when.
  Rng noise(seed_, "oracle/job/" + std::to_string(ref.getJobId()));
  OracleOutcome outcome;
  JobCost cost;
  try {
    const lang::Program program = lang::parse(job.getProgram().cStr(), "job " + std::to_string(ref.getJobId()));
    outcome = oracle_->evaluate(program, shape, ref.getFidelity(), ref.getBaseline(), noise);
    cost = job_cost(program, fidelity, scenario_);
  } catch (const lang::ProgramError& e) {
    // A model that cannot be built at this fidelity fails like a crashed training job.
    outcome.ok = false;
    outcome.failure = std::string("the model cannot be built: ") + e.what();
    cost.gpu_hours = scenario_.overhead_gpu_hours;
  }
  // A failed job stops part-way through its budget.
  const double hours = outcome.ok ? cost.gpu_hours : cost.gpu_hours * (0.1 + 0.8 * noise.uniform());
  const uint64_t delay_ns = static_cast<uint64_t>(std::llround(hours * 3600.0 * 1e9));

  auto result = out.send(actor_name::kAnalyst, delay_ns).initTrainResult();
  result.setRef(ref);
  result.setSlot(slot_);
  result.setStatus(outcome.ok ? msg::TrainStatus::OK : msg::TrainStatus::FAILED);
  result.setFailure(outcome.failure);
  result.setLoss(outcome.loss);
  result.setAccuracy(outcome.accuracy);
  result.setGpuHours(hours);
  result.setTokensPerSecond(cost.tokens_per_second);
  result.setPeakMemoryBytes(cost.peak_memory_bytes);
  out.send(actor_name::kCoordinator, delay_ns).initSlotIdle().setSlot(slot_);
}

}  // namespace asiarch
