// The shipped baseline programs: kernels/baselines/*.arch, compiled into the library by
// cmake/embed_files.cmake.
#include <algorithm>
#include <set>

#include "common/embedded_file.h"
#include "kernels/program.h"

namespace asiarch::lang {

// Generated from kernels/baselines/*.arch (kernels/CMakeLists.txt).
const std::vector<asiarch::EmbeddedFile>& shipped_baseline_files();

namespace {

constexpr std::string_view kExtension = ".arch";

// Baselines that exist only to compare against: full softmax attention fails the complexity
// check by design, so campaigns may not start from it.
const std::set<std::string, std::less<>> kReferenceOnly = {"softmax_attention"};

}  // namespace

const std::vector<Baseline>& baselines() {
  static const std::vector<Baseline> all = [] {
    std::vector<Baseline> out;
    for (const auto& file : shipped_baseline_files()) {
      std::string name = file.name;
      if (name.size() > kExtension.size() && name.ends_with(kExtension)) name.resize(name.size() - kExtension.size());
      const bool reference_only = kReferenceOnly.count(name) > 0;
      out.push_back(Baseline{std::move(name), file.contents, reference_only});
    }
    std::sort(out.begin(), out.end(), [](const Baseline& a, const Baseline& b) { return a.name < b.name; });
    return out;
  }();
  return all;
}

const Baseline* find_baseline(std::string_view name) {
  const auto& all = baselines();
  const auto it = std::lower_bound(all.begin(), all.end(), name, [](const Baseline& b, std::string_view n) { return b.name < n; });
  return it != all.end() && it->name == name ? &*it : nullptr;
}

}  // namespace asiarch::lang
