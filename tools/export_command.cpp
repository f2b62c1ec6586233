// asiarch export: an architecture as a standalone PyTorch file, with the weights a live run kept.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "actors/gpu_slot.h"
#include "campaign/run_recorder.h"
#include "export/pytorch_export.h"
#include "storage/lineage.h"
#include "tools/commands.h"
#include "training/safetensors.h"
#include "training/training.h"

namespace asiarch::tools {
namespace {

struct ExportArgs {
  std::string source;  // a run directory, a shipped program's name or a program file
  std::string format = "pytorch";
  std::string out;
  std::optional<uint64_t> arch;
  training::Task task = training::Task::Lm;
  std::optional<bool> verify;
  std::optional<int64_t> d_model;
  std::optional<int64_t> layers;
};

// What to export: the program, the model's sizes, and the weights file to copy (if any).
struct ExportPlan {
  exporting::PytorchExport model;
  std::filesystem::path weights;  // empty: none to copy
};

const char* task_name(training::Task task) { return task == training::Task::Mqar ? "mqar" : "lm"; }

// An architecture of a run directory at the sizes its jobs trained at, with the weights the run
// kept for it: at the requested fidelity, or verify when it has them, else explore.
ExportPlan plan_from_run(const ExportArgs& args, const std::filesystem::path& dir) {
  if (!args.arch) throw std::invalid_argument(dir.string() + " is a run directory: name the architecture with --arch ID (see `asiarch top " + dir.string() + "`)");
  const uint64_t id = *args.arch;
  const auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  const storage::Lineage lineage(*store);
  const storage::ArchEntry* entry = lineage.find(id);
  if (!entry) {
    throw std::invalid_argument(dir.string() + " has no architecture " + std::to_string(id) + "; `asiarch top " + dir.string() +
                                "` lists its architectures");
  }
  const RecordedRun run = read_recorded_run(*store);
  auto prefix = [&](bool verify) { return kept_weights_prefix(dir, id, verify ? msg::Fidelity::VERIFY : msg::Fidelity::EXPLORE); };
  const bool verify = args.verify ? *args.verify
                                  : std::filesystem::is_regular_file(training::weights_file(prefix(true).string(), args.task));
  const training::ExperimentConfig experiment =
      live_experiment_config(LiveJobSettings::of(run.scenario), run.seed, verify ? msg::Fidelity::VERIFY : msg::Fidelity::EXPLORE, 0);
  const training::TrainConfig& train = args.task == training::Task::Mqar ? experiment.mqar : experiment.lm;

  ExportPlan plan;
  plan.model.program = lang::parse(entry->program, "arch " + std::to_string(id));
  plan.model.vocab = training::model_vocab(train);
  plan.model.d_model = train.d_model;
  plan.model.layers = train.layers;
  const std::string fidelity = verify ? "verify" : "explore";
  plan.model.origin = arch_label(*entry) + " (id " + std::to_string(id) + ") of the run " + dir.string() + ", its " + fidelity + " " +
                      task_name(args.task) + " model";
  const std::filesystem::path kept = training::weights_file(prefix(verify).string(), args.task);
  if (std::filesystem::is_regular_file(kept)) {
    plan.weights = kept;
  } else {
    plan.model.weights_note = "the run kept no " + fidelity + " " + task_name(args.task) + " weights for arch " + std::to_string(id) +
                              " (" + kept.string() + " does not exist: " +
                              (run.scenario.mode == Mode::Live ? "the job did not train to the end, or ran on a remote worker or before weights were kept"
                                                           : "a simulated campaign trains nothing") +
                              "); build_model() starts from a fresh initialisation.";
  }
  return plan;
}

// A weights file asiarch wrote (`train --save-weights`, a run's weights/): its metadata names the
// program and the model's sizes.
ExportPlan plan_from_weights(const std::filesystem::path& file) {
  safetensors::Contents contents;
  try {
    contents = safetensors::read_file(file);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(e.what());
  }
  const auto field = [&](const std::string& key) {
    const auto it = contents.metadata.find(key);
    if (it == contents.metadata.end()) {
      throw std::invalid_argument(file.string() + " has no \"" + key + "\" in its metadata: it was not written by asiarch");
    }
    return it->second;
  };
  const std::string vocab = field("vocab"), d_model = field("d_model"), layers = field("layers");
  ExportPlan plan;
  plan.model.program = lang::parse(field("program"), file.string() + " (metadata \"program\")");
  try {
    plan.model.vocab = std::stoll(vocab);
    plan.model.d_model = std::stoll(d_model);
    plan.model.layers = std::stoll(layers);
  } catch (const std::logic_error&) {
    throw std::invalid_argument(file.string() + ": vocab, d_model and layers in its metadata must be whole numbers");
  }
  plan.model.origin = file.string();
  plan.weights = file;
  return plan;
}

// A shipped program or a program file, at the explore sizes unless given; no weights.
ExportPlan plan_from_program(const ExportArgs& args) {
  const ProgramSource source = load_program(args.source);
  const training::TrainConfig train = training::explore_config(args.task);
  ExportPlan plan;
  plan.model.program = lang::parse(source.text, source.file);
  plan.model.vocab = training::model_vocab(train);
  plan.model.d_model = args.d_model.value_or(train.d_model);
  plan.model.layers = args.layers.value_or(train.layers);
  plan.model.origin = source.file;
  plan.model.weights_note = "none, exported from the program alone; `asiarch train " + args.source +
                            " --save-weights FILE` trains it and keeps weights that load_weights(FILE) reads at these sizes.";
  return plan;
}

int export_model(const ExportArgs& args) {
  if (args.format != "pytorch") {
    std::cerr << "unknown format '" << args.format << "'; the one format is pytorch (--format pytorch)" << std::endl;
    return 2;
  }
  const std::filesystem::path out(args.out);
  if (out.extension() != ".py") {
    std::cerr << "the output must be a Python file named *.py (its weights go next to it as *.safetensors), got '" << args.out << "'" << std::endl;
    return 2;
  }
  ExportPlan plan;
  try {
    const bool run_dir = std::filesystem::is_directory(args.source) && std::filesystem::exists(std::filesystem::path(args.source) / "data.mdb");
    if (!run_dir && args.arch) {
      std::cerr << "--arch names an architecture of a run directory, and " << args.source << " is not one (it has no data.mdb)" << std::endl;
      return 2;
    }
    const bool weights_file = !run_dir && std::filesystem::path(args.source).extension() == ".safetensors";
    plan = run_dir ? plan_from_run(args, args.source) : weights_file ? plan_from_weights(args.source) : plan_from_program(args);
    lang::check(plan.model.program, lang::ModelShape{plan.model.d_model, lang::ModelShape{}.context}, plan.model.origin);
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const lang::ProgramError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
  const std::filesystem::path weights_out = std::filesystem::path(out).replace_extension(".safetensors");
  if (!plan.weights.empty()) {
    plan.model.weights_note = weights_out.filename().string() + " beside this file, a copy of " + plan.weights.string() +
                              ": model = build_model().load_weights(\"" + weights_out.filename().string() + "\")";
  }
  plan.model.module_name = out.stem().string();
  try {
    if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
    std::ofstream file(out, std::ios::binary | std::ios::trunc);
    file << exporting::pytorch_module(plan.model);
    file.close();
    if (!file) throw std::runtime_error("cannot write " + out.string() + "; check the directory and its permissions");
    // A weights file exported next to itself is already where the module looks.
    const bool in_place =
        !plan.weights.empty() && std::filesystem::exists(weights_out) && std::filesystem::equivalent(plan.weights, weights_out);
    if (!plan.weights.empty() && !in_place) std::filesystem::copy_file(plan.weights, weights_out, std::filesystem::copy_options::overwrite_existing);
  } catch (const std::exception& e) {
    std::cerr << "export failed: " << e.what() << std::endl;
    return 1;
  }
  std::cout << "wrote " << out.string() << ": " << plan.model.program.name << " as a PyTorch module (vocab " << plan.model.vocab << ", D="
            << plan.model.d_model << ", " << plan.model.layers << " layers)\n";
  if (plan.weights.empty()) std::cout << "weights: " << plan.model.weights_note << "\n";
  else std::cout << "wrote " << weights_out.string() << ": the weights the run kept (" << plan.weights.string() << ")\n";
  std::cout.flush();
  return 0;
}

}  // namespace

void add_export_commands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Write an architecture as a standalone PyTorch module (with the weights a live run kept)");
  cmd->add_option("source", args->source,
                  "A run directory (with --arch ID), a weights file (FILE.safetensors from `train --save-weights`), a shipped program's name or a program file")
      ->required();
  cmd->add_option("--arch", args->arch, "The architecture of the run directory to export (see `asiarch top DIR`)");
  cmd->add_option("--format", args->format, "Output format; pytorch: a .py file with a torch.nn.Module and load_weights")->capture_default_str();
  cmd->add_option("-o,--out", args->out, "The Python file to write (FILE.py); kept weights are copied to FILE.safetensors")->required();
  cmd->add_option("--task", args->task, "Which model of a live job: lm (language model, vocab 256) or mqar (the recall task's vocab)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, training::Task>{{"mqar", training::Task::Mqar}, {"lm", training::Task::Lm}}))
      ->default_str("lm");
  cmd->add_option("--fidelity", args->verify, "explore or verify weights of a run (default: verify where kept, else explore)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, bool>{{"explore", false}, {"verify", true}}));
  cmd->add_option("--d-model", args->d_model, "Model width for a program (default: the explore fidelity's)")->check(CLI::PositiveNumber);
  cmd->add_option("--layers", args->layers, "Blocks for a program (default: the explore fidelity's)")->check(CLI::PositiveNumber);
  cmd->callback([args, &exit_code] { exit_code = export_model(*args); });
}

}  // namespace asiarch::tools
