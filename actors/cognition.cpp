#include "actors/cognition.h"

namespace asiarch {

CognitionState::CognitionState() : index_(retrieval::shipped_base()) {}

void CognitionState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  switch (payload.which()) {
    case msg::Payload::INSIGHT_QUERY: {
      auto query = payload.getInsightQuery();
      auto [known, is_new] = answered_.try_emplace({query.getK(), query.getText().cStr()});
      if (is_new) known->second = index_.query(query.getText().cStr(), static_cast<int>(query.getK()));
      const std::vector<retrieval::Hit>& hits = known->second;
      auto reply = out.send(event.getFrom()).initInsightReply();
      reply.setRequestId(query.getRequestId());
      auto list = reply.initHits(static_cast<unsigned>(hits.size()));
      for (unsigned i = 0; i < hits.size(); ++i) {
        const retrieval::Entry& entry = index_.entry(hits[i].index);
        list[i].setEntryId(entry.id);
        list[i].setTitle(entry.title);
        list[i].setInsight(entry.insight);
        list[i].setScore(hits[i].score);
        auto rewrites = list[i].initRewrites(static_cast<unsigned>(entry.rewrites.size()));
        for (unsigned r = 0; r < entry.rewrites.size(); ++r) rewrites.set(r, entry.rewrites[r]);
      }
      break;
    }
    case msg::Payload::INSIGHT: {
      auto insight = payload.getInsight();
      retrieval::Entry entry;
      entry.id = "campaign-insight-" + std::to_string(insight.getInsightId());
      entry.title = "campaign insight " + std::to_string(insight.getInsightId());
      entry.source = "this campaign, arch " + std::to_string(insight.getArchId());
      entry.insight = insight.getText();
      for (auto rewrite : insight.getRewrites()) entry.rewrites.push_back(rewrite);
      index_.add(std::move(entry));
      answered_.clear();
      break;
    }
    default:
      throw std::logic_error("cognition: unexpected " + msg::kind_name(payload.which()));
  }
}

}  // namespace asiarch
