#pragma once
// The cognition actor: answers top-k queries over the research knowledge base (a faiss index,
// retrieval/cognition_index.h) and adds the insights the analyst writes during the campaign.
//
// Its interface (what it accepts and sends) is Role::Cognition in actors/interfaces.cpp.
#include "actors/actor_state.h"
#include "retrieval/cognition_index.h"

namespace asiarch {

class CognitionState : public ActorState {
 public:
  CognitionState();
  void handle(msg::Event::Reader event, msg::OutboxWriter& out) override;

 private:
  retrieval::CognitionIndex index_;
};

}  // namespace asiarch
