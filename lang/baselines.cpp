// The shipped programs: lang/baselines/*.arch and lang/discoveries/*.arch, compiled into
// the library by cmake/embed_files.cmake.
#include <algorithm>
#include <set>

#include "common/embedded_file.h"
#include "lang/program.h"

namespace asiarch::lang {

// Generated from lang/baselines/*.arch and lang/discoveries/*.arch (lang/CMakeLists.txt).
const std::vector<asiarch::EmbeddedFile>& shipped_baseline_files();
const std::vector<asiarch::EmbeddedFile>& shipped_discovery_files();

namespace {

constexpr std::string_view kExtension = ".arch";

// Baselines that exist only to compare against: full softmax attention fails the complexity
// check by design, so campaigns may not start from it.
const std::set<std::string, std::less<>> kReferenceOnly = {"softmax_attention"};

std::vector<Baseline> shipped_programs(const std::vector<asiarch::EmbeddedFile>& files, bool discovery) {
  std::vector<Baseline> out;
  for (const auto& file : files) {
    std::string name = file.name;
    if (name.size() > kExtension.size() && name.ends_with(kExtension)) name.resize(name.size() - kExtension.size());
    const bool reference_only = kReferenceOnly.count(name) > 0;
    out.push_back(Baseline{std::move(name), file.contents, reference_only, discovery});
  }
  std::sort(out.begin(), out.end(), [](const Baseline& a, const Baseline& b) { return a.name < b.name; });
  return out;
}

const Baseline* find_in(const std::vector<Baseline>& sorted, std::string_view name) {
  const auto it = std::lower_bound(sorted.begin(), sorted.end(), name, [](const Baseline& b, std::string_view n) { return b.name < n; });
  return it != sorted.end() && it->name == name ? &*it : nullptr;
}

}  // namespace

const std::vector<Baseline>& baselines() {
  static const std::vector<Baseline> all = shipped_programs(shipped_baseline_files(), false);
  return all;
}

const std::vector<Baseline>& discoveries() {
  static const std::vector<Baseline> all = shipped_programs(shipped_discovery_files(), true);
  return all;
}

const Baseline* find_baseline(std::string_view name) {
  if (const Baseline* b = find_in(baselines(), name)) return b;
  return find_in(discoveries(), name);
}

}  // namespace asiarch::lang
