#pragma once
// Virtual time is kept in nanoseconds; GPU budgets and durations are read and written in hours.
// Both conversions are part of what a campaign computes, so they are written once: the same
// arithmetic everywhere keeps every digest bit-identical.
#include <cmath>
#include <cstdint>

namespace asiarch {

inline uint64_t hours_to_ns(double hours) { return static_cast<uint64_t>(std::llround(hours * 3600.0 * 1e9)); }
inline double ns_to_hours(uint64_t ns) { return static_cast<double>(ns) / 3.6e12; }

}  // namespace asiarch
