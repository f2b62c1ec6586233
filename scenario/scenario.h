#pragma once
// A campaign file (TOML): what to search, with what budget, against which world. Every key is
// documented in scenarios/README.md; unknown keys and wrong types are errors that name the
// file and line.
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "training/training.h"

namespace asiarch {

// A bad scenario: what() is "FILE:LINE: what is wrong; what to write instead" (just "FILE: ..."
// when the file cannot be read).
class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FidelitySpec {
  int64_t d_model = 256;  // model width at this fidelity
  int64_t layers = 4;
  double tokens = 1e8;    // training tokens (simulation: the cost model's)
  // Live training; 0 takes the kernels' default for this fidelity (training::explore_config).
  int64_t steps = 0;
  int64_t batch = 0;
  double lr = 0;
  // Verify only: trainings of each verified architecture (and of every baseline) on seeds of
  // their own, and the fresh seeds of a replication (stats/evidence.h). Explore trains once.
  uint32_t seeds = 1;
  uint32_t replication_seeds = 0;
  bool operator==(const FidelitySpec&) const = default;
};

// [faults]: injected in simulation, in the manner of FoundationDB's simulator. Slot rates are per
// dispatched job, the log-write rate per commit of the run store; all 0 by default.
struct FaultSpec {
  double slot_crash = 0;         // the slot dies part-way through the job; restarted after a delay
  double slot_hang = 0;          // the slot never answers
  double slot_late = 0;          // the slot answers after the job's timeout
  double slot_garbage = 0;       // the answer does not decode, names another job, or holds NaN
  double log_write_failure = 0;  // a commit of the event log fails (and is retried)
  double job_timeout_gpu_hours = 0;  // a fixed job timeout; 0: job_timeout_factor x the job's cost
  double job_timeout_factor = 3.0;   // timeout as a multiple of the cost model's hours of the job
  double slot_restart_gpu_hours = 0.25;  // how long a crashed or killed slot takes to come back
  uint32_t job_retries = 2;        // re-queues of a crashed or timed-out job before it fails
  uint32_t log_write_retries = 4;  // retries of a failed commit before the run stops (exit 1)
  // Jobs are timed out and answers checked only when slot faults can happen or a timeout is
  // set: otherwise the loop is exactly that of a campaign without [faults].
  bool slot_faults_armed() const { return slot_crash > 0 || slot_hang > 0 || slot_late > 0 || slot_garbage > 0 || job_timeout_gpu_hours > 0; }
  bool operator==(const FaultSpec&) const = default;
};

// [llm]: an OpenAI-compatible chat-completions endpoint for the LLM researcher ([researcher]
// backend = "llm") and judge (judge = true); actors/llm.h, scenarios/README.md.
struct LlmSpec {
  std::string endpoint;      // the full URL, e.g. http://127.0.0.1:8080/v1/chat/completions
  std::string model;
  double temperature = 0.0;
  uint32_t max_tokens = 2048;
  double timeout_s = 120.0;  // per HTTP try
  uint32_t max_retries = 2;  // retries of a timeout, connection error, HTTP 429 or 5xx
  double backoff_s = 1.0;    // pause before the first retry; doubled before each next one
  std::string api_key_env;   // the environment variable holding the API key ("": no key sent)
  uint32_t revisions = 2;    // a proposal that does not check goes back to the model this often
  bool judge = false;        // the analyst's judge term comes from the model
  bool operator==(const LlmSpec&) const = default;
};

// The scenario's options that take one of a few words, parsed once into these.
enum class Mode { Simulation, Live };                 // mode: "simulation" (an oracle) or "live" (gpu-slots train)
enum class Strategy { Full, Random, NoCognition };    // [researcher] strategy: "full", "random", "no_cognition"
enum class Selection { Paper, Islands };              // [researcher] selection: "paper" or "islands"
enum class Backend { Builtin, Llm };                  // [researcher] backend: "builtin" or "llm"
enum class OracleKind { Synthetic, Surrogate };       // [oracle] kind: "synthetic" or "surrogate"

// The scenario's word for an option, as a scenario file writes it.
const char* name_of(Mode mode);
const char* name_of(Strategy strategy);

// [campaign]
struct CampaignSection {
  uint64_t max_experiments = 100;  // explore results after which the campaign stops
  double max_gpu_hours = 0;        // 0: no limit
  uint32_t gpu_slots = 4;  // 0 (live, on cuda): one per GPU the run sees, recorded in its start event
  std::vector<std::string> start = {"deltanet"};
  std::string reference = "deltanet";  // fitness is measured against this baseline
  uint32_t pool_size = 50;
  uint64_t max_events = 0;  // 0: 400 events per experiment, a guard against a loop that stalls
  bool operator==(const CampaignSection&) const = default;
};

// [model]
struct ModelSection {
  int64_t d_model = 256;  // the width programs are checked at
  int64_t context = 2048;
  int64_t param_target = 0;  // mixer parameters; 0: the reference baseline's
  double param_tolerance = 0.5;
  bool operator==(const ModelSection&) const = default;
};

// [fidelity], with [fidelity.explore] and [fidelity.verify]
struct FidelitySection {
  FidelitySpec explore{512, 8, 1e9};
  FidelitySpec verify{1024, 24, 15e9, 0, 0, 0, 3, 5};
  uint32_t promote_top = 10;  // an explore result within the best this many is verified
  bool operator==(const FidelitySection&) const = default;
};

// [researcher]
struct ResearcherSection {
  double insight_probability = 0.5;  // use a retrieved insight's rewrite rather than a random one
  uint32_t insights_k = 3;
  Strategy strategy = Strategy::Full;      // Random: blind mutation; NoCognition: full without insights
  Selection selection = Selection::Paper;  // Islands: separate pools with migration
  uint32_t islands = 4;
  uint64_t migration_interval = 50;  // explore results between migrations of each island's best
  Backend backend = Backend::Builtin;  // Llm: proposals come from the language model of [llm]
  bool operator==(const ResearcherSection&) const = default;
};

// [engineer]
struct EngineerSection {
  uint32_t repair_attempts = 2;  // repairs of one proposal (a chain of attempts) before it is given up
  bool operator==(const EngineerSection&) const = default;
};

// [analyst]
struct AnalystSection {
  uint32_t max_ablations = 8;  // components of each breakthrough ablated (one training each); 0: none
  double alpha = 0.05;         // level of the breakthrough rule's tests (stats/evidence.h)
  double recall_margin = 0.05; // recall may fall this far below the best baseline's (non-inferiority)
  bool operator==(const AnalystSection&) const = default;
};

// [oracle]: what simulated gpu-slots report instead of training
struct OracleSection {
  OracleKind kind = OracleKind::Synthetic;  // Surrogate: a previous live run's results, generalised
  std::string run;         // kind = "surrogate": the live run directory
  uint32_t k = 5;          // nearest recorded programs a new one's result is drawn from
  uint64_t world_seed = 1;
  double noise = 0.005;         // relative sd of a job's loss around its program's (measured: bench noise)
  double recall_noise = 0.01;   // sd of the MQAR accuracy of a run that leaves the plateau
  double plateau_rate = 0.05;   // share of runs that stay on the MQAR plateau
  double failure_rate = 0.05;
  double prior_noise = 0.5;         // per-world perturbation of the literature's effects
  double interaction_scale = 0.15;  // pairwise motif interactions
  double transfer_noise = 0.3;      // how imperfectly explore predicts verify
  double effect_scale = 1.0;        // scales every effect; 0: a null world where every program is as good as any other
  bool operator==(const OracleSection&) const = default;
};

// [cost]: the simulated cost model
struct CostSection {
  double gpu_flops_per_second = 1e14;
  double overhead_gpu_hours = 0.5;  // per job: set-up, evaluation
  bool operator==(const CostSection&) const = default;
};

// [task.mqar], [task.lm]: what live gpu-slots train on
struct TaskSection {
  training::MqarTask mqar;
  training::LmTask lm;
  bool operator==(const TaskSection&) const = default;
};

// [live]
struct LiveSection {
  int threads = 1;               // torch threads of each gpu-slot
  int64_t measure_context = 256; // T of the measured checks (the complexity check also runs 4T)
  std::string device = "cpu";    // "cuda": gpu-slot i trains on cuda:(i mod the GPUs visible)
  std::string dtype = "float32"; // "bfloat16": mixed precision (training::TrainConfig::dtype)
  bool operator==(const LiveSection&) const = default;
};

// [fitness]
struct FitnessSection {
  double loss_scale = 50.0;      // sigmoid slope on relative loss improvement
  double accuracy_scale = 10.0;  // sigmoid slope on accuracy improvement
  double loss_weight = 1.0;      // weights of the composite's terms (analyst.h)
  double accuracy_weight = 1.0;
  double judge_weight = 1.0;
  double throughput_weight = 0.1;  // tokens per second against the reference's
  double memory_weight = 0.1;      // peak training memory against the reference's
  double state_weight = 0.1;       // recurrent state size against the reference's
  double efficiency_scale = 2.0;   // sigmoid slope on the log ratio of an efficiency figure
  bool operator==(const FitnessSection&) const = default;
};

// A scenario file: one section per TOML table, each read by its own reader
// (scenario.cpp) and documented in scenarios/README.md.
struct Scenario {
  std::string file;   // path as given
  std::string bytes;  // the file's exact contents
  std::string name;
  Mode mode = Mode::Simulation;
  uint64_t seed = 1;

  CampaignSection campaign;
  ModelSection model;
  FidelitySection fidelity;
  ResearcherSection researcher;
  LlmSpec llm;
  EngineerSection engineer;
  AnalystSection analyst;
  OracleSection oracle;
  CostSection cost;
  TaskSection task;
  LiveSection live;
  FitnessSection fitness;
  FaultSpec faults;

  bool uses_llm() const { return researcher.backend == Backend::Llm || llm.judge; }
  bool operator==(const Scenario&) const = default;
};

// Parses and validates; throws ScenarioError. `file` is used in messages and recorded.
// The run header records a scenario's text in one message, so its size is bounded.
constexpr size_t kMaxScenarioBytes = size_t{1} << 20;
Scenario parse_scenario(const std::string& text, const std::string& file);
// Reads the file and parses it; a missing or unreadable file is a ScenarioError too.
Scenario load_scenario(const std::filesystem::path& path);

}  // namespace asiarch
