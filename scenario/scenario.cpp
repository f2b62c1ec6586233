#include "scenario/scenario.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/suggest.h"
#include "lang/program.h"

namespace asiarch {
namespace {

const char* toml_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// Reads the keys of one TOML table into typed fields, checking type and range, and then
// rejects every key it was not asked for.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string section, const std::string& file)
      : table_(table), section_(std::move(section)), file_(file) {}

  [[noreturn]] void fail(const toml::source_region& where, const std::string& message) const {
    throw ScenarioError(file_ + ":" + std::to_string(where.begin.line) + ": " + message);
  }

  const toml::node* find(const char* key) {
    known_.push_back(key);
    return table_.get(key);
  }

  std::string where() const { return section_.empty() ? "at the top level" : "in [" + section_ + "]"; }

  template <typename T>
  void number(const char* key, T& out, T min, T max, const char* example) {
    const toml::node* node = find(key);
    if (!node) return;
    double value;
    if (auto i = node->as_integer()) {
      value = static_cast<double>(i->get());
    } else if (auto f = node->as_floating_point(); f && std::is_floating_point_v<T>) {
      value = f->get();
    } else {
      fail(node->source(), std::string("'") + key + "' " + where() + " must be " +
                               (std::is_floating_point_v<T> ? "a number" : "an integer") + ", not " +
                               toml_type_name(*node) + "; write for example " + key + " = " + example);
    }
    if (!(value >= static_cast<double>(min) && value <= static_cast<double>(max))) {
      std::ostringstream range;
      range << min << " to " << max;
      fail(node->source(), std::string("'") + key + "' " + where() + " is out of range; it takes " + range.str() +
                               ", for example " + key + " = " + example);
    }
    out = static_cast<T>(value);
  }

  void text(const char* key, std::string& out, const char* example) {
    const toml::node* node = find(key);
    if (!node) return;
    auto s = node->as_string();
    if (!s) fail(node->source(), std::string("'") + key + "' " + where() + " must be a string, not " +
                                     toml_type_name(*node) + "; write for example " + key + " = " + example);
    out = s->get();
  }

  // One of the words of `choices` ({word, value}), or an error that names the key's line, says
  // the word is not a `noun` and how to write one (`hint`).
  template <typename T>
  void choice(const char* key, T& out, std::initializer_list<std::pair<const char*, T>> choices, const char* noun, const std::string& hint) {
    const toml::node* node = find(key);
    if (!node) return;
    std::string word;
    const std::string example = std::string("\"").append(choices.begin()->first).append("\"");
    text(key, word, example.c_str());
    for (const auto& [name, value] : choices) {
      if (word == name) {
        out = value;
        return;
      }
    }
    fail(node->source(), std::string(key) + " \"" + word + "\" is not a " + noun + "; write " + hint);
  }

  void flag(const char* key, bool& out, const char* example) {
    const toml::node* node = find(key);
    if (!node) return;
    auto b = node->as_boolean();
    if (!b) fail(node->source(), std::string("'") + key + "' " + where() + " must be true or false, not " + toml_type_name(*node) +
                                     "; write for example " + key + " = " + example);
    out = b->get();
  }

  void text_list(const char* key, std::vector<std::string>& out, const char* example) {
    const toml::node* node = find(key);
    if (!node) return;
    auto array = node->as_array();
    std::vector<std::string> values;
    if (array) {
      for (const auto& item : *array) {
        if (auto s = item.as_string()) values.push_back(s->get());
        else array = nullptr;
      }
    }
    if (!array) fail(node->source(), std::string("'") + key + "' " + where() + " must be an array of strings; write for example " + key + " = " + example);
    out = std::move(values);
  }

  // An integer or an array of integers, each in [min, max]; an array needs at least one.
  void integer_list(const char* key, std::vector<int64_t>& out, int64_t min, int64_t max, const char* example) {
    const toml::node* node = find(key);
    if (!node) return;
    std::vector<int64_t> values;
    bool valid = true;
    if (auto i = node->as_integer()) values.push_back(i->get());
    else if (auto array = node->as_array(); array && !array->empty()) {
      for (const auto& item : *array) {
        if (auto v = item.as_integer()) values.push_back(v->get());
        else valid = false;
      }
    } else valid = false;
    if (!valid) fail(node->source(), std::string("'") + key + "' " + where() + " must be an integer or a non-empty array of integers; write for example " + key + " = " + example);
    for (int64_t v : values) {
      if (v < min || v > max) {
        fail(node->source(), std::string("'") + key + "' " + where() + " holds " + std::to_string(v) + ", out of range; it takes " +
                                 std::to_string(min) + " to " + std::to_string(max) + ", for example " + key + " = " + example);
      }
    }
    out = std::move(values);
  }

  const toml::table* subtable(const char* key) {
    const toml::node* node = find(key);
    if (!node) return nullptr;
    if (!node->as_table()) fail(node->source(), std::string("'") + key + "' " + where() + " must be a table; write it as [" +
                                                    (section_.empty() ? "" : section_ + ".") + key + "]");
    return node->as_table();
  }

  const toml::source_region& source_of(const char* key) const { return table_.get(key)->source(); }

  // Every key not read above is an error: a typo must not silently fall back to a default.
  void reject_unknown_keys() const {
    for (const auto& [key, node] : table_) {
      const std::string name(key.str());
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      const std::string suggestion = closest_match(name, known_);
      std::string message = "unknown key '" + name + "' " + where() + "; ";
      if (!suggestion.empty()) message += "did you mean '" + suggestion + "'?";
      else {
        message += "the keys here are";
        for (const auto& k : known_) message += " " + k;
      }
      fail(key.source(), message + " (see scenarios/README.md)");
    }
  }

 private:
  const toml::table& table_;
  std::string section_;
  const std::string& file_;
  std::vector<std::string> known_;
};

void read_fidelity_spec(TableReader& parent, const char* key, FidelitySpec& spec, const std::string& file) {
  const toml::table* table = parent.subtable(key);
  if (!table) return;
  TableReader r(*table, std::string("fidelity.") + key, file);
  r.number<int64_t>("d_model", spec.d_model, 8, 1 << 16, "512");
  r.number<int64_t>("layers", spec.layers, 1, 1024, "8");
  r.number<double>("tokens", spec.tokens, 1.0, 1e15, "1.0e9");
  r.number<int64_t>("steps", spec.steps, 0, 100000000, "300");
  r.number<int64_t>("batch", spec.batch, 0, 1000000, "32");
  r.number<double>("lr", spec.lr, 0.0, 10.0, "3.0e-3");
  if (std::string(key) == "verify") {
    r.number<uint32_t>("seeds", spec.seeds, 2, 1000, "3");
    r.number<uint32_t>("replication_seeds", spec.replication_seeds, 2, 1000, "5");
  }
  r.reject_unknown_keys();
}

}  // namespace

const char* name_of(Mode mode) { return mode == Mode::Live ? "live" : "simulation"; }

const char* name_of(Strategy strategy) {
  switch (strategy) {
    case Strategy::Full: return "full";
    case Strategy::Random: return "random";
    case Strategy::NoCognition: return "no_cognition";
  }
  return "";
}

namespace {

constexpr auto kMaxU64 = std::numeric_limits<int64_t>::max();
constexpr double kHuge = 1e300;

// Each table of the file has its reader: its keys, their ranges, and the checks within the
// table. Checks across tables are parse_scenario's.

// [campaign]
void read_campaign(const toml::table& t, CampaignSection& campaign, const std::string& file) {
  TableReader r(t, "campaign", file);
  r.number<uint64_t>("max_experiments", campaign.max_experiments, 1, 100000000, "100");
  r.number<double>("max_gpu_hours", campaign.max_gpu_hours, 0.0, kHuge, "20000.0");
  r.number<uint32_t>("gpu_slots", campaign.gpu_slots, 0, 100000, "4");
  r.text_list("start", campaign.start, "[\"deltanet\", \"gated_deltanet\"]");
  r.text("reference", campaign.reference, "\"deltanet\"");
  r.number<uint32_t>("pool_size", campaign.pool_size, 1, 100000, "50");
  r.number<uint64_t>("max_events", campaign.max_events, 0, kMaxU64, "100000");
  r.reject_unknown_keys();
  auto check_name = [&](const std::string& name, const char* key) {
    const lang::Baseline* b = lang::find_baseline(name);
    if (b && !b->reference_only) return;
    std::string known;
    for (const auto& baseline : lang::baselines()) {
      if (!baseline.reference_only) known += (known.empty() ? "" : ", ") + baseline.name;
    }
    throw ScenarioError(file + ":" + std::to_string(r.source_of(key).begin.line) + ": '" + name +
                        (b ? "' is a reference only (it fails the complexity check)" : "' is not a shipped program") +
                        "; use one of " + known + " (see `asiarch arch list`)");
  };
  // Called only when 'start' was given: the default list is neither empty nor repeats a name.
  const auto start_line = [&] { return std::to_string(r.source_of("start").begin.line); };
  if (campaign.start.empty()) throw ScenarioError(file + ":" + start_line() + ": 'start' is empty; name at least one program, e.g. start = [\"deltanet\"]");
  std::set<std::string> named;
  for (const auto& name : campaign.start) {
    if (!named.insert(name).second) throw ScenarioError(file + ":" + start_line() + ": 'start' names '" + name + "' twice; name each program once");
    check_name(name, "start");
  }
  if (t.get("reference")) check_name(campaign.reference, "reference");
  if (std::find(campaign.start.begin(), campaign.start.end(), campaign.reference) == campaign.start.end()) {
    const char* key = t.get("reference") ? "reference" : "start";
    throw ScenarioError(file + ":" + std::to_string(r.source_of(key).begin.line) + ": the reference baseline '" + campaign.reference +
                        "' is not in 'start'; add it to start or set reference to one of the start programs");
  }
}

// [model]
void read_model(const toml::table& t, ModelSection& model, const std::string& file) {
  TableReader r(t, "model", file);
  r.number<int64_t>("d_model", model.d_model, 8, 1 << 16, "256");
  r.number<int64_t>("context", model.context, 16, 1 << 24, "2048");
  r.number<int64_t>("param_target", model.param_target, 0, kMaxU64, "0");
  r.number<double>("param_tolerance", model.param_tolerance, 0.0, 100.0, "0.5");
  r.reject_unknown_keys();
}

// [fidelity]
void read_fidelity(const toml::table& t, FidelitySection& fidelity, const std::string& file) {
  TableReader r(t, "fidelity", file);
  read_fidelity_spec(r, "explore", fidelity.explore, file);
  read_fidelity_spec(r, "verify", fidelity.verify, file);
  r.number<uint32_t>("promote_top", fidelity.promote_top, 0, 1000000, "10");
  r.reject_unknown_keys();
}

// [researcher]
void read_researcher(const toml::table& t, ResearcherSection& researcher, const std::string& file) {
  TableReader r(t, "researcher", file);
  r.number<double>("insight_probability", researcher.insight_probability, 0.0, 1.0, "0.5");
  r.number<uint32_t>("insights_k", researcher.insights_k, 1, 100, "3");
  r.choice("strategy", researcher.strategy, {{"full", Strategy::Full}, {"random", Strategy::Random}, {"no_cognition", Strategy::NoCognition}}, "strategy",
           "strategy = \"full\", \"random\" or \"no_cognition\"");
  r.choice("selection", researcher.selection, {{"paper", Selection::Paper}, {"islands", Selection::Islands}}, "parent selection",
           "selection = \"paper\" or selection = \"islands\" (the parent selection)");
  r.number<uint32_t>("islands", researcher.islands, 1, 1000, "4");
  r.number<uint64_t>("migration_interval", researcher.migration_interval, 1, kMaxU64, "50");
  r.choice("backend", researcher.backend, {{"builtin", Backend::Builtin}, {"llm", Backend::Llm}}, "researcher backend",
           "backend = \"builtin\" (typed mutations) or backend = \"llm\" (a language model, see [llm])");
  r.reject_unknown_keys();
}

// [llm]
void read_llm(const toml::table& t, LlmSpec& llm, const std::string& file) {
  TableReader r(t, "llm", file);
  r.text("endpoint", llm.endpoint, "\"http://127.0.0.1:8080/v1/chat/completions\"");
  r.text("model", llm.model, "\"qwen2.5-coder-7b-instruct\"");
  r.number<double>("temperature", llm.temperature, 0.0, 2.0, "0.0");
  r.number<uint32_t>("max_tokens", llm.max_tokens, 1, 1000000, "2048");
  r.number<double>("timeout_s", llm.timeout_s, 0.001, 86400.0, "120.0");
  r.number<uint32_t>("max_retries", llm.max_retries, 0, 100, "2");
  r.number<double>("backoff_s", llm.backoff_s, 0.0, 3600.0, "1.0");
  r.text("api_key_env", llm.api_key_env, "\"OPENAI_API_KEY\"");
  r.number<uint32_t>("revisions", llm.revisions, 0, 100, "2");
  r.flag("judge", llm.judge, "true");
  r.reject_unknown_keys();
  const auto line = [&](const char* key) { return std::to_string((t.get(key) ? r.source_of(key) : t.source()).begin.line); };
  if (llm.endpoint.rfind("http://", 0) != 0 && llm.endpoint.rfind("https://", 0) != 0) {
    throw ScenarioError(file + ":" + line("endpoint") +
                        ": [llm] needs the chat-completions URL of an OpenAI-compatible server; write for example "
                        "endpoint = \"http://127.0.0.1:8080/v1/chat/completions\"");
  }
  if (llm.model.empty()) {
    throw ScenarioError(file + ":" + line("model") + ": [llm] needs the model to ask; write for example model = \"qwen2.5-coder-7b-instruct\"");
  }
}

// [oracle]
void read_oracle(const toml::table& t, OracleSection& oracle, const std::string& file) {
  TableReader r(t, "oracle", file);
  r.choice("kind", oracle.kind, {{"synthetic", OracleKind::Synthetic}, {"surrogate", OracleKind::Surrogate}}, "known oracle kind",
           "kind = \"synthetic\" or kind = \"surrogate\" (with run = \"runs/my-live-run\")");
  r.text("run", oracle.run, "\"runs/my-live-run\"");
  r.number<uint32_t>("k", oracle.k, 1, 1000, "5");
  if (oracle.kind == OracleKind::Surrogate && oracle.run.empty()) {
    throw ScenarioError(file + ":" + std::to_string(r.source_of("kind").begin.line) +
                        ": a surrogate oracle needs the live run it learns from; add run = \"runs/my-live-run\" to [oracle]");
  }
  r.number<uint64_t>("world_seed", oracle.world_seed, 0, kMaxU64, "1");
  r.number<double>("noise", oracle.noise, 0.0, 10.0, "0.005");
  r.number<double>("recall_noise", oracle.recall_noise, 0.0, 1.0, "0.01");
  r.number<double>("plateau_rate", oracle.plateau_rate, 0.0, 1.0, "0.05");
  r.number<double>("failure_rate", oracle.failure_rate, 0.0, 1.0, "0.05");
  r.number<double>("prior_noise", oracle.prior_noise, 0.0, 10.0, "0.5");
  r.number<double>("interaction_scale", oracle.interaction_scale, 0.0, 10.0, "0.15");
  r.number<double>("transfer_noise", oracle.transfer_noise, 0.0, 10.0, "0.3");
  r.number<double>("effect_scale", oracle.effect_scale, 0.0, 10.0, "1.0");
  r.reject_unknown_keys();
}

// [cost]
void read_cost(const toml::table& t, CostSection& cost, const std::string& file) {
  TableReader r(t, "cost", file);
  // A slower GPU or a longer fixed cost makes one job last years of virtual time.
  r.number<double>("gpu_flops_per_second", cost.gpu_flops_per_second, 1e12, 1e18, "1.0e14");
  r.number<double>("overhead_gpu_hours", cost.overhead_gpu_hours, 0.0, 1000.0, "0.5");
  r.reject_unknown_keys();
}

// [task]
void read_task(const toml::table& t, TaskSection& task, const std::string& file) {
  TableReader r(t, "task", file);
  if (const toml::table* mqar = r.subtable("mqar")) {
    TableReader m(*mqar, "task.mqar", file);
    m.number<int64_t>("vocab", task.mqar.vocab, 8, 1 << 20, "256");
    m.number<int64_t>("seq_len", task.mqar.seq_len, 8, 1 << 20, "64");
    m.integer_list("kv_pairs", task.mqar.kv_pairs, 1, 1 << 20, "[4, 8, 16]");
    m.number<int64_t>("test_examples", task.mqar.test_examples, 1, 1 << 24, "256");
    m.reject_unknown_keys();
    for (int64_t kv : task.mqar.kv_pairs) {
      if (4 * kv > task.mqar.seq_len || 2 * kv > task.mqar.vocab / 2 || task.mqar.seq_len % 2 != 0) {
        throw ScenarioError(file + ":" + std::to_string(r.source_of("mqar").begin.line) +
                            ": [task.mqar] needs an even seq_len >= 4 * kv_pairs (pairs, then queries) and vocab >= 4 * kv_pairs "
                            "at every rung (kv_pairs " + std::to_string(kv) + "); raise seq_len or vocab, or lower kv_pairs");
      }
    }
  }
  if (const toml::table* lm = r.subtable("lm")) {
    TableReader l(*lm, "task.lm", file);
    l.text("corpus", task.lm.corpus, "\"data/my-text.txt\"");
    l.number<int64_t>("seq_len", task.lm.seq_len, 8, 1 << 20, "128");
    l.number<int64_t>("eval_bytes", task.lm.eval_bytes, 256, int64_t{1} << 40, "32768");
    l.reject_unknown_keys();
  }
  r.reject_unknown_keys();
}

// [live]
void read_live(const toml::table& t, LiveSection& live, const std::string& file) {
  TableReader r(t, "live", file);
  r.number<int>("threads", live.threads, 1, 256, "1");
  r.number<int64_t>("measure_context", live.measure_context, 16, 1 << 20, "256");
  r.choice<std::string>("device", live.device, {{"cpu", "cpu"}, {"cuda", "cuda"}}, "device asiarch trains on",
                        "\"cpu\" or \"cuda\" (the gpu-slots spread over the GPUs this process sees)");
  r.choice<std::string>("dtype", live.dtype, {{"float32", "float32"}, {"bfloat16", "bfloat16"}}, "training precision",
                        "\"float32\" or \"bfloat16\" (matrix products in bfloat16; weights, states, norms and loss in float32)");
  r.reject_unknown_keys();
}

// [fitness]
void read_fitness(const toml::table& t, FitnessSection& fitness, const std::string& file) {
  TableReader r(t, "fitness", file);
  r.number<double>("loss_scale", fitness.loss_scale, 0.0, 1e6, "50.0");
  r.number<double>("accuracy_scale", fitness.accuracy_scale, 0.0, 1e6, "10.0");
  r.number<double>("loss_weight", fitness.loss_weight, 0.0, 1e6, "1.0");
  r.number<double>("accuracy_weight", fitness.accuracy_weight, 0.0, 1e6, "1.0");
  r.number<double>("judge_weight", fitness.judge_weight, 0.0, 1e6, "1.0");
  r.number<double>("throughput_weight", fitness.throughput_weight, 0.0, 1e6, "0.1");
  r.number<double>("memory_weight", fitness.memory_weight, 0.0, 1e6, "0.1");
  r.number<double>("state_weight", fitness.state_weight, 0.0, 1e6, "0.1");
  r.number<double>("efficiency_scale", fitness.efficiency_scale, 0.0, 1e6, "2.0");
  r.reject_unknown_keys();
  if (fitness.loss_weight + fitness.accuracy_weight + fitness.judge_weight + fitness.throughput_weight + fitness.memory_weight + fitness.state_weight <= 0) {
    throw ScenarioError(file + ":" + std::to_string(t.source().begin.line) +
                        ": every weight of [fitness] is 0, so fitness would rank nothing; give at least one a positive weight, e.g. loss_weight = 1.0");
  }
}

// [engineer]
void read_engineer(const toml::table& t, EngineerSection& engineer, const std::string& file) {
  TableReader r(t, "engineer", file);
  r.number<uint32_t>("repair_attempts", engineer.repair_attempts, 0, 100, "2");
  r.reject_unknown_keys();
}

// [analyst]
void read_analyst(const toml::table& t, AnalystSection& analyst, const std::string& file) {
  TableReader r(t, "analyst", file);
  r.number<uint32_t>("max_ablations", analyst.max_ablations, 0, 1000, "8");
  r.number<double>("alpha", analyst.alpha, 1e-6, 0.5, "0.05");
  r.number<double>("recall_margin", analyst.recall_margin, 0.0, 1.0, "0.05");
  r.reject_unknown_keys();
}

// [faults]
void read_faults(const toml::table& t, FaultSpec& faults, const std::string& file) {
  TableReader r(t, "faults", file);
  r.number<double>("slot_crash", faults.slot_crash, 0.0, 1.0, "0.03");
  r.number<double>("slot_hang", faults.slot_hang, 0.0, 1.0, "0.03");
  r.number<double>("slot_late", faults.slot_late, 0.0, 1.0, "0.03");
  r.number<double>("slot_garbage", faults.slot_garbage, 0.0, 1.0, "0.03");
  r.number<double>("log_write_failure", faults.log_write_failure, 0.0, 1.0, "0.01");
  r.number<double>("job_timeout_gpu_hours", faults.job_timeout_gpu_hours, 0.0, kHuge, "100.0");
  r.number<double>("job_timeout_factor", faults.job_timeout_factor, 1.0, 1e6, "3.0");
  r.number<double>("slot_restart_gpu_hours", faults.slot_restart_gpu_hours, 0.0, 1e6, "0.25");
  r.number<uint32_t>("job_retries", faults.job_retries, 0, 1000, "2");
  r.number<uint32_t>("log_write_retries", faults.log_write_retries, 0, 100, "4");
  r.reject_unknown_keys();
  const FaultSpec& f = faults;
  if (f.slot_crash + f.slot_hang + f.slot_late + f.slot_garbage > 1.0) {
    throw ScenarioError(file + ":" + std::to_string(t.source().begin.line) +
                        ": the slot fault rates of [faults] add up to more than 1; each is a share of the dispatched jobs, "
                        "e.g. slot_crash = 0.03, slot_hang = 0.03");
  }
}

}  // namespace

Scenario parse_scenario(const std::string& text, const std::string& file) {
  if (text.size() > kMaxScenarioBytes) {
    throw ScenarioError(file + ": the scenario is larger than " + std::to_string(kMaxScenarioBytes >> 10) + " KiB; a scenario is a short TOML file");
  }
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    throw ScenarioError(file + ":" + std::to_string(e.source().begin.line) + ": not valid TOML: " +
                        std::string(e.description()) + "; see scenarios/README.md for the format");
  }
  Scenario s;
  s.file = file;
  s.bytes = text;

  TableReader top(root, "", file);
  top.text("name", s.name, "\"my-campaign\"");
  if (s.name.empty()) throw ScenarioError(file + ":1: the scenario has no name; add a line name = \"my-campaign\" at the top");
  // The name becomes a directory under runs/: no separators, no leading dot.
  const bool plain_name = s.name.size() <= 100 && s.name.front() != '.' && std::all_of(s.name.begin(), s.name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (!plain_name) {
    throw ScenarioError(file + ":" + std::to_string(top.source_of("name").begin.line) + ": name \"" + s.name +
                        "\" names the run directory runs/NAME-seedS: use at most 100 letters, digits, '-', '_' and '.', not starting with '.'");
  }
  top.choice("mode", s.mode, {{"simulation", Mode::Simulation}, {"live", Mode::Live}}, "mode",
             "mode = \"simulation\" (an oracle, no training) or mode = \"live\" (gpu-slots train)");
  top.number<uint64_t>("seed", s.seed, 0, kMaxU64, "1");

  const toml::table* campaign = top.subtable("campaign");
  if (!campaign) {
    throw ScenarioError(file + ":1: the scenario has no [campaign] table; add one with at least max_experiments and start (see scenarios/README.md)");
  }
  read_campaign(*campaign, s.campaign, file);

  if (const toml::table* t = top.subtable("model")) read_model(*t, s.model, file);
  if (const toml::table* t = top.subtable("fidelity")) read_fidelity(*t, s.fidelity, file);
  if (const toml::table* t = top.subtable("researcher")) read_researcher(*t, s.researcher, file);
  if (const toml::table* t = top.subtable("llm")) read_llm(*t, s.llm, file);
  if (s.uses_llm() && s.llm.endpoint.empty()) {
    throw ScenarioError(file + ":" + std::to_string(top.source_of("researcher").begin.line) +
                        ": backend = \"llm\" needs an [llm] table with endpoint and model (see scenarios/README.md)");
  }
  if (const toml::table* t = top.subtable("oracle")) read_oracle(*t, s.oracle, file);
  if (const toml::table* t = top.subtable("cost")) read_cost(*t, s.cost, file);
  if (const toml::table* t = top.subtable("task")) read_task(*t, s.task, file);
  if (const toml::table* t = top.subtable("live")) read_live(*t, s.live, file);
  if (const toml::table* t = top.subtable("fitness")) read_fitness(*t, s.fitness, file);
  if (const toml::table* t = top.subtable("engineer")) read_engineer(*t, s.engineer, file);
  if (const toml::table* t = top.subtable("analyst")) read_analyst(*t, s.analyst, file);
  if (const toml::table* t = top.subtable("faults")) read_faults(*t, s.faults, file);
  if (s.campaign.gpu_slots == 0 && (s.mode != Mode::Live || s.live.device != "cuda")) {
    throw ScenarioError(file + ":" + std::to_string(campaign->get("gpu_slots")->source().begin.line) +
                        ": gpu_slots = 0 means one slot per GPU, which needs mode = \"live\" and [live] device = \"cuda\"; give a number of slots");
  }
  if (s.mode == Mode::Live && (s.faults.slot_faults_armed() || s.faults.log_write_failure > 0)) {
    throw ScenarioError(file + ":" + std::to_string(top.source_of("faults").begin.line) +
                        ": [faults] are injected in simulation only; remove the table or set mode = \"simulation\"");
  }
  top.reject_unknown_keys();
  if (s.campaign.max_events == 0) s.campaign.max_events = 400 * s.campaign.max_experiments;
  return s;
}

Scenario load_scenario(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw ScenarioError(path.string() + (std::filesystem::exists(path, error) ? ": not a regular file; a scenario is a TOML file" : ": no such file") +
                        "; check the path, e.g. scenarios/sim-smoke.toml");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ScenarioError(path.string() + ": cannot read the scenario file (missing or unreadable); check the path, e.g. scenarios/sim-smoke.toml");
  }
  // The run header records the scenario's text in one message: a bound keeps the log readable.
  std::string text(kMaxScenarioBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_scenario(text, path.string());
}

}  // namespace asiarch
