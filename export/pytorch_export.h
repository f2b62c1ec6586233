#pragma once
// Exporting a program's whole model as a standalone PyTorch file: the runtime of
// export/python/asiarch_torch.py (every operator in plain PyTorch, the fixed model, a
// safetensors reader) and a generated Mixer class whose parameters have exactly the names and
// shapes of the C++ model (training/model.h), so that load_weights reads what asiarch kept.
// Torch-free.
#include <cstdint>
#include <string>

#include "lang/program.h"

namespace asiarch::exporting {

struct PytorchExport {
  lang::Program program;
  int64_t vocab = 256;
  int64_t d_model = 64;
  int64_t layers = 2;
  std::string module_name;   // how the usage text imports the file: its name without .py
  std::string origin;        // where the program comes from, for the docstring ("arch 7 of runs/x")
  std::string weights_note;  // the docstring's line on the weights: the file to load, or why there is none
};

// The Python file's text. Throws lang::ProgramError when the program does not check at d_model.
std::string pytorch_module(const PytorchExport& model);

}  // namespace asiarch::exporting
