// asiarch run | replay | inspect
#include <spdlog/spdlog.h>

#include <iostream>

#include "actors/llm.h"
#include "campaign/campaign.h"
#include "common/virtual_time.h"
#include "oracles/surrogate_oracle.h"
#include "storage/lineage.h"
#include "storage/run_store.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

// Where a live run listens for `asiarch worker` processes (--listen, --bind, --secret-file).
struct ListenArgs {
  int port = -1;  // -1: no listening, the gpu-slots train in this process
  std::string bind = "127.0.0.1";
  std::string secret_file;

  std::optional<ListenOptions> options() const {
    if (port < 0) return std::nullopt;
    return ListenOptions{static_cast<uint16_t>(port), bind, secret_file};
  }

  void add_to(CLI::App* cmd) {
    cmd->add_option("--listen", port, "Train the live jobs on remote workers (`asiarch worker`) that connect to this TCP port")
        ->check(CLI::Range(1, 65535));
    cmd->add_option("--bind", bind, "Address to listen on (default 127.0.0.1; other addresses carry the traffic unencrypted)")
        ->needs("--listen");
    cmd->add_option("--secret-file", secret_file, "File with the secret workers must present (default: RUN_DIR/worker.secret, made at random)")
        ->needs("--listen");
  }
};

struct RunArgs {
  std::string scenario;
  std::string out;
  std::optional<uint64_t> seed;
  ListenArgs listen;
};

// "crash 3, garbage 2, ...": counts by kind (injected faults, LLM calls by purpose, ...).
std::string counts_text(const std::map<std::string, uint64_t>& counts) {
  std::string out;
  for (const auto& [kind, count] : counts) out += (out.empty() ? "" : ", ") + kind + " " + grouped(count);
  return out;
}

std::string rejection_breakdown(const CampaignSummary& s) {
  const std::string out = counts_text(s.rejections_by_check);
  return out.empty() ? "" : " (" + out + ")";
}

// "finished: <why it stopped>", "running", or what an unfinished run says of itself
// ("starting: ...", "failed: ...").
std::string status_text(const CampaignSummary& s) {
  if (s.finished) return "finished: " + s.stop_reason;
  return s.stop_reason.empty() ? "running" : s.stop_reason;
}

// The LLM researcher's and judge's calls ([llm]), read from the log; nothing when there were none.
std::string llm_lines(const LlmCallStats& llm) {
  if (llm.requests() == 0) return "";
  return "LLM calls:     " + grouped(llm.requests()) + " (" + counts_text(llm.requests_by_purpose) + "); " + grouped(llm.http_tries) +
         " HTTP tries\n" + "LLM failures:  " + grouped(llm.failures) + (llm.failures ? " (" + counts_text(llm.failures_by_kind) + ")" : "") +
         "; revisions asked " + grouped(llm.revisions) + "; proposals from the model " + grouped(llm.llm_proposals) + "\n" +
         "LLM tokens:    " + grouped(llm.prompt_tokens) + " prompt, " + grouped(llm.completion_tokens) + " completion\n" +
         "LLM latency:   mean " + grouped(llm.mean_latency_ms(), 0) + " ms, max " + grouped(llm.max_latency_ms, 0) + " ms\n";
}

void print_summary(const CampaignSummary& s, const std::string& dir, const LlmCallStats& llm = {}) {
  std::cout << "campaign:      " << s.scenario_name << " (seed " << s.seed << ")\n"
            << "run directory: " << dir << "\n"
            << "status:        " << status_text(s) << "\n"
            << "events:        " << grouped(s.events) << "\n"
            << "experiments:   " << grouped(s.experiments) << " of " << grouped(s.target_experiments) << " (from " << grouped(s.proposals) << " proposals)\n"
            << "rejected:      " << grouped(s.rejections) << " before training" << rejection_breakdown(s) << "\n"
            << "breakthroughs: " << s.breakthroughs << "\n"
            << (s.faults.empty() ? "" : "faults:        " + counts_text(s.faults) + "\n")
            << llm_lines(llm)
            << "GPU hours:     " << grouped(s.gpu_hours, s.gpu_hours < 10 ? 3 : 1) << "\n"
            << "virtual time:  " << grouped(ns_to_hours(s.vtime_ns), 1) << " h\n"
            << "digest: " << s.digest << std::endl;
}

std::string json_counts(const std::map<std::string, uint64_t>& counts) {
  std::string out;
  for (const auto& [kind, count] : counts) out += (out.empty() ? "" : ", ") + json_string(kind) + ": " + std::to_string(count);
  return "{" + out + "}";
}

void print_summary_json(const CampaignSummary& s, const std::string& dir, const LlmCallStats& llm = {}) {
  std::cout << "{\"scenario\": " << json_string(s.scenario_name) << ", \"seed\": " << s.seed
            << ", \"run_directory\": " << json_string(dir) << ", \"finished\": " << (s.finished ? "true" : "false")
            << ", \"stop_reason\": " << json_string(s.stop_reason) << ", \"events\": " << s.events
            << ", \"experiments\": " << s.experiments << ", \"target_experiments\": " << s.target_experiments
            << ", \"proposals\": " << s.proposals
            << ", \"rejections\": " << s.rejections << ", \"rejections_by_check\": " << json_counts(s.rejections_by_check)
            << ", \"faults\": " << json_counts(s.faults);
  std::cout << ", \"llm\": {\"requests\": " << json_counts(llm.requests_by_purpose) << ", \"failures\": " << json_counts(llm.failures_by_kind)
            << ", \"revisions\": " << llm.revisions << ", \"llm_proposals\": " << llm.llm_proposals << ", \"http_tries\": " << llm.http_tries
            << ", \"prompt_tokens\": " << llm.prompt_tokens << ", \"completion_tokens\": " << llm.completion_tokens
            << ", \"mean_latency_ms\": " << llm.mean_latency_ms()
            << ", \"max_latency_ms\": " << llm.max_latency_ms;
  std::cout << "}, \"breakthroughs\": " << s.breakthroughs
            << ", \"gpu_hours\": " << s.gpu_hours << ", \"vtime_ns\": " << s.vtime_ns
            << ", \"digest\": " << json_string(s.digest) << "}" << std::endl;
}

void log_progress(const CampaignSummary& s) {
  spdlog::info("[{:3}%] {} experiments, {} breakthroughs, {} GPU hours", s.experiments * 100 / std::max<uint64_t>(1, s.target_experiments),
               grouped(s.experiments), s.breakthroughs, grouped(s.gpu_hours, s.gpu_hours < 10 ? 2 : 0));
}

int run(const RunArgs& args) {
  const std::optional<Scenario> loaded = load_scenario_or_report(args.scenario);
  if (!loaded) return 2;
  const Scenario& scenario = *loaded;
  const uint64_t seed = args.seed.value_or(scenario.seed);
  const std::string out = args.out.empty() ? "runs/" + scenario.name + "-seed" + std::to_string(seed) : args.out;
  if (args.listen.options() && scenario.mode != Mode::Live) {
    std::cerr << "scenario " << scenario.name << " is simulated: its gpu-slots need no workers; run it without --listen" << std::endl;
    return 2;
  }
  const char* slots = scenario.mode != Mode::Live ? "simulated GPU slots"
                      : args.listen.options() ? "gpu-slots training on remote workers"
                                              : "gpu-slots training on this machine";
  spdlog::info("campaign {} (seed {}): up to {} experiments on {} {} -> {}", scenario.name, seed, scenario.campaign.max_experiments,
               scenario.campaign.gpu_slots == 0 ? std::string("one per GPU:") : std::to_string(scenario.campaign.gpu_slots), slots, out);
  try {
    // The surrogate's live run is input too: a wrong path is refused before the run directory exists.
    if (scenario.oracle.kind == OracleKind::Surrogate && scenario.mode != Mode::Live) SurrogateOracle{scenario.oracle, scenario.file};
  } catch (const ScenarioError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
  try {
    const CampaignSummary summary = run_campaign(scenario, seed, out, log_progress, args.listen.options());
    if (scenario.mode == Mode::Live) {
      // A live campaign ends with what it found: the best programs against the baselines.
      const auto store = storage::RunStore::open(out, storage::RunStore::Mode::ReadOnly);
      std::cout << "best architectures (loss: held-out bits per byte; accuracy: MQAR recall; `asiarch lineage " << out
                << " --arch ID` tells how each came about):\n";
      print_top_table(storage::Lineage(*store), 10, true);
      std::cout << "\n";
    }
    print_summary(summary, out);
    return 0;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\nwhat was logged before the failure is committed in " << out << std::endl;
    return 1;
  }
}

int resume(const std::string& dir, const ListenArgs& listen) {
  try {
    spdlog::info("resuming {}: the logged events are recomputed and checked, then the campaign goes on", dir);
    print_summary(resume_campaign(dir, log_progress, listen.options()), dir);
    return 0;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return 1;
  }
}

int replay(const std::string& dir) {
  ReplayReport report;
  try {
    report = replay_campaign(dir);
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const ScenarioError& e) {
    std::cerr << "the recorded scenario does not load in this build: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "replay failed: " << e.what() << std::endl;
    return 1;
  }
  if (!report.note.empty()) spdlog::warn("{}", report.note);
  if (report.identical) {
    std::cout << "replay identical: " << grouped(report.events) << " events recomputed and matched byte for byte\n"
              << "digest: " << report.digest << std::endl;
    return 0;
  }
  if (report.divergence_seq != 0) {
    std::cout << "first divergence at seq " << report.divergence_seq << "\n"
              << "  recorded kind: " << report.recorded_kind << "\n"
              << "  replayed kind: " << report.replayed_kind << "\n"
              << report.diff;
  } else {
    std::cout << "replay differs: " << report.note << "\n";
  }
  return 1;
}

int retrain(const std::string& dir, uint64_t arch_id) {
  try {
    spdlog::info("retraining the logged jobs of architecture {} in {}", arch_id, dir);
    const RetrainReport report = retrain_architecture(dir, arch_id, [](const RetrainedJob& job) {
      std::cout << "job " << job.job_id << " (" << job.fidelity << "): " << (job.identical ? "identical" : "DIFFERENT") << "\n"
                << "  recorded:  " << job.recorded << "\n"
                << "  retrained: " << job.retrained << std::endl;
    });
    std::cout << (report.identical() ? "retrain identical: every metric matches bit for bit"
                                     : "retrain differs: a metric does not match the log (another CPU, thread count or build?)")
              << std::endl;
    return report.identical() ? 0 : 1;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
}

int inspect(const std::string& dir, bool json) {
  try {
    const CampaignSummary summary = read_summary(dir);
    const LlmCallStats llm = read_llm_calls(dir);
    if (json) print_summary_json(summary, dir, llm);
    else print_summary(summary, dir, llm);
    return 0;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
}

}  // namespace

std::optional<Scenario> load_scenario_or_report(const std::string& path) {
  try {
    return load_scenario(path);
  } catch (const ScenarioError& e) {
    std::cerr << e.what() << std::endl;
    return std::nullopt;
  }
}

void add_campaign_commands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<RunArgs>();
  auto* run_cmd = app.add_subcommand("run", "Run a campaign from a scenario file; prints a summary whose last line is the digest");
  run_cmd->add_option("scenario", args->scenario, "Scenario file (TOML), e.g. scenarios/sim-smoke.toml")->required();
  run_cmd->add_option("--out", args->out, "Run directory to create (default: runs/<name>-seed<seed>); must not hold a run");
  run_cmd->add_option("--seed", args->seed, "Campaign seed (default: the scenario's seed)")->check(seed_text());
  args->listen.add_to(run_cmd);
  run_cmd->callback([args, &exit_code] { exit_code = run(*args); });

  auto resume_dir = std::make_shared<std::string>();
  auto resume_listen = std::make_shared<ListenArgs>();
  auto* resume_cmd = app.add_subcommand(
      "resume", "Continue a campaign whose process was killed; in simulation it ends with the uninterrupted digest");
  resume_cmd->add_option("dir", *resume_dir, "Run directory written by `asiarch run`")->required();
  resume_listen->add_to(resume_cmd);
  resume_cmd->callback([resume_dir, resume_listen, &exit_code] { exit_code = resume(*resume_dir, *resume_listen); });

  auto dir = std::make_shared<std::string>();
  auto* replay_cmd = app.add_subcommand(
      "replay", "Recompute a campaign from its run directory and compare every event with the log (exit 1 on a difference)");
  replay_cmd->add_option("dir", *dir, "Run directory written by `asiarch run`")->required();
  replay_cmd->callback([dir, &exit_code] { exit_code = replay(*dir); });

  auto retrain_dir = std::make_shared<std::string>();
  auto retrain_arch = std::make_shared<uint64_t>(0);
  auto* retrain_cmd = app.add_subcommand(
      "retrain", "Train an architecture's logged jobs of a live run again and check the metrics match bit for bit (exit 1 if not)");
  retrain_cmd->add_option("dir", *retrain_dir, "Run directory of a live campaign")->required();
  retrain_cmd->add_option("--arch", *retrain_arch, "Architecture id (see `asiarch top DIR`)")->required();
  retrain_cmd->callback([retrain_dir, retrain_arch, &exit_code] { exit_code = retrain(*retrain_dir, *retrain_arch); });

  auto inspect_dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* inspect_cmd = app.add_subcommand("inspect", "Print a run's summary; works while the campaign is running");
  inspect_cmd->add_option("dir", *inspect_dir, "Run directory")->required();
  inspect_cmd->add_flag("--json", *json, "One JSON object instead of text");
  inspect_cmd->callback([inspect_dir, json, &exit_code] { exit_code = inspect(*inspect_dir, *json); });
}

}  // namespace asiarch::tools
