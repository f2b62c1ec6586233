#pragma once
// A GPU slot runs one training job at a time. In simulation it does not train: the synthetic
// oracle gives the result and the cost model the duration in virtual GPU hours. The result and
// the slot's "idle again" note are both sent with that duration as their delay.
//
// Accepts: dispatch.  Sends: trainResult (analyst), slotIdle (coordinator).
#include <memory>

#include "actors/actor_state.h"
#include "actors/scenario.h"
#include "actors/synthetic_oracle.h"

namespace asiarch {

class SimulatedGpuSlotState : public ActorState {
 public:
  // The oracle is shared by all slots: it is read-only after construction.
  SimulatedGpuSlotState(const Scenario& scenario, uint64_t seed, uint32_t slot, std::shared_ptr<const SyntheticOracle> oracle);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  Scenario scenario_;
  uint64_t seed_;
  uint32_t slot_;
  std::shared_ptr<const SyntheticOracle> oracle_;
};

}  // namespace asiarch
