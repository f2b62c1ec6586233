#include "actors/engineer.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace asiarch {
namespace {

std::map<std::string, int> op_counts(const lang::Program& program) {
  std::map<std::string, int> counts;
  for (const auto& s : lang::canonical(program).body) ++counts[s.op];
  return counts;
}

}  // namespace

EngineerState::EngineerState(const Scenario& scenario)
    : scenario_(scenario), shape_{scenario.d_model, scenario.context}, param_target_(scenario.param_target) {
  if (param_target_ == 0) {
    const lang::Baseline* reference = lang::find_baseline(scenario.reference);
    param_target_ = lang::derive(lang::parse(reference->text, reference->name), shape_).params;
  }
}

void EngineerState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  switch (payload.which()) {
    case msg::Payload::PROPOSAL:
      review(payload.getProposal(), out);
      break;
    case msg::Payload::PROMOTION:
      submit(payload.getPromotion().getArchId(), accepted_.at(payload.getPromotion().getArchId()), msg::Fidelity::VERIFY, out);
      break;
    default:
      throw std::logic_error("engineer: unexpected " + msg::kind_name(payload.which()));
  }
}

void EngineerState::review(msg::Proposal::Reader proposal, msg::OutboxWriter& out) {
  const uint64_t id = proposal.getArchId();
  const bool baseline = std::string(proposal.getOperator().cStr()) == "baseline";
  auto reject = [&](const char* check, const std::string& reason) {
    auto r = out.send(actor_name::kAnalyst).initRejection();
    r.setArchId(id);
    r.setCheck(check);
    r.setReason(reason);
  };
  lang::Program program;
  lang::Figures figures;
  const std::string file = "arch " + std::to_string(id);
  try {
    program = lang::parse(proposal.getProgram().cStr(), file);
  } catch (const lang::ProgramError& e) {
    return reject("parse", e.what());
  }
  try {
    // It must also check at the widths the fidelities train at, or it could not be trained.
    for (const FidelitySpec* fidelity : {&scenario_.explore, &scenario_.verify}) {
      lang::check(program, lang::ModelShape{fidelity->d_model, scenario_.context}, file + " at D=" + std::to_string(fidelity->d_model));
    }
    lang::check(program, shape_, file);
    figures = lang::derive(program, shape_);
  } catch (const lang::ProgramError& e) {
    return reject("type", e.what());
  }
  if (!figures.causal) return reject("causality", "an operator looks at future tokens (seq_mean or noncausal_conv)");
  if (!figures.subquadratic) return reject("complexity", "FLOPs per token grow with the context length");
  if (!baseline) {
    // A multiplicative band: as far below the target as above it.
    const double high = static_cast<double>(param_target_) * (1.0 + scenario_.param_tolerance);
    const double low = static_cast<double>(param_target_) / (1.0 + scenario_.param_tolerance);
    const double params = static_cast<double>(figures.params);
    if (params < low || params > high) {
      return reject("parameters", std::to_string(figures.params) + " mixer parameters per layer, outside the budget " +
                                      std::to_string(std::llround(low)) + " to " + std::to_string(std::llround(high)));
    }
  }
  const std::string hash = lang::structural_hash(program);
  if (auto earlier = seen_.find(hash); earlier != seen_.end()) {
    return reject("duplicate", "same structure as arch " + std::to_string(earlier->second));
  }
  seen_[hash] = id;
  std::vector<uint64_t> parents;
  for (uint64_t parent : proposal.getParentIds()) parents.push_back(parent);
  auto ops = op_counts(program);
  const double novelty_score = baseline ? 0.0 : novelty(ops, parents);
  auto& arch = accepted_[id] = Accepted{proposal.getProgram().cStr(), program.name, std::move(ops), proposal.getOperator().cStr(),
                                        baseline, parents, figures, hash, novelty_score};
  submit(id, arch, msg::Fidelity::EXPLORE, out);
}

// 1 - weighted Jaccard similarity of operator counts with the closest parent.
double EngineerState::novelty(const std::map<std::string, int>& ops, const std::vector<uint64_t>& parents) const {
  double best_similarity = 0;
  for (uint64_t parent : parents) {
    auto p = accepted_.find(parent);
    if (p == accepted_.end()) continue;
    const auto& parent_ops = p->second.op_counts;
    auto count = [](const std::map<std::string, int>& counts, const std::string& op) {
      auto it = counts.find(op);
      return it == counts.end() ? 0 : it->second;
    };
    std::set<std::string> names;
    for (const auto& [op, n] : ops) names.insert(op);
    for (const auto& [op, n] : parent_ops) names.insert(op);
    double shared = 0, total = 0;
    for (const auto& op : names) {
      shared += std::min(count(ops, op), count(parent_ops, op));
      total += std::max(count(ops, op), count(parent_ops, op));
    }
    best_similarity = std::max(best_similarity, total > 0 ? shared / total : 1.0);
  }
  return 1.0 - best_similarity;
}

void EngineerState::submit(uint64_t arch_id, const Accepted& arch, msg::Fidelity fidelity, msg::OutboxWriter& out) {
  auto job = out.send(actor_name::kCoordinator).initTrainJob();
  auto ref = job.initRef();
  ref.setJobId(arch_id * 2 + (fidelity == msg::Fidelity::VERIFY ? 1 : 0));
  ref.setArchId(arch_id);
  ref.setFidelity(fidelity);
  ref.setBaseline(arch.baseline);
  auto parents = ref.initParentIds(static_cast<unsigned>(arch.parents.size()));
  for (unsigned i = 0; i < arch.parents.size(); ++i) parents.set(i, arch.parents[i]);
  ref.setStructuralHash(arch.hash);
  ref.setParams(arch.figures.params);
  ref.setFlopsPerToken(arch.figures.flops_per_token);
  ref.setStateSize(arch.figures.state_size);
  ref.setNovelty(arch.novelty);
  int statements = 0;
  for (const auto& [op, n] : arch.op_counts) statements += n;
  ref.setStatements(static_cast<uint32_t>(statements));
  ref.setOperator(arch.operator_name);
  if (arch.baseline) ref.setBaselineName(arch.name);
  job.setProgram(arch.program);
}

}  // namespace asiarch
