#include "actors/researcher.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "actors/mutations.h"
#include "training/training.h"

namespace asiarch {
namespace {

constexpr size_t kParentTop = 10;          // the parent comes from the pool's top 10 (ASI-Arch)
constexpr size_t kReferences = 2;          // reference programs from the rest of the pool
constexpr double kBreakthroughReward = 3;  // a breakthrough counts this many improvements more
constexpr double kExploration = 0.5;       // UCB1's exploration weight, for rewards mostly in [0, 1]
constexpr double kInsightWeight = 0.3;     // what an insight's record adds to its operator's score
constexpr int kMutationRounds = 4;         // passes over the options in search of an unseen function

template <typename T>
void shuffle(std::vector<T>& items, Rng& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

}  // namespace

ResearcherState::Settings ResearcherState::Settings::of(const Scenario& scenario) {
  return {scenario.researcher, scenario.llm, {scenario.model.d_model, scenario.model.context}, scenario.campaign.gpu_slots,
          scenario.campaign.pool_size};
}

ResearcherState::ResearcherState(Settings settings, uint64_t seed)
    : settings_(std::move(settings)),
      rng_(seed, actor_name::kResearcher),
      start_ids_(settings_.researcher.selection == Selection::Islands ? settings_.researcher.islands : 1),
      pools_(start_ids_.size()) {}

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
      const Plan plan = waiting->second;
      waiting_for_insight_.erase(waiting);
      std::vector<Option> suggested;
      std::string insights;  // for the model: every retrieved entry with its rewrites
      for (auto hit : reply.getHits()) {
        std::string rewrites;
        for (auto rewrite : hit.getRewrites()) {
          rewrites += (rewrites.empty() ? "" : ", ") + std::string(rewrite.cStr());
          if (!is_mutation_operator(rewrite.cStr())) continue;
          suggested.push_back(Option{rewrite.cStr(), hit.getEntryId().cStr(), hit.getTitle().cStr() + std::string(": ") + hit.getInsight().cStr(),
                                     hit.getScore()});
        }
        insights += "- [" + std::string(hit.getEntryId().cStr()) + "] " + hit.getTitle().cStr() + ": " + hit.getInsight().cStr() +
                    (rewrites.empty() ? "" : " (suggested rewrites: " + rewrites + ")") + "\n";
      }
      if (settings_.researcher.backend == Backend::Llm) ask_llm(plan, suggested, insights, out);
      else propose_child(plan, suggested, out);
      break;
    }
    case msg::Payload::LLM_REPLY:
      on_llm_reply(payload.getLlmReply(), out);
      break;
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
    // Islands get the start programs in turn.
    const auto island = static_cast<uint32_t>((id - 1) % start_ids_.size());
    candidates_[id] = Candidate{baseline->text, baseline->name, "", island, 0, "baseline", "", -1};
    proposed_hashes_.insert(lang::algebraic_hash(lang::parse(baseline->text, baseline->name)));
    start_ids_[island].push_back(id);
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
  while (in_flight_ < settings_.gpu_slots + 1) {
    const Plan plan = select();
    ++in_flight_;
    if (settings_.researcher.strategy != Strategy::Full) {
      if (settings_.researcher.backend == Backend::Llm) ask_llm(plan, {}, "", out);
      else propose_child(plan, {}, out);
      continue;
    }
    const Candidate& c = candidates_.at(plan.parent);
    auto query = out.send(actor_name::kCognition).initInsightQuery();
    const uint64_t request = next_request_id_++;
    query.setRequestId(request);
    query.setK(settings_.researcher.insights_k);
    query.setText(c.diagnosis.empty() ? "improve associative recall and language modelling loss of " + c.label : c.diagnosis);
    waiting_for_insight_[request] = plan;
  }
}

// The next island in turn (one that has something to start from), a parent from the top of its
// pool and references from the rest; a start program before anything is scored.
ResearcherState::Plan ResearcherState::select() {
  uint32_t island = next_island_;
  next_island_ = (next_island_ + 1) % pools_.size();
  for (size_t tries = 0; tries < pools_.size() && pools_[island].empty() && start_ids_[island].empty(); ++tries) {
    island = (island + 1) % pools_.size();
  }
  const std::vector<PoolEntry>& pool = pools_[island];
  if (pool.empty()) {
    const std::vector<uint64_t>& starts = start_ids_[island];
    return Plan{island, starts[rng_.below(starts.size())], {}};
  }
  const bool random = settings_.researcher.strategy == Strategy::Random;
  const size_t top = random ? pool.size() : std::min(kParentTop, pool.size());
  const size_t parent = rng_.below(top);
  // References from the rest of the pool, or from the top when the pool is no larger than it.
  std::vector<size_t> others;
  for (size_t i = pool.size() > top ? top : 0; i < pool.size(); ++i) {
    if (i != parent) others.push_back(i);
  }
  shuffle(others, rng_);
  Plan plan{island, pool[parent].arch_id, {}};
  for (size_t i = 0; i < std::min(kReferences, others.size()); ++i) plan.references.push_back(pool[others[i]].arch_id);
  return plan;
}

double ResearcherState::ucb(const Arm& arm, double total_pulls) const {
  if (arm.pulls == 0) return 1e9;  // every arm is tried once first
  return arm.rewards / arm.pulls + kExploration * std::sqrt(2.0 * std::log(std::max(total_pulls, 1.0)) / arm.pulls);
}

// The operators to try, best first. Random: a uniform order. Otherwise ranked by UCB1 over
// their record; with probability insight_probability, an operator that a retrieved insight
// suggests gains that insight's own record (its success rate, starting from one half), so the
// literature tilts the choice and insights that keep failing stop tilting it.
std::vector<ResearcherState::Option> ResearcherState::options(const Plan&, const std::vector<Option>& suggested) {
  std::vector<Option> own;
  for (const auto& op : mutation_operators()) own.push_back(Option{op, "", "", 0});
  shuffle(own, rng_);  // ties (arms never tried) are broken at random
  if (settings_.researcher.strategy == Strategy::Random) return own;
  const bool follow_insights = !suggested.empty() && rng_.chance(settings_.researcher.insight_probability);
  for (auto& o : own) {
    o.score = ucb(operator_arms_[o.op], operator_pulls_);
    if (!follow_insights) continue;
    double best = 0;
    for (const auto& s : suggested) {
      if (s.op != o.op) continue;
      const Arm& insight = insight_arms_[s.insight_id];
      const double value = kInsightWeight * (insight.rewards + 1.0) / (insight.pulls + 2.0);
      if (value <= best) continue;
      best = value;
      o.insight_id = s.insight_id;
      o.insight_text = s.insight_text;
    }
    o.score += best;
  }
  std::stable_sort(own.begin(), own.end(), [](const Option& a, const Option& b) { return a.score > b.score; });
  return own;
}

const ResearcherState::Checked& ResearcherState::checked(uint64_t id) {
  auto it = checked_.find(id);
  if (it != checked_.end()) return it->second;
  const Candidate& candidate = candidates_.at(id);
  Checked entry{lang::parse(candidate.program, candidate.label), std::nullopt};
  try {
    entry.types = lang::check(entry.program, settings_.shape);
  } catch (const lang::ProgramError&) {
  }
  return checked_.emplace(id, std::move(entry)).first->second;
}

ResearcherState::Child ResearcherState::find_child(const Plan& plan, const std::vector<Option>& order, int rounds) {
  const Checked& parent = checked(plan.parent);
  std::vector<lang::Program> references;
  std::vector<std::optional<std::vector<lang::Type>>> reference_types;
  for (uint64_t id : plan.references) {
    const Checked& r = checked(id);
    references.push_back(r.program);
    reference_types.push_back(r.types);
  }
  if (!parent.types) throw std::logic_error("researcher: parent " + candidates_.at(plan.parent).label + " does not type-check");
  const MutationParent mutation_parent(parent.program, *parent.types, settings_.shape, std::move(references), std::move(reference_types));
  Child child;
  for (int round = 0; round < rounds && !child.is_new; ++round) {
    for (size_t i = 0; i < order.size() && !child.is_new; ++i) {
      std::optional<Mutation> mutation = mutate(order[i].op, mutation_parent, rng_);
      if (!mutation) continue;
      std::string hash = lang::algebraic_hash(mutation->child);
      const bool is_new = !proposed_hashes_.count(hash);
      if (!child.mutation || is_new) child = Child{std::move(mutation), std::move(hash), i, is_new};
    }
  }
  return child;
}

void ResearcherState::propose_child(Plan plan, const std::vector<Option>& suggested, msg::OutboxWriter& out, const std::string& why) {
  // A child that computes what an earlier proposal computes would only reuse that result: take
  // the first option that makes a new one, trying every option again at other random sites for a
  // few rounds. A parent none of whose children is new anymore gives way to the next program of
  // the pools, so that a stagnant pool cannot keep the campaign proposing duplicates forever;
  // only when no program has a new child is a duplicate proposed.
  // A parent found exhausted once is not searched again, which bounds the cost of a stagnant pool.
  const std::vector<Option> order = options(plan, suggested);
  Child chosen = find_child(plan, order, exhausted_.count(plan.parent) ? 1 : kMutationRounds);
  if (!chosen.is_new) exhausted_.insert(plan.parent);
  for (size_t island = 0; island < pools_.size() && !chosen.is_new; ++island) {
    for (size_t i = 0; i < pools_[island].size() && !chosen.is_new; ++i) {
      Plan other = plan;
      other.parent = pools_[island][i].arch_id;
      if (exhausted_.count(other.parent)) continue;
      Child child = find_child(other, order, 1);
      if (!child.is_new) {
        exhausted_.insert(other.parent);
        continue;
      }
      chosen = std::move(child);
      plan = other;
    }
  }
  const Candidate& parent = candidates_.at(plan.parent);
  if (!chosen.mutation) throw std::logic_error("researcher: no mutation operator applies to " + parent.label);
  std::optional<Mutation>& mutation = chosen.mutation;
  proposed_hashes_.insert(chosen.hash);
  const size_t chosen_index = chosen.option;
  const Option& option = order[chosen_index];

  // The statistics the choice was made on, for the motivation, before this proposal counts.
  const Arm record = operator_arms_[option.op];
  ++operator_arms_[option.op].pulls;
  ++operator_pulls_;
  if (!option.insight_id.empty()) {
    ++insight_arms_[option.insight_id].pulls;
    ++insight_pulls_;
  }

  const uint64_t id = next_arch_id_++;
  mutation->child.name = "arch_" + std::to_string(id);
  mutation->child.comments = {"arch " + std::to_string(id) + ": " + option.op + " of " + parent.label};
  const std::string text = lang::print(mutation->child);
  candidates_[id] = Candidate{text, "arch " + std::to_string(id), "", plan.island, plan.parent, option.op, option.insight_id, -1};
  auto proposal = out.send(actor_name::kEngineer).initProposal();
  proposal.setArchId(id);
  const bool crossover = option.op == "graft_reference";
  auto parents = proposal.initParentIds(crossover ? 1 + static_cast<unsigned>(plan.references.size()) : 1);
  parents.set(0, plan.parent);
  for (unsigned i = 0; crossover && i < plan.references.size(); ++i) parents.set(i + 1, plan.references[i]);
  proposal.setProgram(text);
  proposal.setOperator(option.op);

  std::string motivation = why + mutation->description + " of " + parent.label + "; ";
  if (!option.insight_id.empty()) {
    motivation += "following the insight \"" + option.insight_text + "\"";
    proposal.initInsightIds(1).set(0, option.insight_id);
  } else if (settings_.researcher.strategy == Strategy::Random) {
    motivation += "a random mutation (random strategy)";
  } else {
    char stats[96];
    std::snprintf(stats, sizeof stats, "%s improved its parent %.0f times in %.0f tries so far", option.op.c_str(), record.rewards,
                  record.pulls);
    motivation += record.pulls == 0 ? option.op + " had not been tried yet" : std::string(stats);
  }
  motivation += parent.diagnosis.empty() ? "; exploring around a start program" : "; the analyst observed: " + parent.diagnosis;
  if (crossover) {
    motivation += "; reference programs:";
    for (uint64_t r : plan.references) motivation += " " + candidates_.at(r).label;
  }
  proposal.setMotivation(motivation);
}

std::string ResearcherState::describe(uint64_t arch_id) const {
  const Candidate& c = candidates_.at(arch_id);
  std::string text = c.label + " (made by " + c.operator_name + ")";
  if (c.explore_fitness >= 0) {
    char figures[160];
    std::snprintf(figures, sizeof figures, ": explore fitness %.4f, loss %.4f, MQAR recall %.3f", c.explore_fitness, c.loss, c.accuracy);
    text += figures;
  } else {
    text += ": not scored yet";
  }
  text += "\n```asiarch\n" + c.program + "```\n";
  if (!c.diagnosis.empty()) text += "The analyst's diagnosis: " + c.diagnosis + "\n";
  return text;
}

void ResearcherState::ask_llm(const Plan& plan, std::vector<Option> suggested, const std::string& insights, msg::OutboxWriter& out) {
  std::string prompt = "Parent program, to improve on: " + describe(plan.parent);
  if (!plan.references.empty()) {
    prompt += "\nReference programs from the rest of the pool:\n";
    for (uint64_t id : plan.references) prompt += describe(id);
  }
  if (!insights.empty()) prompt += "\nWhat the research literature and this campaign suggest for the diagnosis:\n" + insights;
  prompt +=
      "\nFitness rewards lower language-modelling loss, higher associative recall (MQAR) than the reference baseline, "
      "novelty and a lean design, then speed, memory and state size. Propose one new program that should beat the parent. "
      "Reply in exactly this format:\n"
      "MOTIVATION: <one paragraph: what you change and why>\n"
      "```asiarch\nprogram <name>\n  <statements>\n  return <value>\n```\n";
  LlmPlan conversation{plan, std::move(suggested), {{"system", language_reference()}, {"user", prompt}}, 0, ""};
  send_llm_request(std::move(conversation), out);
}

void ResearcherState::send_llm_request(LlmPlan conversation, msg::OutboxWriter& out) {
  const uint64_t request = next_request_id_++;
  fill_llm_request(out.send(actor_name::kLlm).initLlmRequest(), request, "propose", conversation.plan.parent, settings_.llm,
                   conversation.messages, conversation.attempt);
  waiting_for_llm_[request] = std::move(conversation);
}

void ResearcherState::on_llm_reply(msg::LlmReply::Reader reply, msg::OutboxWriter& out) {
  auto waiting = waiting_for_llm_.find(reply.getRequestId());
  if (waiting == waiting_for_llm_.end()) throw std::logic_error("researcher: LLM reply to an unknown request");
  LlmPlan conversation = std::move(waiting->second);
  waiting_for_llm_.erase(waiting);
  if (!reply.getOk()) {
    return propose_child(conversation.plan, conversation.suggested, out, "LLM failed: " + std::string(reply.getError().cStr()) + "; built-in mutation: ");
  }
  const std::string content = reply.getContent().cStr();
  const ProposalReply parsed = parse_proposal_reply(content);
  std::string problem;
  std::optional<lang::Program> program;
  if (parsed.program.empty()) {
    problem = "the reply has no program in a ```asiarch fenced block";
  } else {
    try {
      program = lang::parse(parsed.program, "llm reply");
      lang::check(*program, settings_.shape, "llm reply");
    } catch (const lang::ProgramError& e) {
      problem = e.what();
      program.reset();
    }
  }
  // A function proposed before would only reuse that result (the engineer's duplicate check):
  // the model is asked for another, as the built-in researcher searches for a new child.
  std::string hash;
  if (program && proposed_hashes_.count(hash = lang::algebraic_hash(*program))) {
    problem = "the program computes the same function as an earlier proposal (up to names and algebraic identities); change what it computes";
    program.reset();
  }
  if (!program) {
    if (conversation.attempt == 0) conversation.first_problem = problem;
    if (conversation.attempt >= settings_.llm.revisions) {
      return propose_child(conversation.plan, conversation.suggested, out,
                           "LLM's program still invalid after " + std::to_string(conversation.attempt) + " revision(s) (" + problem +
                               "); built-in mutation: ");
    }
    conversation.messages.push_back({"assistant", content});
    conversation.messages.push_back({"user", "Your program cannot be used: " + problem +
                                                 "\nReply again in the same format: a MOTIVATION: line, then the whole corrected "
                                                 "program in a ```asiarch fenced block."});
    ++conversation.attempt;
    return send_llm_request(std::move(conversation), out);
  }

  const Plan& plan = conversation.plan;
  const Candidate& parent = candidates_.at(plan.parent);
  const uint64_t id = next_arch_id_++;
  program->name = "arch_" + std::to_string(id);
  program->comments = {"arch " + std::to_string(id) + ": llm proposal from " + parent.label};
  const std::string text = lang::print(*program);
  proposed_hashes_.insert(hash);
  ++operator_arms_["llm"].pulls;
  ++operator_pulls_;
  candidates_[id] = Candidate{text, "arch " + std::to_string(id), "", plan.island, plan.parent, "llm", "", -1};
  auto proposal = out.send(actor_name::kEngineer).initProposal();
  proposal.setArchId(id);
  proposal.initParentIds(1).set(0, plan.parent);
  proposal.setProgram(text);
  proposal.setOperator("llm");
  std::string motivation = parsed.motivation.empty() ? "the model gave no motivation" : parsed.motivation;
  if (conversation.attempt > 0) {
    motivation += " [LLM, after " + std::to_string(conversation.attempt) + " revision(s); first reply: " + conversation.first_problem + "]";
  }
  proposal.setMotivation(motivation);
}

void ResearcherState::credit(const Candidate& child, double reward) {
  operator_arms_[child.operator_name].rewards += reward;
  if (!child.insight_id.empty()) insight_arms_[child.insight_id].rewards += reward;
}

void ResearcherState::record(msg::PoolUpdate::Reader update) {
  auto candidate = candidates_.find(update.getArchId());
  if (update.getFidelity() == msg::Fidelity::VERIFY) {
    if (update.getBreakthrough() && candidate != candidates_.end()) credit(candidate->second, kBreakthroughReward);
    return;  // verify results do not change the pool
  }
  if (in_flight_ == 0) throw std::logic_error("researcher: an outcome arrived for no proposal in flight");
  --in_flight_;
  if (candidate == candidates_.end()) return;
  Candidate& c = candidate->second;
  c.diagnosis = update.getDiagnosis();
  if (update.getOutcome() != msg::Outcome::SCORED) return;
  c.explore_fitness = update.getFitness();
  c.loss = update.getLoss();
  c.accuracy = update.getAccuracy();
  if (c.parent != 0 && c.explore_fitness > candidates_.at(c.parent).explore_fitness) credit(c, 1.0);
  std::vector<PoolEntry>& pool = pools_[c.island];
  const PoolEntry entry{update.getFitness(), update.getArchId()};
  auto before = [](const PoolEntry& a, const PoolEntry& b) { return a.fitness != b.fitness ? a.fitness > b.fitness : a.arch_id < b.arch_id; };
  pool.insert(std::upper_bound(pool.begin(), pool.end(), entry, before), entry);
  if (pool.size() > settings_.pool_size) pool.pop_back();
  if (pools_.size() > 1 && ++scored_ % settings_.researcher.migration_interval == 0) migrate();
}

// Each island's best joins the next island's pool (a ring), so good motifs spread while the
// islands keep searching apart (the island model of genetic programming).
void ResearcherState::migrate() {
  std::vector<std::optional<PoolEntry>> best(pools_.size());
  for (size_t i = 0; i < pools_.size(); ++i) {
    if (!pools_[i].empty()) best[i] = pools_[i].front();
  }
  auto before = [](const PoolEntry& a, const PoolEntry& b) { return a.fitness != b.fitness ? a.fitness > b.fitness : a.arch_id < b.arch_id; };
  for (size_t i = 0; i < pools_.size(); ++i) {
    if (!best[i]) continue;
    std::vector<PoolEntry>& next = pools_[(i + 1) % pools_.size()];
    if (std::any_of(next.begin(), next.end(), [&](const PoolEntry& e) { return e.arch_id == best[i]->arch_id; })) continue;
    next.insert(std::upper_bound(next.begin(), next.end(), *best[i], before), *best[i]);
    if (next.size() > settings_.pool_size) next.pop_back();
  }
}

}  // namespace asiarch
