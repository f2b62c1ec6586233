// Linear maps for training on the CPU in float32 (kernels/layers.h), forward and backward, through
// oneDNN's matmul primitive. oneDNN is the library libtorch itself links for its CPU primitives.
// Measured on the explore model's products (one thread, 2-core EPYC, best of 7 x 2,000 calls):
// - its sgemm wrote a product with beta 0 without clearing the output first, where OpenBLAS,
//   behind torch::mm, clears it with a memset: 7.06 ms a step against OpenBLAS's 7.50;
// - the matmul primitive (brgemm kernels) took 3.20 ms for one of each of the step's 17 shapes
//   against sgemm's 3.38: 6 to 30% less for the forward and input-gradient products, the same
//   for the weight gradients. A primitive is built once per shape and thread and kept, and runs
//   with a scratchpad the thread owns, where sgemm allocates its buffers in every call.
// oneDNN uses OpenMP's thread count, which set_torch_threads fixes for the thread that trains, and
// gives the same bits at a fixed count, as the rest of training does.
#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <tuple>
#include <vector>

#include "kernels/layers.h"

namespace asiarch::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// A product's shape: C [m, n] (leading dimension ldc) = op(A) [m, k] op(B) [k, n], row-major, op
// transposing where asked, the product added onto C with `accumulate`.
struct ProductShape {
  char transpose_a, transpose_b;
  int64_t m, n, k, lda, ldb, ldc;
  bool accumulate;
  auto key() const { return std::tie(transpose_a, transpose_b, m, n, k, lda, ldb, ldc, accumulate); }
  bool operator<(const ProductShape& other) const { return key() < other.key(); }
};

// The matmul primitive of one shape, with memory objects whose data pointers each call sets.
struct MatmulPrimitive {
  dnnl::matmul primitive;
  dnnl::memory a, b, c, scratchpad;
};

// Each thread's primitives: oneDNN's engine and stream are for one thread at a time.
struct ThreadProducts {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<ProductShape, MatmulPrimitive> by_shape;
  std::vector<char> scratchpad;
};

// A search campaign trains programs of many widths in one thread; past this many shapes the
// primitives are built again as they are needed.
constexpr size_t kMaxKeptShapes = 256;

MatmulPrimitive& primitive_for(ThreadProducts& products, const ProductShape& shape) {
  const auto found = products.by_shape.find(shape);
  if (found != products.by_shape.end()) return found->second;
  if (products.by_shape.size() >= kMaxKeptShapes) products.by_shape.clear();
  using dims = dnnl::memory::dims;
  const auto f32 = dnnl::memory::data_type::f32;
  const dnnl::memory::desc a({shape.m, shape.k}, f32, shape.transpose_a == 'N' ? dims{shape.lda, 1} : dims{1, shape.lda});
  const dnnl::memory::desc b({shape.k, shape.n}, f32, shape.transpose_b == 'N' ? dims{shape.ldb, 1} : dims{1, shape.ldb});
  const dnnl::memory::desc c({shape.m, shape.n}, f32, dims{shape.ldc, 1});
  dnnl::primitive_attr attributes;
  attributes.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (shape.accumulate) {
    dnnl::post_ops sum;
    sum.append_sum(1.0f);
    attributes.set_post_ops(sum);
  }
  const dnnl::matmul::primitive_desc description(dnnl::matmul::desc(a, b, c), attributes, products.engine);
  const dnnl::memory::desc scratchpad = description.scratchpad_desc();
  if (products.scratchpad.size() < scratchpad.get_size()) products.scratchpad.resize(scratchpad.get_size());
  MatmulPrimitive made{dnnl::matmul(description), dnnl::memory(a, products.engine, DNNL_MEMORY_NONE),
                       dnnl::memory(b, products.engine, DNNL_MEMORY_NONE), dnnl::memory(c, products.engine, DNNL_MEMORY_NONE),
                       dnnl::memory(scratchpad, products.engine, DNNL_MEMORY_NONE)};
  return products.by_shape.emplace(shape, std::move(made)).first->second;
}

// C = op(A) op(B) (+ C with accumulate), row-major.
void multiply(char transpose_a, char transpose_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
              int64_t ldb, bool accumulate, float* c, int64_t ldc) {
  thread_local ThreadProducts products;
  try {
    MatmulPrimitive& product = primitive_for(products, {transpose_a, transpose_b, m, n, k, lda, ldb, ldc, accumulate});
    product.a.set_data_handle(const_cast<float*>(a));
    product.b.set_data_handle(const_cast<float*>(b));
    product.c.set_data_handle(c);
    product.scratchpad.set_data_handle(products.scratchpad.data());
    product.primitive.execute(products.stream, {{DNNL_ARG_SRC, product.a},
                                                {DNNL_ARG_WEIGHTS, product.b},
                                                {DNNL_ARG_DST, product.c},
                                                {DNNL_ARG_SCRATCHPAD, product.scratchpad}});
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "oneDNN's matmul failed (", m, " x ", k, " by ", k, " x ", n, "): ", e.what());
  }
}

// x W^T for each weight over the last dimension of x, or with a residual (one weight) residual +=
// x W^T in place; x as rows and the weights are saved for linear_backward.
tensor_list linear_forward(AutogradContext* ctx, const torch::Tensor& x, torch::TensorList weights, const torch::Tensor* residual) {
  const int64_t in = weights[0].size(1);
  const auto rows_of_x = x.reshape({-1, in}).contiguous();
  const int64_t rows = rows_of_x.size(0);
  tensor_list saved = {rows_of_x}, outputs;
  for (const auto& weight : weights) {
    const auto w = weight.contiguous();
    const int64_t out_width = w.size(0);
    auto out = residual != nullptr ? residual->view({rows, out_width}) : torch::empty({rows, out_width}, rows_of_x.options());
    multiply('N', 'T', rows, out_width, in, rows_of_x.data_ptr<float>(), in, w.data_ptr<float>(), in, residual != nullptr,
             out.data_ptr<float>(), out_width);
    auto sizes = x.sizes().vec();
    sizes.back() = out_width;
    outputs.push_back(out.view(sizes));
    saved.push_back(w);
  }
  ctx->save_for_backward(saved);
  ctx->saved_data["x_sizes"] = x.sizes();
  ctx->set_materialize_grads(false);  // a product nothing read has no gradient to multiply
  return outputs;
}

// The gradients of x (input `x_input` of the function) and of each weight (the inputs after it),
// from the gradients of the products. x's gradient is added up inside the products (each after
// the first adds onto it), where a node per product would leave autograd an addition per further
// weight.
tensor_list linear_backward(AutogradContext* ctx, const tensor_list& grads_out, size_t x_input) {
  const auto saved = ctx->get_saved_variables();
  const auto& rows_of_x = saved[0];
  const int64_t in = rows_of_x.size(1), rows = rows_of_x.size(0);
  tensor_list grads(1 + grads_out.size());
  for (size_t i = 0; i < grads_out.size(); ++i) {
    if (!grads_out[i].defined()) continue;
    const auto& w = saved[1 + i];
    const int64_t out_width = w.size(0);
    const auto grad = grads_out[i].reshape({rows, out_width}).contiguous();
    if (ctx->needs_input_grad(x_input)) {
      const bool accumulate = grads[0].defined();
      if (!accumulate) grads[0] = torch::empty({rows, in}, rows_of_x.options());
      multiply('N', 'N', rows, in, out_width, grad.data_ptr<float>(), out_width, w.data_ptr<float>(), in, accumulate,
               grads[0].data_ptr<float>(), in);
    }
    if (ctx->needs_input_grad(x_input + 1 + i)) {
      grads[1 + i] = torch::empty({out_width, in}, rows_of_x.options());
      multiply('T', 'N', out_width, in, rows, grad.data_ptr<float>(), out_width, rows_of_x.data_ptr<float>(), in, false,
               grads[1 + i].data_ptr<float>(), in);
    }
  }
  if (grads[0].defined()) grads[0] = grads[0].view(ctx->saved_data["x_sizes"].toIntVector());
  return grads;
}

class LinearsFunction : public torch::autograd::Function<LinearsFunction> {
 public:
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& x, torch::TensorList weights) {
    return linear_forward(ctx, x, weights, nullptr);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) { return linear_backward(ctx, grads, 0); }
};

class AddLinearFunction : public torch::autograd::Function<AddLinearFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor residual, const torch::Tensor& x, const torch::Tensor& weight) {
    linear_forward(ctx, x, {weight}, &residual);
    ctx->mark_dirty({residual});
    return residual;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const tensor_list x_and_weight = linear_backward(ctx, grads, 1);
    return {ctx->needs_input_grad(0) ? grads[0] : torch::Tensor(), x_and_weight[0], x_and_weight[1]};
  }
};

bool runs_onednn(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat &&
         x.numel() > 0;
}

void check_shapes(const torch::Tensor& x, const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: x must end in ", weight.size(-1),
              " features for a weight [out, in], got ", x.sizes(), " and ", weight.sizes());
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight) { return linears(x, {weight})[0]; }

std::vector<torch::Tensor> linears(const torch::Tensor& x, const std::vector<torch::Tensor>& weights) {
  TORCH_CHECK(!weights.empty(), "linears: no weight");
  bool fused = true;
  for (const auto& weight : weights) {
    check_shapes(x, weight);
    fused = fused && runs_onednn(x, weight);
  }
  if (fused) return LinearsFunction::apply(x, torch::TensorList(weights));
  std::vector<torch::Tensor> products;
  for (const auto& weight : weights) products.push_back(torch::linear(x, weight));
  return products;
}

torch::Tensor add_linear_(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& weight) {
  check_shapes(x, weight);
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = weight.size(0);
  TORCH_CHECK(residual.sizes() == torch::IntArrayRef(out_sizes), "add_linear_: the residual must be ", torch::IntArrayRef(out_sizes),
              ", got ", residual.sizes());
  if (!runs_onednn(x, weight) || residual.scalar_type() != torch::kFloat || !residual.device().is_cpu() || !residual.is_contiguous()) {
    return residual.add_(torch::linear(x, weight));
  }
  return AddLinearFunction::apply(residual, x, weight);
}

}  // namespace asiarch::kernels
