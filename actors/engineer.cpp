#include "actors/engineer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "actors/mutations.h"
#include "training/training.h"

namespace asiarch {
namespace {

std::map<std::string, int> op_counts(const lang::Program& canonical_program) {
  std::map<std::string, int> counts;
  for (const auto& s : canonical_program.body) ++counts[s.op];
  return counts;
}

// The failed static check of a program, or nullopt when it passes them all.
struct CheckFailure {
  std::string check, reason;
};

std::optional<CheckFailure> static_checks(const lang::Program& program, const lang::ModelShape& shape, const std::vector<int64_t>& widths,
                                          const std::string& file, lang::Figures* figures_out = nullptr) {
  lang::Figures figures;
  try {
    // It must also check at the widths the fidelities train at, or it could not be trained.
    for (int64_t width : widths) lang::check(program, lang::ModelShape{width, shape.context}, file + " at D=" + std::to_string(width));
    figures = lang::derive(program, shape, file);  // checks at the campaign's shape
  } catch (const lang::ProgramError& e) {
    return CheckFailure{"type", e.what()};
  }
  if (figures_out) *figures_out = figures;
  if (!figures.causal) return CheckFailure{"causality", "an operator looks at future tokens (seq_mean or noncausal_conv)"};
  if (!figures.subquadratic) return CheckFailure{"complexity", "FLOPs per token grow with the context length"};
  return std::nullopt;
}

// A multiplicative band: as far below the target as above it.
bool within_budget(int64_t params, int64_t target, double tolerance) {
  const double p = static_cast<double>(params), t = static_cast<double>(target);
  return p >= t / (1.0 + tolerance) && p <= t * (1.0 + tolerance);
}

bool passes(const lang::Program& program, const lang::ModelShape& shape, const std::vector<int64_t>& widths) {
  return !static_checks(program, shape, widths, "repair");
}

const lang::Statement* producer(const lang::Program& program, const std::string& name) {
  for (const auto& s : program.body) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Inserts `op(arg)` right before statement `at` and makes that statement's argument `slot` use it.
void wrap_argument(lang::Program& program, size_t at, size_t slot, const std::string& op, const std::string& base) {
  lang::Statement wrapper;
  wrapper.name = lang::fresh_name(program, base);
  wrapper.op = op;
  wrapper.args = {program.body[at].args[slot]};
  program.body[at].args[slot] = wrapper.name;
  program.body.insert(program.body.begin() + static_cast<std::ptrdiff_t>(at), std::move(wrapper));
}

// A recurrence whose state is a dk x dv matrix: unnormalised keys can grow it without bound.
bool keeps_matrix_state(const std::string& op) {
  const lang::OpInfo* info = lang::find_operator(op);
  return info && info->memory == lang::Memory::Matrix;
}

// add_norm: L2-normalised queries and keys keep a linear-attention state bounded; DeltaNet's
// delta rule diverges without them (Yang et al., 2024, arXiv:2406.06484).
std::optional<Repair> add_norm(const lang::Program& program) {
  lang::Program out = program;
  int added = 0;
  for (size_t i = 0; i < out.body.size(); ++i) {
    if (!keeps_matrix_state(out.body[i].op)) continue;
    for (lang::ArgRole role : {lang::ArgRole::Query, lang::ArgRole::Key}) {
      const size_t slot = *lang::argument_slot(out.body[i].op, role);
      const lang::Statement* p = producer(out, out.body[i].args[slot]);
      if (p && p->op == "l2norm") continue;
      wrap_argument(out, i, slot, "l2norm", role == lang::ArgRole::Query ? "repair_q_norm" : "repair_k_norm");
      ++i;  // the recurrence moved one down
      ++added;
    }
  }
  if (added == 0) return std::nullopt;
  return Repair{out, "add_norm", "L2-normalised the queries and keys of its recurrences (" + std::to_string(added) + " values)"};
}

// bound_decay: a log-space decay g must stay <= 0, or exp(g) grows the state without bound (the
// type checker refuses a decay it cannot show to be <= 0); logsigmoid bounds it as GLA does
// (Yang et al., 2023, arXiv:2312.06635).
std::optional<Repair> bound_decay(const lang::Program& program, const lang::ModelShape& shape) {
  lang::Program out = program;
  int bounded = 0;
  for (size_t i = 0; i < out.body.size(); ++i) {
    const std::optional<size_t> slot = lang::argument_slot(out.body[i].op, lang::ArgRole::Decay);
    if (!slot || lang::provably_non_positive(out, out.body[i].args[*slot], shape)) continue;
    wrap_argument(out, i, *slot, "logsigmoid", "repair_decay");
    ++i;
    ++bounded;
  }
  if (bounded == 0) return std::nullopt;
  return Repair{out, "bound_decay", "bounded the log decay of " + std::to_string(bounded) + " recurrence(s) with logsigmoid (decay <= 0)"};
}

// causal_conv: a centred convolution becomes the causal one of the same length.
std::optional<Repair> causal_form(const lang::Program& program, const lang::ModelShape& shape, const std::vector<int64_t>& widths) {
  lang::Program out = program;
  int replaced = 0;
  for (auto& s : out.body) {
    if (s.op != "noncausal_conv") continue;
    s.op = "short_conv";
    ++replaced;
  }
  if (replaced == 0 || !passes(out, shape, widths)) return std::nullopt;
  return Repair{out, "causal_conv", "replaced " + std::to_string(replaced) + " non-causal convolution(s) by causal ones of the same length"};
}

// sliding_window: full softmax attention becomes its causal bounded form, softmax over the last
// 64 tokens (as Based and SWA hybrids do, Arora et al., 2024, arXiv:2402.18668).
std::optional<Repair> sliding_window(const lang::Program& program, const lang::ModelShape& shape, const std::vector<int64_t>& widths) {
  lang::Program out = program;
  int replaced = 0;
  for (auto& s : out.body) {
    if (s.op != "softmax_attn") continue;
    s.op = "swa";
    s.attrs = {lang::Attr{"window", lang::Dim{false, 64, 1}}};
    ++replaced;
  }
  if (replaced == 0 || !passes(out, shape, widths)) return std::nullopt;
  return Repair{out, "sliding_window", "replaced full softmax attention by sliding-window attention over 64 tokens"};
}

// The linears whose output reaches the result through shape-preserving ops only: their width is
// the model's and is never resized.
std::set<std::string> output_side_linears(const lang::Program& program) {
  std::set<std::string> out, visited;
  std::vector<std::string> pending{program.result};
  while (!pending.empty()) {
    const std::string name = pending.back();
    pending.pop_back();
    if (!visited.insert(name).second) continue;
    const lang::Statement* s = producer(program, name);
    if (!s) continue;
    if (s->op == "linear") {
      out.insert(name);
      continue;
    }
    const lang::OpInfo* info = lang::find_operator(s->op);
    if (!info) continue;
    const auto c = info->op_class;
    if (c == lang::OpClass::Elementwise || c == lang::OpClass::Binary || c == lang::OpClass::Norm || c == lang::OpClass::Learned ||
        c == lang::OpClass::Routing) {
      for (const auto& arg : s->args) pending.push_back(arg);
    }
  }
  return out;
}

// shrink_width / grow_width: every inner projection of model width scaled by one factor, the one
// whose parameter count lands in the budget closest to the target.
std::optional<Repair> resize(const lang::Program& program, const lang::ModelShape& shape, const std::vector<int64_t>& widths,
                             int64_t target, double tolerance) {
  const int64_t params = lang::derive(program, shape).params;
  const bool shrink = params > target;
  static const std::vector<std::pair<int64_t, int64_t>> kShrink = {{3, 4}, {2, 3}, {1, 2}, {1, 3}, {1, 4}};
  static const std::vector<std::pair<int64_t, int64_t>> kGrow = {{4, 3}, {3, 2}, {2, 1}, {3, 1}, {4, 1}};
  const std::set<std::string> fixed = output_side_linears(program);
  std::optional<Repair> best;
  double best_distance = INFINITY;
  for (const auto& [num, den] : shrink ? kShrink : kGrow) {
    lang::Program out = program;
    int resized = 0;
    for (auto& s : out.body) {
      if (s.op != "linear" || fixed.count(s.name)) continue;
      for (auto& attr : s.attrs) {
        lang::Dim* dim = std::get_if<lang::Dim>(&attr.value);
        if (attr.key != "out" || !dim || !dim->of_model_width) continue;
        dim->num *= num;
        dim->den *= den;
        const int64_t g = std::gcd(dim->num, dim->den);
        dim->num /= g;
        dim->den /= g;
        ++resized;
      }
    }
    if (resized == 0 || !passes(out, shape, widths)) continue;
    const int64_t resized_params = lang::derive(out, shape).params;
    if (!within_budget(resized_params, target, tolerance)) continue;
    const double distance = std::fabs(std::log(static_cast<double>(resized_params) / static_cast<double>(target)));
    if (distance < best_distance) {
      best_distance = distance;
      best = Repair{out, shrink ? "shrink_width" : "grow_width",
                    "scaled " + std::to_string(resized) + " inner projection width(s) by " + std::to_string(num) + "/" + std::to_string(den) +
                        ": " + std::to_string(params) + " -> " + std::to_string(resized_params) + " parameters (target " +
                        std::to_string(target) + ")"};
    }
  }
  return best;
}

}  // namespace

std::optional<Repair> repair_for_check(const lang::Program& program, const std::string& check, const lang::ModelShape& shape,
                                       const std::vector<int64_t>& widths, int64_t param_target, double tolerance) {
  if (check == "causality") return causal_form(program, shape, widths);
  if (check == "complexity") return sliding_window(program, shape, widths);
  if (check == "parameters") return resize(program, shape, widths, param_target, tolerance);
  return std::nullopt;
}

std::optional<Repair> repair_for_failure(const lang::Program& program, msg::FailureKind kind, const lang::ModelShape& shape,
                                         const std::vector<int64_t>& widths, int64_t param_target, double tolerance) {
  switch (kind) {
    case msg::FailureKind::CAUSALITY: return repair_for_check(program, "causality", shape, widths, param_target, tolerance);
    case msg::FailureKind::COMPLEXITY: return repair_for_check(program, "complexity", shape, widths, param_target, tolerance);
    case msg::FailureKind::PARAMETERS: return repair_for_check(program, "parameters", shape, widths, param_target, tolerance);
    case msg::FailureKind::NUMERICAL: break;
    default: return std::nullopt;  // a failure of the model's construction, of the machine, or a cancelled job
  }
  for (auto repair : {add_norm(program), bound_decay(program, shape)}) {
    if (repair && passes(repair->program, shape, widths)) return repair;
  }
  // Smaller steps: the first remedy for a loss that blows up (Goodfellow et al., Deep Learning, 8.2).
  return Repair{program, "lower_lr", "the same program retried at half the learning rate", 0.5};
}

EngineerState::Settings EngineerState::Settings::of(const Scenario& scenario) {
  Settings settings;
  settings.engineer = scenario.engineer;
  settings.shape = {scenario.model.d_model, scenario.model.context};
  settings.param_target = scenario.model.param_target;
  if (settings.param_target == 0) {
    const lang::Baseline* reference = lang::find_baseline(scenario.campaign.reference);
    settings.param_target = lang::derive(lang::parse(reference->text, reference->name), settings.shape).params;
  }
  settings.param_tolerance = scenario.model.param_tolerance;
  settings.widths = {scenario.fidelity.explore.d_model, scenario.fidelity.verify.d_model};
  settings.max_ablations = scenario.analyst.max_ablations;
  settings.judge = scenario.llm.judge;
  if (scenario.mode == Mode::Live) {
    settings.probe.emplace();
    settings.probe->d_model = scenario.fidelity.explore.d_model;
    settings.probe->threads = scenario.live.threads;
  }
  return settings;
}

EngineerState::EngineerState(Settings settings) : settings_(std::move(settings)) {}

void EngineerState::handle(msg::Event::Reader event, msg::OutboxWriter& out) {
  auto payload = event.getPayload();
  switch (payload.which()) {
    case msg::Payload::PROPOSAL:
      review(payload.getProposal(), out);
      break;
    case msg::Payload::PROMOTION: {
      auto promotion = payload.getPromotion();
      const Accepted& arch = accepted_.at(promotion.getArchId());
      for (uint32_t r = 0; r < promotion.getReplicates(); ++r) {
        submit(promotion.getArchId(), arch, msg::Fidelity::VERIFY, promotion.getFirstReplicate() + r, out);
      }
      break;
    }
    case msg::Payload::TRAIN_FAILURE:
      on_failure(payload.getTrainFailure(), out);
      break;
    case msg::Payload::ABLATION_REQUEST:
      ablate(payload.getAblationRequest().getArchId(), out);
      break;
    default:
      throw std::logic_error("engineer: unexpected " + msg::kind_name(payload.which()));
  }
}

void EngineerState::review(msg::Proposal::Reader proposal, msg::OutboxWriter& out) {
  const uint64_t id = proposal.getArchId();
  const uint64_t repair_of = proposal.getRepairOf();
  const uint64_t ablation_of = proposal.getAblationOf();
  if (id > kOwnIdBase && repair_of == 0 && ablation_of == 0) {
    throw std::logic_error("engineer: proposal id " + std::to_string(id) + " is in the range of the engineer's own architectures");
  }
  const bool baseline = std::string(proposal.getOperator().cStr()) == "baseline";
  std::vector<uint64_t> parents;
  for (uint64_t parent : proposal.getParentIds()) parents.push_back(parent);
  Attempt attempt{0, proposal.getLrScale() > 0 ? proposal.getLrScale() : 1.0, parents};
  if (repair_of != 0) {
    const Attempt& before = attempts_.at(repair_of);
    attempt.depth = before.depth + 1;
    attempt.idea_parents = before.idea_parents;
  }
  attempts_[id] = attempt;

  lang::Program program;
  const std::string file = "arch " + std::to_string(id);
  auto reject = [&](const std::string& check, const std::string& reason) {
    if (ablation_of != 0) throw std::logic_error("engineer: ablation " + file + " fails the " + check + " check: " + reason);
    if (check != "parse" && !baseline &&
        propose_repair(id, repair_for_check(program, check, settings_.shape, settings_.widths, settings_.param_target, settings_.param_tolerance),
                       "the " + check + " check (" + reason + ")", out)) {
      return;
    }
    auto r = out.send(actor_name::kAnalyst).initRejection();
    r.setArchId(id);
    r.setCheck(check);
    r.setReason(reason);
  };
  try {
    program = lang::parse(proposal.getProgram().cStr(), file);
  } catch (const lang::ProgramError& e) {
    return reject("parse", e.what());
  }
  lang::Figures figures;
  if (auto failed = static_checks(program, settings_.shape, settings_.widths, file, &figures)) return reject(failed->check, failed->reason);
  if (!baseline && ablation_of == 0 && !within_budget(figures.params, settings_.param_target, settings_.param_tolerance)) {
    const double t = static_cast<double>(settings_.param_target);
    return reject("parameters", std::to_string(figures.params) + " mixer parameters per layer, outside the budget " +
                                    std::to_string(std::llround(t / (1.0 + settings_.param_tolerance))) + " to " +
                                    std::to_string(std::llround(t * (1.0 + settings_.param_tolerance))));
  }
  // The canonical form is computed once for the operator counts and both hashes.
  const lang::Program canonical = lang::canonical(program);
  auto ops = op_counts(canonical);
  const double novelty_score = baseline ? 0.0 : novelty(ops, attempt.idea_parents);
  Accepted arch{proposal.getProgram().cStr(), program.name, std::move(ops), proposal.getOperator().cStr(), baseline, parents, figures,
                lang::structural_hash_of_canonical(canonical), "", novelty_score, repair_of, ablation_of, attempt.lr_scale};
  // Ablations are measurements of a known program, and a retry at a lower learning rate is the
  // same program again: neither is a duplicate to skip.
  const bool retry = repair_of != 0 && accepted_.count(repair_of) && accepted_.at(repair_of).hash == arch.hash;
  if (ablation_of == 0 && !retry) {
    auto duplicate = [&](uint64_t same_as, const char* kind) {
      auto d = out.send(actor_name::kAnalyst).initDuplicate();
      d.setArchId(id);
      d.setSameAs(same_as);
      d.setKind(kind);
      fill_ref(d.initRef(), id, arch, msg::Fidelity::EXPLORE);
    };
    if (auto earlier = seen_.find(arch.hash); earlier != seen_.end()) return duplicate(earlier->second, "structural");
    arch.functional_hash = functional_hash(program, canonical);
    if (auto earlier = functions_seen_.find(arch.functional_hash); !arch.functional_hash.empty() && earlier != functions_seen_.end()) {
      return duplicate(earlier->second, "functional");
    }
    seen_.emplace(arch.hash, id);
    if (!arch.functional_hash.empty()) functions_seen_.emplace(arch.functional_hash, id);
  }
  submit(id, accepted_[id] = std::move(arch), msg::Fidelity::EXPLORE, 0, out);
}

std::string EngineerState::functional_hash(const lang::Program& program, const lang::Program& canonical) const {
  if (!settings_.probe) return lang::algebraic_hash_of_canonical(canonical);
  try {
    return training::functional_hash(program, *settings_.probe);
  } catch (const std::exception&) {
    // A model that cannot be probed cannot be compared; its training will say what is wrong.
    return "";
  }
}

bool EngineerState::propose_repair(uint64_t arch_id, const std::optional<Repair>& repair, const std::string& failure,
                                   msg::OutboxWriter& out) {
  const Attempt& attempt = attempts_.at(arch_id);
  if (!repair || attempt.depth >= settings_.engineer.repair_attempts) return false;
  const uint64_t id = next_own_id_++;
  lang::Program program = repair->program;
  program.name = "arch_" + std::to_string(id);
  program.comments = {"arch " + std::to_string(id) + ": repair:" + repair->rule + " of arch " + std::to_string(arch_id)};
  auto p = out.send(actor_name::kEngineer).initProposal();
  p.setArchId(id);
  p.initParentIds(1).set(0, arch_id);
  p.setProgram(lang::print(program));
  p.setOperator("repair:" + repair->rule);
  p.setMotivation("repair " + std::to_string(attempt.depth + 1) + " of " + std::to_string(settings_.engineer.repair_attempts) + ": arch " +
                  std::to_string(arch_id) + " failed " + failure + "; " + repair->description);
  p.setRepairOf(arch_id);
  p.setLrScale(attempt.lr_scale * repair->lr_scale);
  return true;
}

void EngineerState::on_failure(msg::TrainFailure::Reader failure, msg::OutboxWriter& out) {
  auto result = failure.getResult();
  const uint64_t id = result.getRef().getArchId();
  const lang::Program program = lang::parse(accepted_.at(id).program, "arch " + std::to_string(id));
  const std::string reason = result.getFailure().cStr();
  const auto repair = repair_for_failure(program, result.getFailureKind(), settings_.shape, settings_.widths, settings_.param_target, settings_.param_tolerance);
  if (propose_repair(id, repair, "training (" + reason + ")", out)) return;
  out.send(actor_name::kAnalyst).initUnrepaired().setResult(result);
}

void EngineerState::ablate(uint64_t arch_id, msg::OutboxWriter& out) {
  const Accepted& arch = accepted_.at(arch_id);
  const lang::Program program = lang::parse(arch.program, "arch " + std::to_string(arch_id));
  uint32_t jobs = 0;
  for (Mutation& removal : component_removals(program, settings_.shape)) {
    if (jobs >= settings_.max_ablations) break;
    if (!passes(removal.child, settings_.shape, settings_.widths)) continue;
    const uint64_t id = next_own_id_++;
    removal.child.name = "arch_" + std::to_string(id);
    removal.child.comments = {"arch " + std::to_string(id) + ": ablation of arch " + std::to_string(arch_id) + ": " + removal.description};
    auto p = out.send(actor_name::kEngineer).initProposal();
    p.setArchId(id);
    p.initParentIds(1).set(0, arch_id);
    p.setProgram(lang::print(removal.child));
    p.setOperator("ablation:" + removal.description);
    p.setMotivation("ablation of breakthrough arch " + std::to_string(arch_id) + ": " + removal.description +
                    "; its fitness drop is the component's contribution");
    p.setAblationOf(arch_id);
    ++jobs;
  }
  auto plan = out.send(actor_name::kAnalyst).initAblationPlan();
  plan.setArchId(arch_id);
  plan.setJobs(jobs);
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

void EngineerState::fill_ref(msg::JobRef::Builder ref, uint64_t arch_id, const Accepted& arch, msg::Fidelity fidelity) const {
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
  ref.setRepairOf(arch.repair_of);
  ref.setAblationOf(arch.ablation_of);
  if (arch.lr_scale != 1.0) ref.setLrScale(arch.lr_scale);
  ref.setFunctionalHash(arch.functional_hash);
  if (settings_.judge) ref.setProgram(arch.program);  // the LLM judge reads it (analyst.h)
}

void EngineerState::submit(uint64_t arch_id, const Accepted& arch, msg::Fidelity fidelity, uint32_t replicate, msg::OutboxWriter& out) {
  auto job = out.send(actor_name::kCoordinator).initTrainJob();
  auto ref = job.initRef();
  fill_ref(ref, arch_id, arch, fidelity);
  ref.setJobId(next_job_id_++);
  ref.setReplicate(replicate);
  job.setProgram(arch.program);
}

}  // namespace asiarch
