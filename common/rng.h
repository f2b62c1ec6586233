#pragma once
// Seeded random streams (docs/ARCHITECTURE.md, "Seeded random streams"): one stream per actor or
// purpose, seeded from hash(campaign seed, stream name), with distributions written here because
// std::*_distribution differ between standard libraries.
#include <cmath>
#include <cstdint>
#include <string_view>

namespace asiarch {

// FNV-1a, 64 bit: a fixed hash for names (std::hash is not portable).
inline uint64_t fnv1a64(std::string_view text, uint64_t hash = 0xcbf29ce484222325ULL) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  // `index` numbers streams of one purpose (one per training step, say); index 0 is the stream itself.
  Rng(uint64_t campaign_seed, std::string_view stream, uint64_t index = 0)
      : state_(splitmix64_mix(campaign_seed ^ splitmix64_mix(fnv1a64(stream) ^ splitmix64_mix(index)))) {}

  uint64_t next() {  // splitmix64
    state_ += 0x9e3779b97f4a7c15ULL;
    return splitmix64_mix(state_);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // Unbiased integer in [0, n) by rejection; n > 0.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do { r = next(); } while (r >= limit);
    return r % n;
  }
  // Standard normal by Box-Muller (one value per call, so the stream's position is simple).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t state_;
};

}  // namespace asiarch
