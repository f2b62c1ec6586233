#pragma once
// The researcher: keeps the candidate pool, samples parents from its top, asks the cognition
// actor for insights about the parent, and proposes a child made by a typed mutation, with the
// motivation that led to it. It keeps (GPU slots + 1) proposals in flight.
//
// Accepts: start, poolUpdate, insightReply.  Sends: proposal (engineer), insightQuery (cognition).
#include <map>
#include <set>
#include <string>
#include <vector>

#include "actors/actor_state.h"
#include "common/rng.h"
#include "actors/scenario.h"
#include "kernels/program.h"

namespace asiarch {

class ResearcherState : public ActorState {
 public:
  ResearcherState(const Scenario& scenario, uint64_t seed);
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  struct Candidate {
    std::string program;    // text form
    std::string label;      // baseline name or "arch N"
    std::string diagnosis;  // the analyst's last word on it
  };
  struct PoolEntry {
    double fitness;
    uint64_t arch_id;
  };

  void propose_baselines(msg::CampaignStart::Reader start, msg::OutboxWriter& out);
  void top_up(msg::OutboxWriter& out);
  void propose_child(uint64_t parent, msg::InsightReply::Reader reply, msg::OutboxWriter& out);
  void record(msg::PoolUpdate::Reader update);
  uint64_t sample_parent();

  Scenario scenario_;
  lang::ModelShape shape_;
  Rng rng_;
  std::map<uint64_t, Candidate> candidates_;
  std::vector<uint64_t> start_ids_;
  std::vector<PoolEntry> pool_;               // best first; at most pool_size entries
  std::map<uint64_t, uint64_t> waiting_for_insight_;  // request id -> parent arch id
  std::set<std::string> proposed_hashes_;              // structural hashes of every proposal
  uint64_t next_arch_id_ = 1;
  uint64_t next_request_id_ = 1;
  uint32_t in_flight_ = 0;  // proposals whose explore outcome has not come back
  bool started_ = false;
};

}  // namespace asiarch
