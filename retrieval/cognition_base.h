#pragma once
// Reading and validating cognition data files (retrieval/data/*.toml). The file format is
// documented at the top of retrieval/data/cognition_base.toml: a list of [[entry]] tables with
// the keys id, title, year, source, insight, applies_when and rewrites, nothing else.
#include <array>
#include <string_view>
#include <vector>

#include "common/embedded_file.h"
#include "retrieval/cognition_index.h"

namespace asiarch::retrieval {

// The mutation operators (actors/mutations.h) an entry's `rewrites` may name.
inline constexpr std::array<std::string_view, 20> kRewriteOperators = {
    "swap_activation", "replace_op",      "wrap_norm",      "wrap_activation", "wrap_scale",      "add_short_conv",
    "remove_wrapper",  "change_conv_size", "change_hyperparameter", "swap_recurrence", "add_output_gate",
    "add_decay_gate",  "change_heads",    "add_gated_path", "add_routed_paths", "graft_reference",
    "add_bias",        "floor_renormalise", "add_balance_loss", "share_router_weights"};

// Parses `files` in order and validates every entry; ids must be unique across all files.
// Throws std::runtime_error "FILE:LINE: what is wrong; what to write".
std::vector<Entry> parse_cognition_files(const std::vector<EmbeddedFile>& files);

// One file; `file_name` is the FILE of error messages.
std::vector<Entry> parse_cognition_file(std::string_view text, std::string_view file_name);

}  // namespace asiarch::retrieval
