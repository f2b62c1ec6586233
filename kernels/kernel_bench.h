#pragma once
// `asiarch bench kernels`: throughput of the fused recurrence kernels (kernels/recurrences.h) and
// of the chunkwise forms against the same recurrences composed op by op from libtorch ops,
// measured in the same run. Torch-free, for tools/.
#include <cstdint>
#include <string>
#include <vector>

namespace asiarch::kernel_bench {

struct Options {
  int64_t batch = 4;
  int64_t heads = 4;
  int64_t length = 1024;
  std::vector<int64_t> head_sizes = {32, 64};  // dk = dv
  int64_t window = 64;                         // of sliding-window attention
  int threads = 1;                             // torch intra-op threads, for both sides
  double min_seconds = 1.0;                    // measuring time per kernel and head size, at least
  std::string device = "cpu";                  // "cuda" or "cuda:N": there the fused column is the chunkwise form too
};

// One kernel at one head size: forward + backward of float32 inputs, tokens = batch x length.
struct Result {
  std::string name;
  int64_t head_size = 0;
  double tokens_per_second = 0;            // the fused kernel (median over repetitions)
  double chunkwise_tokens_per_second = 0;  // the chunkwise form (median)
  double reference_tokens_per_second = 0;  // the op-by-op reference (median)
  double speedup = 0;                      // tokens_per_second / reference_tokens_per_second
};

struct Environment {
  int threads = 0;
  std::string blas;             // the BLAS libtorch was built with
  std::string cpu;              // model name
  std::string instruction_set;  // the one the kernels' hot loops run with
};

// Runs every kernel at every head size of `options`; the forms' repetitions interleave.
std::vector<Result> run(const Options& options);
Environment environment(int threads);

}  // namespace asiarch::kernel_bench
