// Devices: where training runs. CI has no GPU, so what is tested here is what a CPU machine can
// show: the CPU is a device like any other, a CUDA request that cannot be met is refused with
// exit 2 and nothing written, and the slots' spread over GPUs. tools/gpu-check.sh runs the
// CUDA side on a machine that has one.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "messages/codec.h"
#include "scenario/run_header.h"
#include "scenario/scenario.h"
#include "storage/run_store.h"
#include "test_helpers.h"
#include "training/training.h"

using namespace asiarch;
using namespace asiarch::testing;

namespace {

// Whether this build and machine can train on CUDA; most tests below are about when it cannot.
bool cuda_trains() { return training::device_info("cuda").problem.empty(); }

// DeltaNet, and a short training of it on `task`.
const lang::Program& deltanet() {
  static const lang::Program program = lang::parse(lang::find_baseline("deltanet")->text, "deltanet");
  return program;
}

training::TrainConfig short_training(training::Task task) {
  training::TrainConfig config = training::explore_config(task);
  config.steps = 12;
  config.warmup_steps = 2;
  config.mqar.test_examples = 8;
  config.lm.eval_bytes = 4096;
  return config;
}

}  // namespace

TEST_CASE("device_info names the CPU, and says what is wrong with a device it cannot train on", "[device]") {
  const training::DeviceInfo cpu = training::device_info("cpu");
  CHECK(cpu.problem.empty());
  CHECK(cpu.name == "cpu");
  CHECK(!cpu.torch_version.empty());

  CHECK_THAT(training::device_info("tpu").problem, Catch::Contains("is not a device"));
  CHECK_THAT(training::device_info("").problem, Catch::Contains("is not a device"));
  CHECK_THAT(training::device_info("cpu:1").problem, Catch::Contains("write cpu"));

  const training::DeviceInfo cuda = training::device_info("cuda");
  if (!cuda.cuda_built) {
    CHECK_THAT(cuda.problem, Catch::Contains("without CUDA") && Catch::Contains("TORCH_DIR"));
  } else if (cuda.cuda_devices == 0) {
    CHECK_THAT(cuda.problem, Catch::Contains("no CUDA GPU is visible"));
  } else {
    CHECK(cuda.problem.empty());
    CHECK(!cuda.name.empty());
    CHECK_THAT(training::device_info("cuda:" + std::to_string(cuda.cuda_devices)).problem, Catch::Contains("does not exist"));
  }
}

TEST_CASE("gpu-slots spread over the visible GPUs", "[device]") {
  CHECK(training::slot_device("cuda", 0, 2) == "cuda:0");
  CHECK(training::slot_device("cuda", 5, 2) == "cuda:1");
  CHECK(training::slot_device("cuda", 3, 1) == "cuda:0");
  CHECK(training::slot_device("cuda", 3, 0) == "cuda");  // no GPU: training then says so
  CHECK(training::slot_device("cpu", 7, 4) == "cpu");
  CHECK(training::slot_device("cuda:1", 0, 4) == "cuda:1");
}

TEST_CASE("training on a device it cannot use fails with the reason, and on the CPU records where it ran", "[device]") {
  training::TrainConfig config = short_training(training::Task::Mqar);
  const training::TrainMetrics on_cpu = training::train_program(deltanet(), config);
  REQUIRE(on_cpu.ok);
  CHECK(on_cpu.device_name == "cpu");
  CHECK(!on_cpu.torch_version.empty());

  config.device = "tpu";
  const training::TrainMetrics nowhere = training::train_program(deltanet(), config);
  CHECK(!nowhere.ok);
  CHECK(nowhere.failure_kind == msg::FailureKind::MODEL);
  CHECK_THAT(nowhere.failure, Catch::StartsWith("device: "));
}

TEST_CASE("bfloat16 mixed precision trains, bit-identically run to run, on the CPU too", "[device]") {
  training::TrainConfig config = short_training(training::Task::Lm);
  const training::TrainMetrics full = training::train_program(deltanet(), config);
  config.dtype = "bfloat16";
  const training::TrainMetrics mixed = training::train_program(deltanet(), config), again = training::train_program(deltanet(), config);
  REQUIRE(full.ok);
  REQUIRE(mixed.ok);
  CHECK(mixed.loss == again.loss);  // bit for bit
  CHECK(mixed.loss != full.loss);   // the products did run in bfloat16
  CHECK(std::abs(mixed.loss - full.loss) < 0.05 * full.loss);
  config.dtype = "float16";
  CHECK_THAT(training::train_program(deltanet(), config).failure, Catch::Contains("neither float32 nor bfloat16"));
}

TEST_CASE("[live] dtype takes float32 or bfloat16", "[device]") {
  CHECK(parse_scenario(kTinyLiveScenario, "live.toml").live.dtype == "float32");
  CHECK(parse_scenario(std::string(kTinyLiveScenario) + "dtype = \"bfloat16\"\n", "live.toml").live.dtype == "bfloat16");
  CHECK_THROWS_WITH(parse_scenario(std::string(kTinyLiveScenario) + "dtype = \"fp8\"\n", "live.toml"),
                    Catch::StartsWith("live.toml:42:") && Catch::Contains("\"float32\" or \"bfloat16\""));
}

TEST_CASE("[live] device takes cpu or cuda", "[device]") {
  CHECK(parse_scenario(kTinyLiveScenario, "live.toml").live.device == "cpu");
  CHECK(parse_scenario(std::string(kTinyLiveScenario) + "device = \"cuda\"\n", "live.toml").live.device == "cuda");
  CHECK_THROWS_WITH(parse_scenario(std::string(kTinyLiveScenario) + "device = \"gpu\"\n", "live.toml"),
                    Catch::StartsWith("live.toml:42:") && Catch::Contains("\"cpu\" or \"cuda\""));
}

TEST_CASE("a CUDA request that cannot be met exits 2 and writes nothing", "[device]") {
  if (cuda_trains()) return;  // on a GPU machine, tools/gpu-check.sh runs these commands for real
  const auto weights = fresh_dir("device-weights") / "w.safetensors";
  const Result train = sh(cli("train deltanet --task mqar --steps 2 --device cuda --save-weights " + weights.string()));
  CHECK(train.code == 2);
  CHECK_THAT(train.output, Catch::Contains("device cuda:"));
  CHECK(!std::filesystem::exists(weights));

  for (const std::string command : {"bench kernels --device cuda", "bench train --device cuda:1",
                                    "worker --connect 127.0.0.1:9 --secret-file /nonexistent --device cuda"}) {
    INFO(command);
    CHECK(sh(cli(command)).code == 2);
  }

  const auto out = fresh_dir("device-run");
  const std::string scenario = write_file(fresh_dir("device-run.toml"), std::string(kTinyLiveScenario) + "device = \"cuda\"\n");
  const Result run = sh(cli("run " + scenario + " --out " + out.string()));
  CHECK(run.code == 2);
  CHECK_THAT(run.output, Catch::Contains("[live] device = \"cuda\""));
  CHECK(!std::filesystem::exists(out));
}

TEST_CASE("gpu_slots = 0 is one slot per GPU: only on cuda, and the run's start event keeps the count", "[device]") {
  const std::string on_cuda = std::string(kTinyLiveScenario) + "device = \"cuda\"\n";
  const auto with_slots = [](std::string text, const char* slots) { return text.replace(text.find("gpu_slots = 2"), 13, slots); };
  CHECK(parse_scenario(with_slots(on_cuda, "gpu_slots = 0"), "live.toml").campaign.gpu_slots == 0);
  CHECK_THROWS_WITH(parse_scenario(with_slots(kTinyLiveScenario, "gpu_slots = 0"), "live.toml"),
                    Catch::StartsWith("live.toml:7:") && Catch::Contains("one slot per GPU"));
  CHECK_THROWS_WITH(parse_scenario(testing::edited_text("scenarios/sim-smoke.toml", "gpu_slots = 4", "gpu_slots = 0"), "sim.toml"),
                    Catch::Contains("needs mode = \"live\""));

  // Replay and resume read the count from the start event, on any machine.
  const Scenario scenario = parse_scenario(with_slots(on_cuda, "gpu_slots = 0"), "live.toml");
  const auto dir = fresh_dir("gpu-slots-zero");
  {
    auto store = storage::RunStore::create(dir);
    const std::string header = run_header_bytes(scenario, 3);
    store->put_meta(meta_key::kHeader, header);
    store->begin_chain(header);
    capnp::MallocMessageBuilder message;
    auto event = message.initRoot<msg::Event>();
    event.setSeq(1);
    auto start = event.initPayload().initStart();
    start.setGpuSlots(3);
    store->append_event(1, msg::canonical_bytes(event.asReader()));
    store->commit();
  }
  const auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  CHECK(read_recorded_run(*store).scenario.campaign.gpu_slots == 3);
  std::filesystem::remove_all(dir);
}
