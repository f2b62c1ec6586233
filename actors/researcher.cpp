#include "actors/researcher.h"

#include <algorithm>
#include <cmath>

#include "actors/mutations.h"

namespace asiarch {

ResearcherState::ResearcherState(const Scenario& scenario, uint64_t seed)
    : scenario_(scenario), shape_{scenario.d_model, scenario.context}, rng_(seed, actor_name::kResearcher) {}

void ResearcherState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  switch (payload.which()) {
    case msg::Payload::START:
      propose_baselines(payload.getStart(), out);
      break;
    case msg::Payload::POOL_UPDATE:
      record(payload.getPoolUpdate());
      break;
    case msg::Payload::INSIGHT_REPLY: {
      auto reply = payload.getInsightReply();
      auto waiting = waiting_for_insight_.find(reply.getRequestId());
      if (waiting == waiting_for_insight_.end()) throw std::logic_error("researcher: insight reply to an unknown request");
      const uint64_t parent = waiting->second;
      waiting_for_insight_.erase(waiting);
      propose_child(parent, reply, out);
      break;
    }
    default:
      throw std::logic_error("researcher: unexpected " + msg::kind_name(payload.which()));
  }
  if (started_) top_up(out);
}

void ResearcherState::propose_baselines(msg::CampaignStart::Reader start, msg::OutboxWriter& out) {
  started_ = true;
  for (auto name : start.getStartPrograms()) {
    const lang::Baseline* baseline = lang::find_baseline(name.cStr());
    if (!baseline) throw std::invalid_argument("researcher: unknown start program " + std::string(name.cStr()));
    const uint64_t id = next_arch_id_++;
    candidates_[id] = Candidate{baseline->text, baseline->name, ""};
    proposed_hashes_.insert(lang::structural_hash(lang::parse(baseline->text, baseline->name)));
    start_ids_.push_back(id);
    auto proposal = out.send(actor_name::kEngineer).initProposal();
    proposal.setArchId(id);
    proposal.setProgram(baseline->text);
    proposal.setOperator("baseline");
    proposal.setMotivation("baseline " + baseline->name + ": a published architecture the campaign starts from");
    ++in_flight_;
  }
}

// Keeps one proposal per GPU slot, plus one, in flight, so that no slot waits for an idea.
void ResearcherState::top_up(msg::OutboxWriter& out) {
  while (in_flight_ < scenario_.gpu_slots + 1) {
    const uint64_t parent = sample_parent();
    const Candidate& c = candidates_.at(parent);
    auto query = out.send(actor_name::kCognition).initInsightQuery();
    const uint64_t request = next_request_id_++;
    query.setRequestId(request);
    query.setK(scenario_.insights_k);
    query.setText(c.diagnosis.empty() ? "improve associative recall and language modelling loss of " + c.label
                                      : c.diagnosis);
    waiting_for_insight_[request] = parent;
    ++in_flight_;
  }
}

// Rank-biased choice from the pool (u^2 favours the top), or a start program before any score.
uint64_t ResearcherState::sample_parent() {
  if (pool_.empty()) return start_ids_[rng_.below(start_ids_.size())];
  const double u = rng_.uniform();
  const size_t index = std::min(pool_.size() - 1, static_cast<size_t>(std::floor(u * u * static_cast<double>(pool_.size()))));
  return pool_[index].arch_id;
}

void ResearcherState::propose_child(uint64_t parent_id, msg::InsightReply::Reader reply, msg::OutboxWriter& out) {
  const Candidate& parent = candidates_.at(parent_id);
  const lang::Program parent_program = lang::parse(parent.program, parent.label);

  // Which operators to try, in order: an insight's rewrites first when the researcher follows
  // the literature this time, then every operator in a random order.
  std::vector<std::string> order;
  std::vector<std::string> insight_of;  // the insight title each entry of `order` came from
  std::vector<std::string> insight_ids;
  if (reply.getHits().size() > 0 && rng_.chance(scenario_.insight_probability)) {
    for (auto hit : reply.getHits()) {
      for (auto rewrite : hit.getRewrites()) {
        if (!is_mutation_operator(rewrite.cStr())) continue;
        order.push_back(rewrite.cStr());
        insight_of.push_back(hit.getTitle().cStr() + std::string(": ") + hit.getInsight().cStr());
        insight_ids.push_back(hit.getEntryId().cStr());
      }
    }
  }
  std::vector<std::string> shuffled = mutation_operators();
  for (size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[rng_.below(i)]);
  for (const auto& op : shuffled) {
    order.push_back(op);
    insight_of.push_back("");
    insight_ids.push_back("");
  }

  // A child whose structure was proposed before would only be rejected as a duplicate: take the
  // first operator that makes a new one, or else the first that applies at all.
  std::optional<Mutation> chosen;
  std::string chosen_hash;
  size_t chosen_index = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    std::optional<Mutation> mutation = mutate(order[i], parent_program, shape_, rng_);
    if (!mutation) continue;
    std::string hash = lang::structural_hash(mutation->child);
    const bool is_new = !proposed_hashes_.count(hash);
    if (!chosen || is_new) {
      chosen = std::move(mutation);
      chosen_hash = std::move(hash);
      chosen_index = i;
    }
    if (is_new) break;
  }
  if (!chosen) throw std::logic_error("researcher: no mutation operator applies to " + parent.label);
  proposed_hashes_.insert(chosen_hash);

  const uint64_t id = next_arch_id_++;
  const std::string& op = order[chosen_index];
  chosen->child.name = "arch_" + std::to_string(id);
  chosen->child.comments = {"arch " + std::to_string(id) + ": " + op + " of " + parent.label};
  const std::string text = lang::print(chosen->child);
  candidates_[id] = Candidate{text, "arch " + std::to_string(id), ""};
  auto proposal = out.send(actor_name::kEngineer).initProposal();
  proposal.setArchId(id);
  proposal.initParentIds(1).set(0, parent_id);
  proposal.setProgram(text);
  proposal.setOperator(op);
  std::string motivation = chosen->description + " of " + parent.label + "; ";
  if (!insight_of[chosen_index].empty()) {
    motivation += "following the insight \"" + insight_of[chosen_index] + "\"";
    proposal.initInsightIds(1).set(0, insight_ids[chosen_index]);
  } else {
    motivation += parent.diagnosis.empty() ? "exploring around a start program" : "exploring after: " + parent.diagnosis;
  }
  proposal.setMotivation(motivation);
}

void ResearcherState::record(msg::PoolUpdate::Reader update) {
  if (update.getFidelity() != msg::Fidelity::EXPLORE) return;  // verify results do not change the pool
  if (in_flight_ == 0) throw std::logic_error("researcher: an outcome arrived for no proposal in flight");
  --in_flight_;
  auto candidate = candidates_.find(update.getArchId());
  if (candidate == candidates_.end()) return;
  candidate->second.diagnosis = update.getDiagnosis();
  if (update.getOutcome() != msg::Outcome::SCORED) return;
  const PoolEntry entry{update.getFitness(), update.getArchId()};
  auto before = [](const PoolEntry& a, const PoolEntry& b) {
    return a.fitness != b.fitness ? a.fitness > b.fitness : a.arch_id < b.arch_id;
  };
  pool_.insert(std::upper_bound(pool_.begin(), pool_.end(), entry, before), entry);
  if (pool_.size() > scenario_.pool_size) pool_.pop_back();
}

}  // namespace asiarch
