"""Checks exported PyTorch modules against the C++ model, for tests/test_export.cpp.

usage: python3 export_check.py DIR NAME...

For each NAME: imports DIR/NAME.py (written by `asiarch export`), builds its model in float64,
loads DIR/NAME.safetensors, runs it on the tokens of DIR/NAME.logits.safetensors and prints
"NAME ERROR PARAMS": the largest absolute difference from the C++ logits stored there, relative
to their largest magnitude (or of the auxiliary loss, where the program has one, if larger),
and the model's parameter count. One process checks every program,
so torch is imported once.
"""
import importlib.util
import sys

import torch


def check(directory, name):
    spec = importlib.util.spec_from_file_location(name, "%s/%s.py" % (directory, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model(torch.float64).load_weights("%s/%s.safetensors" % (directory, name))
    expected = module.read_safetensors("%s/%s.logits.safetensors" % (directory, name))
    with torch.no_grad():
        logits = model(expected["tokens"])
    reference = expected["logits"]
    if logits.shape != reference.shape:
        return float("inf"), 0
    error = ((logits - reference).abs().max() / reference.abs().max()).item()
    if "auxiliary_loss" in expected:
        auxiliary = model.auxiliary_loss()
        reference = expected["auxiliary_loss"]
        error = max(error, float("inf") if auxiliary is None else ((auxiliary - reference).abs() / reference.abs()).item())
    return error, sum(p.numel() for p in model.parameters())


def main():
    torch.set_num_threads(1)
    directory = sys.argv[1]
    for name in sys.argv[2:]:
        error, params = check(directory, name)
        print("%s %r %d" % (name, error, params), flush=True)


if __name__ == "__main__":
    main()
