// The PyTorch export (export/pytorch_export.h): the embedded runtime, then a Mixer class
// generated statement by statement from the checked program.
#include "export/pytorch_export.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "common/embedded_file.h"
#include "common/json_string.h"
#include "training/model.h"
#include "lang/program_analysis.h"

namespace asiarch::lang {
// Generated from export/python/*.py (export/CMakeLists.txt).
const std::vector<asiarch::EmbeddedFile>& pytorch_runtime_files();
}  // namespace asiarch::lang

namespace asiarch::exporting {
namespace {

using lang::Kind;
using lang::Type;

const std::string& runtime_text() {
  for (const auto& file : lang::pytorch_runtime_files()) {
    if (file.name == "asiarch_torch.py") return file.contents;
  }
  throw std::logic_error("export: the PyTorch runtime export/python/asiarch_torch.py is not embedded");
}

// A Python float literal that reads back to the same double.
std::string python_float(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  std::string out = text;
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

std::string kind_name(const Type& t) {
  switch (t.kind) {
    case Kind::Seq: return "\"seq\"";
    case Kind::Heads: return "\"heads\"";
    case Kind::Scalars: return "\"scalars\"";
  }
  return "";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out;
  for (const int64_t d : shape) out += (out.empty() ? "" : ", ") + std::to_string(d);
  return shape.size() == 1 ? out + "," : out;
}

// One parameter of a statement as the C++ model builds it at d_model.
struct ParameterSpec {
  std::string name;  // "weight", "taps", "gain", "log_temperature", "raw_scale"
  std::vector<int64_t> shape;
  std::vector<float> start;  // the initial values, for the parameters that start deterministic
};

// The parameters of each statement of the C++ mixer, by statement name: names and shapes as
// they are, so the Python module matches them by construction.
std::map<std::string, std::vector<ParameterSpec>> mixer_parameters(const lang::Program& program, int64_t d_model) {
  model::Mixer mixer(program, d_model, /*seed=*/1, "mixer");
  std::map<std::string, std::vector<ParameterSpec>> out;
  for (const auto& item : mixer->named_parameters()) {
    const std::string& full = item.key();
    const size_t dot = full.rfind('.');
    ParameterSpec spec{full.substr(dot + 1), item.value().sizes().vec(), {}};
    const torch::Tensor values = item.value().detach().to(torch::kFloat32).contiguous();
    spec.start.assign(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
    out[full.substr(0, dot)].push_back(std::move(spec));
  }
  return out;
}

// How a parameter starts in Python: the C++ model's distribution for random ones, its exact
// values for the others (gains, scales, temperatures, identity filters).
std::string initial_value(const std::string& op, const lang::detail::Operands& operands, const ParameterSpec& p) {
  if (op == "linear") return "init_projection(" + std::to_string(p.shape[0]) + ", " + std::to_string(p.shape[1]) + ")";
  if (op == "short_conv" || op == "noncausal_conv") return "init_conv_taps(" + shape_text(p.shape) + ")";
  if (op == "fir") {
    return "init_fir_taps(" + shape_text(p.shape) + ", " + python_float(operands.real("dirac")) + ", " +
           python_float(operands.real("noise")) + ")";
  }
  bool constant = true;
  for (const float v : p.start) constant = constant && v == p.start.front();
  if (constant) return "torch.full((" + shape_text(p.shape) + "), " + python_float(p.start.front()) + ")";
  std::string values;
  for (const float v : p.start) values += (values.empty() ? "" : ", ") + python_float(v);
  return "torch.tensor([" + values + "])";
}

// The Python name of a value, or a number as a Python float.
std::string local(const std::string& name) {
  if (lang::is_literal(name)) return python_float(lang::literal_value(name));
  return name == "x" ? "x" : "v_" + name;
}

// The Python expression of one checked statement; `w` is the mixer's statement modules.
std::string expression(const lang::Statement& statement, const lang::detail::CheckedStatement& checked) {
  const std::string& op = statement.op;
  std::vector<std::string> a;
  for (const auto& name : statement.args) a.push_back(local(name));
  const std::string self = "w[" + json_string(statement.name) + "]";
  const Type& first = checked.operands.args.front();
  auto list_from = [&](size_t begin) {
    std::string out;
    for (size_t i = begin; i < a.size(); ++i) out += (out.empty() ? "" : ", ") + a[i];
    return "[" + out + "]";
  };
  auto call = [&](const std::string& extra) {
    std::string args;
    for (const auto& arg : a) args += (args.empty() ? "" : ", ") + arg;
    return "op_" + op + "(" + args + (extra.empty() ? "" : ", " + extra) + ")";
  };
  if (op == "linear") return call(self + ".weight");
  if (op == "split_heads") return call(std::to_string(checked.operands.dim("h")));
  if (op == "scale") return call(self + ".weight, " + kind_name(checked.type));
  if (op == "temperature") return call(self + ".log_temperature, " + kind_name(checked.type));
  if (op == "sharpen") return call(self + ".raw_scale, " + kind_name(checked.type));
  if (op == "bias") return call(self + ".bias, " + kind_name(checked.type));
  if (op == "div") return call(python_float(checked.operands.real("eps")));
  if (op == "reduce_sum" || op == "reduce_mean" || op == "reduce_max" || op == "entropy") return call(kind_name(first));
  if (op == "rmsnorm" || op == "gated_rmsnorm") return call(self + ".gain");
  if (op == "short_conv" || op == "noncausal_conv") return call(self + ".taps");
  if (op == "fir") return call(self + ".taps, " + kind_name(checked.type));
  if (op == "seq_mean") return call(kind_name(checked.type));
  if (op == "swa") return call(std::to_string(checked.operands.dim("window")));
  if (op == "retnet_decay") return call(std::to_string(checked.operands.dim("h")));
  if (op == "route") {
    return "op_route(" + a[0] + ", " + list_from(1) + ", " + python_float(checked.operands.reals.at("temp")) + ", " +
           kind_name(checked.operands.args[1]) + ")";
  }
  if (op == "path_stats") return "op_path_stats(" + list_from(0) + ", " + kind_name(first) + ")";
  if (op == "head_mean_abs" || op == "head_mean_std") return "op_" + op + "(" + list_from(0) + ")";
  if (op == "sigmoid_fuse") {
    return "op_sigmoid_fuse(" + a[0] + ", " + list_from(1) + ", " + python_float(checked.operands.reals.at("floor")) + ")";
  }
  if (op == "penalty") return call(python_float(checked.operands.real("weight")) + ", losses");
  if (op == "head_route" || op == "weighted_paths") return "op_" + op + "(" + a[0] + ", " + list_from(1) + ")";
  return call("");
}

std::string docstring(const PytorchExport& m, const std::string& module_name) {
  std::ostringstream out;
  out << "\"\"\"" << m.program.name << " as a standalone PyTorch module, exported by asiarch from " << m.origin << ".\n\n"
      << "The whole model asiarch trains around the token mixer (training/model.cpp): a token embedding, " << m.layers
      << " blocks of\n(RMSNorm, mixer, residual, RMSNorm, SwiGLU MLP, residual), a final RMSNorm and an output head tied\n"
      << "to the embedding, at vocab=" << m.vocab << ", d_model=" << m.d_model
      << ". Parameter names and shapes are the C++ model's, so\nload_weights reads the safetensors files asiarch writes. "
      << "Needs only PyTorch.\n\n"
      << "Usage:\n"
      << "    import torch\n"
      << "    import " << module_name << " as exported\n"
      << "    model = exported.build_model()            # float32; build_model(torch.float64) too\n"
      << "    model.load_weights(\"WEIGHTS.safetensors\")\n"
      << "    logits = model(torch.randint(0, " << m.vocab << ", (1, 32)))  # tokens [B, T] -> logits [B, T, vocab]\n\n"
      << "or `python3 " << module_name << ".py [WEIGHTS.safetensors]` for a quick forward pass.\n\n"
      << "Weights: " << m.weights_note << "\n"
      << "\"\"\"\n";
  return out.str();
}

}  // namespace

std::string pytorch_module(const PytorchExport& m) {
  const lang::detail::CheckedProgram checked = lang::detail::check_program(m.program, lang::ModelShape{m.d_model, 1}, m.program.name);
  const auto parameters = mixer_parameters(m.program, m.d_model);
  const std::string module_name = m.module_name.empty() ? m.program.name : m.module_name;

  std::ostringstream init, forward;
  bool penalised = false;
  for (size_t i = 0; i < checked.statements.size(); ++i) {
    if (!checked.graph.live[i]) continue;
    penalised = penalised || m.program.body[i].op == "penalty";
    const lang::Statement& statement = m.program.body[i];
    if (const auto it = parameters.find(statement.name); it != parameters.end()) {
      std::string tensors;
      for (const ParameterSpec& p : it->second) {
        tensors += (tensors.empty() ? "" : ", ") + p.name + "=" + initial_value(statement.op, checked.statements[i].operands, p);
      }
      init << "        self._modules[" << json_string(statement.name) << "] = Weights(" << tensors << ")\n";
    }
    forward << "        " << local(statement.name) << " = " << expression(statement, checked.statements[i]) << "  # "
            << lang::to_string(checked.statements[i].type) << "\n";
  }

  std::ostringstream out;
  out << docstring(m, module_name) << "\n" << runtime_text() << "\n\n"
      << "# ---- the exported architecture ----\n\n"
      << "PROGRAM = " << json_string(lang::print(m.program)) << "\n"
      << "VOCAB = " << m.vocab << "\nD_MODEL = " << m.d_model << "\nLAYERS = " << m.layers << "\n\n\n"
      << "class Mixer(nn.Module):\n"
      << "    \"\"\"The token mixer of PROGRAM at D = " << m.d_model << ": x [B, T, " << m.d_model << "] -> [B, T, " << m.d_model
      << "]. Statement modules are\n    stored by their program names (some may not be valid attribute names).\"\"\"\n\n"
      << "    def __init__(self):\n"
      << "        super().__init__()\n"
      << init.str() << "\n"
      << "    def forward(self, x):\n"
      << "        w = self._modules\n"
      << (penalised ? "        losses = []  # the penalty terms, training's auxiliary loss\n" : "")
      << forward.str()
      << (penalised ? "        self.auxiliary_loss = sum(losses)\n" : "")
      << "        return " << local(m.program.result) << "\n\n\n"
      << "def build_model(dtype=torch.float32):\n"
      << "    \"\"\"The whole model, freshly initialised; load_weights(path) loads trained parameters.\"\"\"\n"
      << "    return LanguageModel(Mixer, VOCAB, D_MODEL, LAYERS).to(dtype)\n\n\n"
      << "if __name__ == \"__main__\":\n"
      << "    import sys\n\n"
      << "    model = build_model()\n"
      << "    if len(sys.argv) > 1:\n"
      << "        model.load_weights(sys.argv[1])\n"
      << "    tokens = torch.randint(0, VOCAB, (1, 16))\n"
      << "    with torch.no_grad():\n"
      << "        logits = model(tokens)\n"
      << "    print(\"%s: %d parameters, logits %s\" % (" << json_string(m.program.name)
      << ", sum(p.numel() for p in model.parameters()), list(logits.shape)))\n";
  return out.str();
}

}  // namespace asiarch::exporting
