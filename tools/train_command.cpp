// asiarch train: trains one model outside a campaign, with progress, then prints its metrics.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "training/safetensors.h"
#include "training/training.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

struct TrainArgs {
  std::string program;
  training::Task task = training::Task::Mqar;
  bool verify = false;
  std::optional<uint64_t> seed;
  std::optional<int> threads;
  std::optional<int64_t> steps;
  std::string corpus;
  std::string save_weights;
  std::string device = "cpu";
  std::string dtype = "float32";
  bool json = false;
};

void print_json(const TrainArgs& args, const lang::Program& program, const training::TrainConfig& config, const training::TrainMetrics& m) {
  const bool mqar = config.task == training::Task::Mqar;
  std::cout << "{\"program\": " << json_string(program.name) << ", \"task\": \"" << (mqar ? "mqar" : "lm") << "\", \"fidelity\": \""
            << (args.verify ? "verify" : "explore") << "\", \"status\": \"" << (m.ok ? "ok" : "failed")
            << "\", \"failure\": " << json_string(m.failure) << ", \"loss\": " << json_number(m.loss) << ", "
            << (mqar ? "\"accuracy\": " + json_number(m.accuracy) : "\"bits_per_byte\": " + json_number(m.bits_per_byte))
            << ", \"tokens_per_second\": " << json_number(m.tokens_per_second) << ", \"peak_memory_bytes\": " << m.peak_memory_bytes
            << ", \"seconds\": " << json_number(m.seconds) << ", \"steps\": " << m.steps << ", \"params\": " << m.params
            << ", \"seed\": " << config.seed << ", \"threads\": " << config.threads << ", \"device\": " << json_string(m.device_name)
            << ", \"torch_version\": " << json_string(m.torch_version) << ", \"dtype\": " << json_string(config.dtype) << "}" << std::endl;
}

void print_text(const training::TrainConfig& config, const training::TrainMetrics& m) {
  if (!m.ok) {
    std::cout << "training failed: " << m.failure << std::endl;
    return;
  }
  if (config.task == training::Task::Mqar) std::printf("accuracy:          %.4f (MQAR, query positions of the test set)\n", m.accuracy);
  else std::printf("bits per byte:     %.4f (held-out)\n", m.bits_per_byte);
  std::printf("held-out loss:     %.4f nats per token\n", m.loss);
  std::printf("tokens per second: %s (training, %d thread%s)\n", grouped(m.tokens_per_second, 0).c_str(), config.threads,
              config.threads == 1 ? "" : "s");
  std::printf("peak memory:       %s bytes of live tensors\n", grouped(m.peak_memory_bytes).c_str());
  std::printf("parameters:        %s (whole model)\n", grouped(static_cast<uint64_t>(m.params)).c_str());
  std::printf("seconds:           %.1f (%s steps)\n", m.seconds, grouped(static_cast<uint64_t>(m.steps)).c_str());
  std::printf("device:            %s (torch %s)\n", m.device_name.c_str(), m.torch_version.c_str());
}

int train(const TrainArgs& args) {
  training::TrainConfig config = args.verify ? training::verify_config(args.task) : training::explore_config(args.task);
  if (args.seed) config.seed = *args.seed;
  if (args.threads) config.threads = *args.threads;
  if (args.steps) set_steps(config, *args.steps);
  if (!args.corpus.empty()) config.lm.corpus = args.corpus;
  config.weights_path = args.save_weights;
  config.device = args.device;
  config.dtype = args.dtype;
  if (!device_ready(config.device)) return 2;
  lang::Program program;
  try {
    if (!args.save_weights.empty()) safetensors::require_file_path(args.save_weights);
    const ProgramSource source = load_program(args.program);
    program = lang::parse(source.text, source.file);
    lang::check(program, lang::ModelShape{config.d_model, lang::ModelShape{}.context}, source.file);
  } catch (const lang::ProgramError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
  const std::string corpus = config.lm.corpus.empty() ? training::kDefaultCorpus : config.lm.corpus;
  if (config.task == training::Task::Lm && !std::filesystem::is_regular_file(corpus)) {
    std::cerr << "corpus '" << corpus << "' not found: install Debian's dict-gcide (apt-get install dict-gcide), or pass a text file with --corpus FILE"
              << std::endl;
    return 2;
  }
  spdlog::info("training {} on {} at D={}, {} layers, {} steps of {} sequences, seed {}, {} thread(s), {} on {}", program.name,
               config.task == training::Task::Mqar ? "MQAR" : "byte-level LM", config.d_model, config.layers, config.steps, config.batch,
               config.seed, config.threads, config.dtype, config.device);
  const int64_t every = std::max<int64_t>(1, config.steps / 10);
  const training::TrainMetrics metrics = training::train_program(program, config, [every](int64_t step, int64_t steps, double loss) {
    if (step % every == 0 || step == steps) spdlog::info("step {}/{} loss {:.4f}", step, steps, loss);
  });
  if (args.json) print_json(args, program, config, metrics);
  else print_text(config, metrics);
  if (!metrics.weights_error.empty()) {
    std::cerr << "the weights were not saved: " << metrics.weights_error << std::endl;
    return 1;
  }
  if (metrics.ok && !args.save_weights.empty()) spdlog::info("weights saved to {}", args.save_weights);
  return metrics.ok ? 0 : 1;
}

}  // namespace

void add_train_commands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train one program (a baseline's name or a file) on MQAR or byte-level LM, outside a campaign");
  cmd->add_option("program", args->program, "A shipped program's name (see `arch list`) or a program file")->required();
  cmd->add_option("--task", args->task, "mqar (accuracy at query positions) or lm (held-out bits per byte)")
      ->required()
      ->transform(CLI::CheckedTransformer(std::map<std::string, training::Task>{{"mqar", training::Task::Mqar}, {"lm", training::Task::Lm}}));
  cmd->add_option("--fidelity", args->verify, "explore (tiny, seconds) or verify (twice as wide, longer)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, bool>{{"explore", false}, {"verify", true}}))
      ->default_str("explore");
  cmd->add_option("--seed", args->seed, "Seed of the weights and the training batches (default: the fidelity's)")->check(seed_text());
  cmd->add_option("--threads", args->threads, "libtorch threads; results are bit-identical at a fixed count (default: the fidelity's)")
      ->check(CLI::Range(1, kMaxTorchThreads));
  cmd->add_option("--steps", args->steps, "Optimiser steps instead of the fidelity's (warm-up keeps its share)")->check(CLI::PositiveNumber);
  cmd->add_option("--corpus", args->corpus, "Text file (plain or gzip) for --task lm instead of GCIDE from dict-gcide");
  cmd->add_option("--save-weights", args->save_weights,
                  "Write the trained model's parameters to FILE (safetensors); `asiarch export FILE -o model.py` exports the model with them");
  add_device_option(cmd, args->device);
  cmd->add_option("--dtype", args->dtype, "float32, or bfloat16: mixed precision (matrix products in bfloat16; weights, states, norms and loss in float32)")
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "End with one JSON line: status, failure, loss, accuracy or bits_per_byte, tokens_per_second, ..., device, torch_version");
  cmd->callback([args, &exit_code] { exit_code = train(*args); });
}

}  // namespace asiarch::tools
