#pragma once
// The cognition actor: answers top-k queries over the research knowledge base (a faiss index,
// retrieval/cognition_index.h) and adds the insights the analyst writes during the campaign.
//
// Its interface (what it accepts and sends) is Role::Cognition in actors/interfaces.cpp.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "actors/actor_state.h"
#include "retrieval/cognition_index.h"

namespace asiarch {

class CognitionState : public ActorState {
 public:
  CognitionState();
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  retrieval::CognitionIndex index_;
  // Hits by (k, text) since the index last grew: the researcher asks about the same parents'
  // diagnoses again and again while the pools are stable, and each search scores every entry.
  std::map<std::pair<uint32_t, std::string>, std::vector<retrieval::Hit>> answered_;
};

}  // namespace asiarch
