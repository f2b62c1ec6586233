#pragma once
// Internal to lang/: a table from names to values, for the lookups every statement of every
// program makes (operator rows, defined values). Open addressing over a power-of-two array,
// hashed with FNV-1a: one allocation, where std::unordered_map allocates a node per name and
// pays for std::hash and a prime modulo on every lookup. The names are views: what they view
// must outlive the table.
#include <bit>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/rng.h"

namespace asiarch::lang::detail {

template <typename Value>
class NameTable {
 public:
  explicit NameTable(size_t names) : slots_(std::bit_ceil(2 * names + 2)) {}

  // Stores `value` under `name` unless the name is there already; false if it was.
  bool insert(std::string_view name, Value value) {
    Slot& slot = slots_[position(name)];
    if (slot) return false;
    slot.emplace(name, std::move(value));
    return true;
  }
  const Value* find(std::string_view name) const {
    const Slot& slot = slots_[position(name)];
    return slot ? &slot->second : nullptr;
  }

 private:
  using Slot = std::optional<std::pair<std::string_view, Value>>;
  // The slot holding `name`, or the empty one where it would go.
  size_t position(std::string_view name) const {
    const size_t mask = slots_.size() - 1;
    size_t at = fnv1a64(name) & mask;
    while (slots_[at] && slots_[at]->first != name) at = (at + 1) & mask;
    return at;
  }
  std::vector<Slot> slots_;
};

}  // namespace asiarch::lang::detail
