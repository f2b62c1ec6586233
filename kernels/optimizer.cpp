#include "kernels/optimizer.h"

#include <cmath>

#include "kernels/ordered_dot.h"
#include "kernels/recurrence_cpu.h"
#include "kernels/vector_clones.h"

namespace asiarch::kernels {
namespace {

// The fused loops take contiguous CPU float32 or float64 tensors (cpu::supports).
bool fused_loops_take(const torch::Tensor& p) { return cpu::supports(p) && p.is_contiguous(); }

// The coefficients of one AdamW step, in the order libtorch's AdamW applies them.
struct StepCoefficients {
  double decay;         // p *= decay (decoupled weight decay: 1 - lr * weight_decay)
  double grad_scale;    // the clipping factor, 1 when the norm is within bounds
  double beta1, beta2;  // the moments' decay
  double step_size;     // lr / (1 - beta1^t)
  double root_bias2;    // sqrt(1 - beta2^t)
  double epsilon;
};

template <typename T>
ASIARCH_VECTOR_CLONES void adamw_update(T* __restrict p, const T* __restrict grad, T* __restrict m, T* __restrict v, int64_t n,
                                        const StepCoefficients& c) {
  const T decay = static_cast<T>(c.decay), scale = static_cast<T>(c.grad_scale), beta1 = static_cast<T>(c.beta1),
          beta2 = static_cast<T>(c.beta2), rest1 = static_cast<T>(1 - c.beta1), rest2 = static_cast<T>(1 - c.beta2),
          step_size = static_cast<T>(c.step_size), root_bias2 = static_cast<T>(c.root_bias2), epsilon = static_cast<T>(c.epsilon);
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] * scale;
    p[i] = p[i] * decay;
    m[i] = m[i] * beta1 + g * rest1;
    v[i] = v[i] * beta2 + g * g * rest2;
    p[i] = p[i] - step_size * (m[i] / (std::sqrt(v[i]) / root_bias2 + epsilon));
  }
}

}  // namespace

ClippedAdamW::ClippedAdamW(std::vector<Group> groups, double beta1, double beta2, double epsilon)
    : beta1_(beta1), beta2_(beta2), epsilon_(epsilon) {
  for (auto& group : groups) {
    for (auto& p : group.parameters) {
      TORCH_CHECK(p.is_leaf() && p.requires_grad(), "ClippedAdamW: every parameter must be a leaf that requires grad");
      slots_.push_back({p, torch::zeros_like(p), torch::zeros_like(p), group.weight_decay});
    }
  }
}

double ClippedAdamW::gradient_norm() const {
  double sum = 0;
  for (const auto& slot : slots_) {
    const torch::Tensor& grad = slot.parameter.grad();
    if (!grad.defined()) continue;
    if (fused_loops_take(grad)) {
      AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "gradient_norm", [&] { sum += ordered_dot(grad.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(), grad.numel()); });
    } else {
      sum += grad.to(torch::kDouble).square().sum().item<double>();
    }
  }
  return std::sqrt(sum);
}

void ClippedAdamW::step(double lr, double norm, double max_norm) {
  ++steps_;
  const double clip = max_norm / (norm + 1e-6);
  StepCoefficients c{0, clip < 1 ? clip : 1.0, beta1_, beta2_, lr / (1 - std::pow(beta1_, static_cast<double>(steps_))),
                     std::sqrt(1 - std::pow(beta2_, static_cast<double>(steps_))), epsilon_};
  torch::NoGradGuard no_grad;
  for (auto& slot : slots_) {
    const torch::Tensor& grad = slot.parameter.grad();
    if (!grad.defined()) continue;
    c.decay = 1 - lr * slot.weight_decay;
    if (fused_loops_take(slot.parameter) && grad.is_contiguous() && grad.scalar_type() == slot.parameter.scalar_type()) {
      AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "adamw_update", [&] {
        adamw_update(slot.parameter.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(), slot.first_moment.data_ptr<scalar_t>(),
                     slot.second_moment.data_ptr<scalar_t>(), slot.parameter.numel(), c);
      });
      continue;
    }
    const torch::Tensor g = grad * c.grad_scale;
    slot.parameter.mul_(c.decay);
    slot.first_moment.mul_(c.beta1).add_(g, 1 - c.beta1);
    slot.second_moment.mul_(c.beta2).addcmul_(g, g, 1 - c.beta2);
    slot.parameter.addcdiv_(slot.first_moment, slot.second_moment.sqrt() / c.root_bias2 + c.epsilon, -c.step_size);
  }
}

void ClippedAdamW::zero_grad() {
  for (auto& slot : slots_) {
    if (slot.parameter.grad().defined()) slot.parameter.mutable_grad() = torch::Tensor();
  }
}

}  // namespace asiarch::kernels
