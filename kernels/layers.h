#pragma once
// Layers that every model runs many times per step, as single kernels with autograd: the token
// embedding, the linear maps, the depthwise convolution over time (short_conv, fir), RMSNorm, L2
// normalisation, SiLU, SwiGLU and the cross-entropy. Built from libtorch ops,
// each is a dozen small operations forward and more backward (a short convolution of k taps is k
// slices whose backward each writes a zero tensor of the full size); on the explore model they took
// about a third of a training step. Internal to kernels/: it includes torch.
//
// CPU float32 and float64 tensors run the fused loops; anything else (CUDA, half precision)
// runs the op forms in `reference`, whose autograd libtorch derives. Every sum has a fixed
// order, so results do not depend on the thread count.
#include <torch/torch.h>

namespace asiarch::kernels {

// weight[tokens]: the rows of weight [vocab, width] for integer tokens [...], [..., width]
// (embedding.cpp). The backward adds the rows' gradients in token order, as libtorch does, in a
// loop instead of an iterator per token.
torch::Tensor embedding(const torch::Tensor& weight, const torch::Tensor& tokens);

// Depthwise convolution over time of a [B, T, n] with taps [n, K]: output t reads the inputs
// t - before ... t + after (K = before + after + 1), zero beyond the sequence.
torch::Tensor depthwise_conv(const torch::Tensor& a, const torch::Tensor& taps, int64_t before, int64_t after);

// silu(depthwise_conv(a, taps, before, after)) in one pass each way (the q, k and v of DeltaNet and
// Mamba-2 pass a short convolution and then SiLU): the same bits as the two.
torch::Tensor depthwise_conv_silu(const torch::Tensor& a, const torch::Tensor& taps, int64_t before, int64_t after);

// a * rsqrt(mean(a^2 over the last dimension) + epsilon) * gain, gain [last dimension]. A dense
// input whose last dimension is contiguous is read in place (the heads of split_heads), and the
// output keeps its layout; the gain's gradient then adds the rows in memory order.
torch::Tensor rms_norm(const torch::Tensor& a, const torch::Tensor& gain, double epsilon);

// The input of a pre-norm residual block: h's RMSNorm, and a copy of h for the block to add its
// branch onto in place (add_linear_). The copy is written in the norm's pass over h, and its
// gradient is added to h's in the norm's backward pass; a block that added onto h itself would
// leave autograd that addition as one more pass, and need a copy of h all the same (the norm
// keeps h for its backward).
struct PreNorm {
  torch::Tensor normed, residual;
};
PreNorm pre_norm(const torch::Tensor& h, const torch::Tensor& gain, double epsilon);

// a * rsqrt(sum(a^2 over the last dimension) + epsilon): RMSNorm with gain 1 / sqrt(width) and
// epsilon / width, run by its kernel.
torch::Tensor l2_norm(const torch::Tensor& a, double epsilon);

// a * sigmoid(a) (activations.cpp). The forward keeps the sigmoid, so the backward needs no exp.
torch::Tensor silu(const torch::Tensor& a);

// silu(gate) * value, the gated product of a SwiGLU layer, from [..., 2n] = [gate | value]: the
// MLP's gate and value are one matrix product, and the gradient is one tensor again, so neither
// direction splits or joins the halves.
torch::Tensor swiglu(const torch::Tensor& gate_value);

// The mean over rows of -log softmax(logits)[target], logits [N, V] and targets [N] (integers),
// rows whose target is ignore_index left out (cross_entropy.cpp).
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index);

// x W^T over the last dimension of x, weight [out, in] (linear.cpp). CPU float32 runs oneDNN's
// matmul primitive; anything else torch::linear.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight);

// x W_i^T for each weight, as one autograd node: its backward adds x's gradients up inside the
// products (each after the first adds onto it), where a node per product would leave autograd an
// addition of the activation's size per further weight (DeltaNet's q, k, v and beta all read x).
std::vector<torch::Tensor> linears(const torch::Tensor& x, const std::vector<torch::Tensor>& weights);

// residual += x W^T in place, added inside the product, where a product and an addition would
// write and read the activation once more. The residual must be a tensor nothing else reads, as
// pre_norm's copy; returns it.
torch::Tensor add_linear_(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& weight);

namespace reference {
torch::Tensor depthwise_conv(const torch::Tensor& a, const torch::Tensor& taps, int64_t before, int64_t after);
torch::Tensor rms_norm(const torch::Tensor& a, const torch::Tensor& gain, double epsilon);
torch::Tensor l2_norm(const torch::Tensor& a, double epsilon);
torch::Tensor silu(const torch::Tensor& a);
torch::Tensor swiglu(const torch::Tensor& gate_value);
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index);
}  // namespace reference

}  // namespace asiarch::kernels
