// Micro-benchmarks of the foundation's hot paths (Google Benchmark). Each group has a reference
// measured in the same run, and the program ends with each benchmark's time as a ratio of its
// reference, because absolute figures on a shared machine are noise.
//   asiarch_bench [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>
#include <unistd.h>

#include "lang/program.h"
#include "messages/codec.h"
#include "storage/run_store.h"

namespace {

using namespace asiarch;

// A typical logged event: a proposal with a program in it.
std::string sample_event(uint64_t seq) {
  capnp::MallocMessageBuilder message;
  auto event = message.initRoot<msg::Event>();
  event.setSeq(seq);
  event.setVtimeNs(seq * 1000);
  event.setFrom("researcher");
  event.setTo("engineer");
  auto proposal = event.initPayload().initProposal();
  proposal.setArchId(seq);
  proposal.setProgram(lang::find_baseline("deltanet")->text);
  proposal.setOperator("wrap_norm");
  proposal.setMotivation("normalise keys, following the insight about the delta rule");
  return msg::canonical_bytes(event.asReader());
}

// Reference for the log: the hash chain alone.
void BM_Log_ChainOnly(benchmark::State& state) {
  const std::string event = sample_event(1);
  storage::Digest head = storage::sha256("header");
  uint64_t seq = 0;
  for (auto _ : state) benchmark::DoNotOptimize(head = storage::chain_next(head, ++seq, event));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * event.size()));
}
BENCHMARK(BM_Log_ChainOnly);

// The event log as campaigns write it: LMDB append, chain link, a commit every 4096 events.
void BM_Log_LmdbAppend(benchmark::State& state) {
  const std::string event = sample_event(1);
  const auto dir = std::filesystem::temp_directory_path() / ("asiarch-bench-log-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto store = storage::RunStore::create(dir);
    store->begin_chain("header");
    uint64_t seq = 0;
    for (auto _ : state) {
      store->append_event(++seq, event);
      if (seq % 4096 == 0) store->commit();
    }
    store->commit();
  }
  std::filesystem::remove_all(dir);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * event.size()));
}
BENCHMARK(BM_Log_LmdbAppend);

// Reference for the language: parsing a program.
void BM_Lang_Parse(benchmark::State& state) {
  const std::string text = lang::find_baseline("gated_deltanet")->text;
  for (auto _ : state) benchmark::DoNotOptimize(lang::parse(text, "gdn"));
}
BENCHMARK(BM_Lang_Parse);

void BM_Lang_Check(benchmark::State& state) {
  const lang::Program program = lang::parse(lang::find_baseline("gated_deltanet")->text, "gdn");
  for (auto _ : state) benchmark::DoNotOptimize(lang::check(program, lang::ModelShape{}));
}
BENCHMARK(BM_Lang_Check);

void BM_Lang_StructuralHash(benchmark::State& state) {
  const lang::Program program = lang::parse(lang::find_baseline("gated_deltanet")->text, "gdn");
  for (auto _ : state) benchmark::DoNotOptimize(lang::structural_hash(program));
}
BENCHMARK(BM_Lang_StructuralHash);

// Simulation's duplicate key, computed for every child the researcher tries.
void BM_Lang_AlgebraicHash(benchmark::State& state) {
  const lang::Program program = lang::parse(lang::find_baseline("gated_deltanet")->text, "gdn");
  for (auto _ : state) benchmark::DoNotOptimize(lang::algebraic_hash(program));
}
BENCHMARK(BM_Lang_AlgebraicHash);

// Console output as usual, then every benchmark's time against its group's reference.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) seconds_[run.benchmark_name()] = run.GetAdjustedRealTime();
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    const std::map<std::string, std::string> reference_of = {
        {"BM_Log_LmdbAppend", "BM_Log_ChainOnly"}, {"BM_Lang_Check", "BM_Lang_Parse"}, {"BM_Lang_StructuralHash", "BM_Lang_Parse"},
        {"BM_Lang_AlgebraicHash", "BM_Lang_Parse"}};
    std::printf("\nratio to the reference measured in this run:\n");
    for (const auto& [name, reference] : reference_of) {
      if (seconds_.count(name) && seconds_.count(reference)) {
        std::printf("  %-24s %6.2fx %s\n", name.c_str(), seconds_[name] / seconds_[reference], reference.c_str());
      }
    }
  }

 private:
  std::map<std::string, double> seconds_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
