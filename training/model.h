#pragma once
// Internal to training/ and export/ (and their tests): the torch modules built from programs, the seeded
// stream that draws their weights and the tasks' data, and the measurement of live tensor
// memory. Includes torch; the actors and tools see only training/training.h.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lang/program.h"
#include "training/safetensors.h"

namespace asiarch::model {

// An exception's message; for libtorch's errors without the C++ backtrace they carry.
std::string error_text(const std::exception& e);

// libtorch's threads for this process: `threads` intra-op threads and one inter-op thread.
// Results are bit-identical only at a fixed intra-op count.
void set_torch_threads(int threads);

// Bytes of tensor memory allocated on this thread while the scope lives (and freed anywhere),
// with their peak. Counts through a wrapper of c10's CPU allocator, installed on first use, so
// the figures are exact and deterministic (unlike the process's resident size). Scopes nest:
// the innermost one counts.
class MemoryScope {
 public:
  struct Counter;
  MemoryScope();
  ~MemoryScope();
  MemoryScope(const MemoryScope&) = delete;
  MemoryScope& operator=(const MemoryScope&) = delete;
  uint64_t live_bytes() const;
  uint64_t peak_bytes() const;

 private:
  std::shared_ptr<Counter> counter_;
  std::shared_ptr<Counter> outer_;
};

// The mixer a program describes, built at width d_model from the program's checked types.
// Only the statements the result depends on are built, so its parameter count is
// lang::derive(program, {d_model, T}).params. Weights are drawn from streams named by
// `prefix` and each parameter's name, so the same seed gives the same weights. With
// `zero_output`, a returned linear starts at zero (see ModelConfig).
class MixerImpl : public torch::nn::Module {
 public:
  // With `bfloat16_matmuls`, its linear maps multiply in bfloat16 (ModelConfig).
  MixerImpl(const lang::Program& program, int64_t d_model, uint64_t seed, const std::string& prefix, bool zero_output = false,
            bool bfloat16_matmuls = false);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, D] -> [B, T, D]
  // residual + forward(x); a mixer that returns a linear map adds its product onto the residual
  // in place, in the same call (kernels::add_linear_), so the residual must be a tensor nothing
  // else reads (kernels::pre_norm's copy).
  torch::Tensor forward_onto(torch::Tensor& residual, const torch::Tensor& x);
  // The sum of the program's penalty terms in the last forward (undefined without any).
  const torch::Tensor& auxiliary_loss() const { return auxiliary_loss_; }

 private:
  struct Node;
  void fuse_conv_silu(const std::vector<std::string>& names, const std::vector<std::string>& ops, const std::vector<int>& readers);
  void share_input_linears();
  torch::Tensor run(const torch::Tensor& x, torch::Tensor* residual);
  bool bfloat16_matmuls_ = false;
  bool result_is_added_onto_ = false;  // see forward_onto
  torch::Tensor auxiliary_loss_;
  std::vector<std::shared_ptr<Node>> nodes_;  // live statements, in body order
  size_t result_ = 0;                         // index in nodes_ of the returned value
};
TORCH_MODULE(Mixer);

struct ModelConfig {
  int64_t vocab = 256;
  int64_t d_model = 64;
  int64_t layers = 2;
  uint64_t seed = 1;
  // The projections that end residual branches start at zero (for training); false: random
  // like the others (for probes, which must see the mixer's output).
  bool zero_residual_projections = true;
  // Mixed precision (TrainConfig::dtype "bfloat16"): the blocks' linear maps multiply in
  // bfloat16, while the weights, the embedding and tied head, the residual stream, the norms, the
  // recurrent states and the loss stay in float32.
  bool bfloat16_matmuls = false;
};

// SwiGLU's hidden width: about 8/3 D (Shazeer, 2020, arXiv:2002.05202), a multiple of 8.
int64_t mlp_hidden_width(int64_t d_model);

// The fixed model (docs/ARCHITECTURE.md, "The model around a mixer"): token embedding, `layers`
// blocks of (pre-RMSNorm mixer + residual, pre-RMSNorm SwiGLU MLP + residual), a final RMSNorm
// and the output head tied to the embedding.
class LanguageModelImpl : public torch::nn::Module {
 public:
  LanguageModelImpl(const lang::Program& program, const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& tokens);  // [B, T] int64 -> logits [B, T, vocab]
  int64_t mixer_params() const;                        // of one block's mixer
  // The mixers' auxiliary losses (penalty) in the last forward, summed over blocks; training
  // adds it to the loss it minimises. Undefined when the program has none.
  const torch::Tensor& auxiliary_loss() const { return auxiliary_loss_; }

 private:
  struct Block;
  torch::Tensor embedding_;
  std::vector<std::shared_ptr<Block>> blocks_;
  torch::Tensor final_gain_;
  torch::Tensor auxiliary_loss_;
};
TORCH_MODULE(LanguageModel);

// Every parameter of a module by its full name ("block0.mixer.q_proj.weight"), in registration
// order, as safetensors data (float32 or float64, on the CPU).
std::vector<safetensors::TensorBytes> parameter_tensors(const torch::nn::Module& module);
// Sets every parameter of a module from tensors of those names and shapes (converted to the
// parameter's dtype). Throws std::invalid_argument naming a missing, extra or misshapen one.
void load_parameters(torch::nn::Module& module, const std::vector<safetensors::TensorBytes>& tensors);

}  // namespace asiarch::model
