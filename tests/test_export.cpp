// `asiarch export --format pytorch`, the weights live runs keep and `asiarch train --save-weights`:
// an exported module, run by Debian's PyTorch (python3-torch) on the weights asiarch wrote, must
// compute the C++ model's logits. Both sides run in float64.
#include <map>
#include <sstream>

#include "training/model.h"
#include "training/safetensors.h"
#include "messages/codec.h"
#include "storage/run_store.h"
#include "tests/test_helpers.h"

// libtorch's c10 logging defines CHECK (abort on failure, invisible to Catch): Catch's must win.
#undef CHECK
#include <catch2/catch.hpp>

using namespace asiarch;
using asiarch::testing::cli;
using asiarch::testing::fresh_dir;
using asiarch::testing::last_line;
using asiarch::testing::read_file;
using asiarch::testing::Result;
using asiarch::testing::sh;
using asiarch::testing::source;
using asiarch::testing::write_file;

namespace {

// Debian's interpreter, where python3-torch installs torch (a python3 earlier on PATH may lack it).
const char* kPython = "/usr/bin/python3";
// The sizes of `asiarch export PROGRAM --task mqar --d-model 32 --layers 2`: the MQAR explore vocab.
constexpr int64_t kVocab = 64, kDModel = 32, kLayers = 2;
// float64 on both sides: what is left is the order of floating-point sums.
constexpr double kTolerance = 1e-10;

safetensors::TensorBytes tensor_bytes(const std::string& name, const torch::Tensor& tensor) {
  const torch::Tensor t = tensor.contiguous();
  safetensors::TensorBytes out;
  out.name = name;
  out.dtype = t.scalar_type() == torch::kInt64 ? safetensors::DType::I64 : safetensors::DType::F64;
  out.shape = t.sizes().vec();
  out.data.assign(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

// Fixed tokens [2, 12] below `vocab`.
torch::Tensor fixed_tokens(int64_t vocab) {
  const auto position = torch::arange(12, torch::kInt64);
  return torch::stack({(3 * position * position + 1) % vocab, (7 * position + 5) % vocab});
}

// The C++ model's logits in float64 on fixed tokens, beside the exported module as
// DIR/NAME.logits.safetensors; returns its parameter count.
int64_t write_logits(model::LanguageModel& net, int64_t vocab, const std::filesystem::path& dir, const std::string& name) {
  net->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens = fixed_tokens(vocab);
  const torch::Tensor logits = net->forward(tokens);
  std::vector<safetensors::TensorBytes> expected = {tensor_bytes("tokens", tokens), tensor_bytes("logits", logits)};
  if (net->auxiliary_loss().defined()) expected.push_back(tensor_bytes("auxiliary_loss", net->auxiliary_loss()));
  safetensors::write_file(dir / (name + ".logits.safetensors"), expected);
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  return params;
}

struct PythonResult {
  double error;
  int64_t params;
};

// tests/export_check.py over the named cases of `dir`, in one python process.
std::map<std::string, PythonResult> python_check(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  std::string command = std::string(kPython) + " " + source("tests/export_check.py") + " " + dir.string();
  for (const auto& name : names) command += " " + name;
  const Result python = sh(command);
  INFO(python.output);
  REQUIRE(python.code == 0);
  std::map<std::string, PythonResult> results;
  std::istringstream lines(python.output);
  std::string name;
  double error = 0;
  int64_t params = 0;
  while (lines >> name >> error >> params) results[name] = PythonResult{error, params};
  REQUIRE(results.size() == names.size());
  return results;
}

std::string digest_of(const std::string& output) {
  const std::string line = last_line(output);
  REQUIRE(line.rfind("digest: ", 0) == 0);
  return line.substr(8);
}

// A live campaign small enough that each job trains in a second or two on one thread.
// One gpu-slot: the start programs train first and in order, so both finish before the two
// experiments are reached (with two slots a fast child could overtake the slow FIR model, whose
// job the campaign's end then cancels half-way).
const char* kTinyLive = R"(name = "live-export"
mode = "live"
seed = 5

[campaign]
max_experiments = 2
gpu_slots = 1
start = ["deltanet", "fusion_gated_firnet"]
reference = "deltanet"

[model]
param_tolerance = 1.5

[fidelity.explore]
d_model = 32
layers = 1
steps = 8
batch = 4

[fidelity.verify]
d_model = 32
layers = 1
steps = 8
batch = 4

[task.mqar]
vocab = 64
seq_len = 32
kv_pairs = 4
test_examples = 16

[task.lm]
seq_len = 32
eval_bytes = 1024

[live]
threads = 1
measure_context = 64
)";

}  // namespace

TEST_CASE("export: every shipped program's PyTorch module computes the C++ model's logits", "[export]") {
  const auto dir = fresh_dir("export-programs");
  std::filesystem::create_directories(dir);
  std::vector<lang::Baseline> shipped = lang::baselines();
  shipped.insert(shipped.end(), lang::discoveries().begin(), lang::discoveries().end());
  // And a program with every operator and form that numbers brought (numbers, offsets, init=).
  const std::string every_addition = source("tests/programs/every_addition.arch");
  shipped.push_back(lang::Baseline{"every_addition", read_file(every_addition), false});
  std::vector<std::string> names;
  std::map<std::string, int64_t> cpp_params;
  for (const auto& b : shipped) {
    INFO(b.name);
    const std::string what = b.name == "every_addition" ? every_addition : b.name;
    const Result exported = sh(cli("export " + what + " --format pytorch --task mqar --d-model 32 --layers 2 -o " +
                                   (dir / (b.name + ".py")).string()));
    INFO(exported.output);
    REQUIRE(exported.code == 0);
    CHECK(exported.output.find("weights: none, exported from the program alone") != std::string::npos);
    // Random residual projections, so that every mixer shapes the logits.
    model::LanguageModel net(lang::parse(b.text, b.name), model::ModelConfig{kVocab, kDModel, kLayers, 11, false});
    safetensors::write_file(dir / (b.name + ".safetensors"), model::parameter_tensors(*net));
    cpp_params[b.name] = write_logits(net, kVocab, dir, b.name);
    names.push_back(b.name);
  }
  for (const auto& [name, result] : python_check(dir, names)) {
    INFO(name);
    WARN("max relative error of the exported " << name << " (float64): " << result.error);
    CHECK(result.error < kTolerance);
    CHECK(result.params == cpp_params.at(name));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("export: weights files round-trip, and wrong ones are refused with their name", "[export]") {
  const auto dir = fresh_dir("export-roundtrip");
  std::filesystem::create_directories(dir);
  const lang::Program program = lang::parse(lang::find_baseline("content_sharp_router")->text);
  model::LanguageModel saved(program, model::ModelConfig{kVocab, kDModel, 1, 3, false});
  safetensors::write_file(dir / "w.safetensors", model::parameter_tensors(*saved), {{"note", "a \"quoted\"\nline"}});
  const safetensors::Contents contents = safetensors::read_file(dir / "w.safetensors");
  CHECK(contents.metadata.at("note") == "a \"quoted\"\nline");
  model::LanguageModel loaded(program, model::ModelConfig{kVocab, kDModel, 1, 4, false});
  model::load_parameters(*loaded, contents.tensors);
  const auto tokens = fixed_tokens(kVocab);
  CHECK(torch::equal(saved->forward(tokens), loaded->forward(tokens)));

  model::LanguageModel other(lang::parse(lang::find_baseline("deltanet")->text), model::ModelConfig{kVocab, kDModel, 1, 3, false});
  // DeltaNet's parameters are a subset of the router's: one way a tensor is left over, the other way one is missing.
  CHECK_THROWS_WITH(model::load_parameters(*other, contents.tensors), Catch::Contains("is no parameter of the model"));
  CHECK_THROWS_WITH(model::load_parameters(*loaded, model::parameter_tensors(*other)), Catch::Contains("no tensor for the parameter"));
  write_file(dir / "broken.safetensors", "not a safetensors file");
  CHECK_THROWS_WITH(safetensors::read_file(dir / "broken.safetensors"), Catch::Contains("broken.safetensors"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("export: a live run keeps its weights outside the log, and they export and match", "[export][live]") {
  const auto dir = fresh_dir("export-live");
  const std::string scenario = write_file(fresh_dir("export-live.toml"), kTinyLive);
  const Result run = sh(cli("run " + scenario + " --out " + dir.string()));
  INFO(run.output);
  REQUIRE(run.code == 0);
  // The weights are no part of the log: replays recompute the run's digest, twice.
  for (int round = 0; round < 2; ++round) {
    const Result replay = sh(cli("replay " + dir.string()));
    INFO(replay.output);
    REQUIRE(replay.code == 0);
    CHECK(digest_of(replay.output) == digest_of(run.output));
  }
  CHECK(sh(cli("check " + dir.string())).code == 0);
  // The start programs, arch 1 (deltanet) and 2 (fusion_gated_firnet), trained at explore.
  for (const char* file : {"arch-1-explore-lm", "arch-1-explore-mqar", "arch-2-explore-lm", "arch-2-explore-mqar"}) {
    INFO(file);
    CHECK(std::filesystem::is_regular_file(dir / "weights" / (std::string(file) + ".safetensors")));
  }

  const auto out = fresh_dir("export-live-out");
  const Result exported = sh(cli("export " + dir.string() + " --arch 2 --fidelity explore --format pytorch -o " + (out / "fgf.py").string()));
  INFO(exported.output);
  REQUIRE(exported.code == 0);
  const auto kept = dir / "weights" / "arch-2-explore-lm.safetensors";
  REQUIRE(std::filesystem::is_regular_file(out / "fgf.safetensors"));
  CHECK(testing::read_file(out / "fgf.safetensors") == testing::read_file(kept));

  // The C++ model of the kept weights, rebuilt from their metadata.
  const safetensors::Contents contents = safetensors::read_file(kept);
  CHECK(contents.metadata.at("task") == "lm");
  const lang::Program program = lang::parse(contents.metadata.at("program"));
  CHECK(program.name == "fusion_gated_firnet");
  const int64_t vocab = std::stoll(contents.metadata.at("vocab"));
  model::LanguageModel net(program, model::ModelConfig{vocab, std::stoll(contents.metadata.at("d_model")),
                                                       std::stoll(contents.metadata.at("layers")), 1});
  model::load_parameters(*net, contents.tensors);
  const int64_t params = write_logits(net, vocab, out, "fgf");
  const PythonResult result = python_check(out, {"fgf"}).at("fgf");
  WARN("max relative error of the exported live arch 2 (float64): " << result.error);
  CHECK(result.error < kTolerance);
  CHECK(result.params == params);

  // Bad requests: exit 2 with a message.
  const std::string py = " -o " + (out / "x.py").string();
  const Result unknown_arch = sh(cli("export " + dir.string() + " --arch 999" + py));
  CHECK(unknown_arch.code == 2);
  CHECK(unknown_arch.output.find("has no architecture 999") != std::string::npos);
  const Result no_arch = sh(cli("export " + dir.string() + py));
  CHECK(no_arch.code == 2);
  CHECK(no_arch.output.find("--arch") != std::string::npos);
  const Result format = sh(cli("export " + dir.string() + " --arch 2 --format onnx" + py));
  CHECK(format.code == 2);
  CHECK(format.output.find("unknown format 'onnx'") != std::string::npos);
  const Result program_arch = sh(cli("export deltanet --arch 2" + py));
  CHECK(program_arch.code == 2);
  const Result unknown_program = sh(cli("export no_such_program" + py));
  CHECK(unknown_program.code == 2);
  CHECK(unknown_program.output.find("neither a shipped program nor a file") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out / "x.py"));
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(out);
}

TEST_CASE("export: asiarch train --save-weights keeps the trained model with its program", "[export]") {
  const auto dir = fresh_dir("export-train");
  std::filesystem::create_directories(dir);
  const auto weights = dir / "fgf.safetensors";
  const Result train = sh(cli("train fusion_gated_firnet --task mqar --steps 3 --save-weights " + weights.string()));
  INFO(train.output);
  REQUIRE(train.code == 0);
  const safetensors::Contents contents = safetensors::read_file(weights);
  CHECK(lang::parse(contents.metadata.at("program")).name == "fusion_gated_firnet");
  CHECK(contents.metadata.at("task") == "mqar");
  model::LanguageModel net(lang::parse(contents.metadata.at("program")), model::ModelConfig{64, 64, 2, 1});
  CHECK_NOTHROW(model::load_parameters(*net, contents.tensors));
  // The weights file alone exports: its metadata names the program and the sizes.
  const Result exported = sh(cli("export " + weights.string() + " -o " + (dir / "m.py").string()));
  INFO(exported.output);
  REQUIRE(exported.code == 0);
  CHECK(testing::read_file(dir / "m.safetensors") == testing::read_file(weights));
  const std::string module = testing::read_file(dir / "m.py");
  CHECK(module.find("VOCAB = 64\nD_MODEL = 64\nLAYERS = 2\n") != std::string::npos);
  CHECK(module.find("PROGRAM = \"# FusionGatedFIRNet") != std::string::npos);
  write_file(dir / "foreign.safetensors", "not weights");
  CHECK(sh(cli("export " + (dir / "foreign.safetensors").string() + " -o " + (dir / "f.py").string())).code == 2);
  const Result unwritable = sh(cli("train fusion_gated_firnet --task mqar --steps 2 --save-weights /nonexistent/dir/w.safetensors"));
  CHECK(unwritable.code == 1);
  CHECK(unwritable.output.find("the weights were not saved") != std::string::npos);
  std::filesystem::remove_all(dir);
}
