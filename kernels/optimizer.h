#pragma once
// AdamW (Loshchilov and Hutter, 2019) with clipping of the global gradient norm, as one pass over
// every parameter. libtorch's AdamW and clip_grad_norm_ run about fifteen small operations per
// parameter tensor and step, 450 on the explore model: 4% of a training step, spent mostly on
// dispatch. Internal to kernels/ and training/: it includes torch.
//
// CPU float32 and float64 parameters run fused loops; others (CUDA) run the same arithmetic
// as libtorch operations. The squared gradient norm is summed in float64 in parameter order,
// so it does not depend on the thread count.
#include <torch/torch.h>

#include <vector>

namespace asiarch::kernels {

class ClippedAdamW {
 public:
  struct Group {
    std::vector<torch::Tensor> parameters;
    double weight_decay = 0.0;
  };
  ClippedAdamW(std::vector<Group> groups, double beta1, double beta2, double epsilon);

  // The L2 norm of all gradients together (a parameter without one counts as zero).
  double gradient_norm() const;
  // One step at learning rate lr, with every gradient scaled by max_norm / (norm + 1e-6) where
  // that is below 1 (norm: gradient_norm()), as torch.nn.utils.clip_grad_norm_ does.
  void step(double lr, double norm, double max_norm);
  void zero_grad();

 private:
  struct Slot {
    torch::Tensor parameter, first_moment, second_moment;
    double weight_decay;
  };
  std::vector<Slot> slots_;
  double beta1_, beta2_, epsilon_;
  int64_t steps_ = 0;
};

}  // namespace asiarch::kernels
