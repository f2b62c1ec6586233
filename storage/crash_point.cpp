// ASIARCH_CRASH_AT: see crash_point.h.
#include "storage/crash_point.h"

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace asiarch::storage {
namespace {

constexpr std::array<std::string_view, 5> kSiteNames = {"event", "commit", "committed", "sync", "write"};

struct Armed {
  CrashSite site;
  uint64_t at;
};

// Read once; a malformed value is a test's mistake and stops the process with exit 2.
std::optional<Armed> parse_point(const char* variable) {
  const char* text = std::getenv(variable);
  if (text == nullptr || *text == '\0') return std::nullopt;
  const std::string_view value(text);
  const size_t colon = value.find(':');
  for (size_t s = 0; colon != std::string_view::npos && s < kSiteNames.size(); ++s) {
    if (value.substr(0, colon) != kSiteNames[s]) continue;
    char* end = nullptr;
    const unsigned long long at = std::strtoull(text + colon + 1, &end, 10);
    if (end != text + colon + 1 && *end == '\0' && at > 0) return Armed{static_cast<CrashSite>(s), at};
  }
  std::fprintf(stderr, "%s=%s: expected SITE:N, SITE one of event, commit, committed, sync, write and N >= 1\n", variable, text);
  std::_Exit(2);
}

const std::optional<Armed>& armed() {
  static const std::optional<Armed> crash_at = parse_point("ASIARCH_CRASH_AT");
  return crash_at;
}

struct Pause {
  Armed at;
  std::string release;  // the file whose existence ends the pause
};

const std::optional<Pause>& pause() {
  static const std::optional<Pause> pause_at = []() -> std::optional<Pause> {
    const std::optional<Armed> at = parse_point("ASIARCH_PAUSE_AT");
    if (!at) return std::nullopt;
    const char* release = std::getenv("ASIARCH_PAUSE_UNTIL");
    if (release == nullptr || *release == '\0') {
      std::fprintf(stderr, "ASIARCH_PAUSE_AT needs ASIARCH_PAUSE_UNTIL=FILE, the file whose creation ends the pause\n");
      std::_Exit(2);
    }
    return Pause{*at, release};
  }();
  return pause_at;
}

// Marks the pause with RELEASE.paused, then waits until RELEASE exists.
void wait_for_release(const std::string& release) {
  if (FILE* marker = std::fopen((release + ".paused").c_str(), "w")) std::fclose(marker);
  while (::access(release.c_str(), F_OK) != 0) ::usleep(10000);
}

std::array<std::atomic<uint64_t>, kSiteNames.size()> counts{};

template <typename Function>
Function next_definition(const char* name) {
  return reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

void crash_point(CrashSite site, uint64_t event_seq) {
  const auto& crash_at = armed();
  const auto& pause_at = pause();
  const bool crash_here = crash_at && crash_at->site == site;
  const bool pause_here = pause_at && pause_at->at.site == site;
  if (!crash_here && !pause_here) return;
  const uint64_t value = site == CrashSite::Event ? event_seq : ++counts[static_cast<size_t>(site)];
  if (pause_here && value == pause_at->at.at) wait_for_release(pause_at->release);
  if (crash_here && value == crash_at->at) ::raise(SIGKILL);
}

}  // namespace asiarch::storage

// The executable's definitions come first in symbol lookup, so LMDB's calls arrive here.
extern "C" {

int fdatasync(int fd) {
  asiarch::storage::crash_point(asiarch::storage::CrashSite::Sync);
  static const auto next = asiarch::storage::next_definition<int (*)(int)>("fdatasync");
  return next(fd);
}

int fsync(int fd) {
  asiarch::storage::crash_point(asiarch::storage::CrashSite::Sync);
  static const auto next = asiarch::storage::next_definition<int (*)(int)>("fsync");
  return next(fd);
}

ssize_t pwrite(int fd, const void* buffer, size_t bytes, off_t offset) {
  asiarch::storage::crash_point(asiarch::storage::CrashSite::Write);
  static const auto next = asiarch::storage::next_definition<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  return next(fd, buffer, bytes, offset);
}

}  // extern "C"
