// The damage guard: see damage_guard.h.
#include "storage/damage_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace asiarch::storage {
namespace {

// A page shared with the parent: "DIR\0TABLE\0", rewritten before each read.
constexpr size_t kNoteBytes = 4096;
char* shared_note = nullptr;
pid_t guarded_child = 0;

void pass_on(int signal) {
  if (guarded_child > 0) ::kill(guarded_child, signal);
}

bool is_fault(int signal) { return signal == SIGSEGV || signal == SIGBUS || signal == SIGABRT || signal == SIGFPE || signal == SIGILL; }

}  // namespace

void note_reading(const char* dir, const char* table) {
  if (shared_note == nullptr) return;
  const size_t dir_bytes = std::min(std::strlen(dir), kNoteBytes / 2);
  std::memcpy(shared_note, dir, dir_bytes);
  shared_note[dir_bytes] = '\0';
  std::snprintf(shared_note + dir_bytes + 1, kNoteBytes - dir_bytes - 1, "%s", table);
}

int run_guarded(const std::function<int()>& command) {
  void* page = ::mmap(nullptr, kNoteBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return command();  // no guard rather than no command
  shared_note = static_cast<char*>(page);
  shared_note[0] = shared_note[1] = '\0';
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) return command();
  if (child == 0) std::exit(command());  // as main's return would: streams flushed, static objects ended

  guarded_child = child;
  struct sigaction forward{};
  forward.sa_handler = pass_on;
  sigemptyset(&forward.sa_mask);
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(signal, &forward, nullptr);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  const int signal = WTERMSIG(status);
  if (!is_fault(signal)) {
    // Ended as the user asked: end the same way.
    ::signal(signal, SIG_DFL);
    ::raise(signal);
    return 128 + signal;
  }
  const char* dir = shared_note;
  const char* table = shared_note + std::strlen(shared_note) + 1;
  std::fprintf(stderr, "the run store %s is damaged: reading %s ended the reader with %s (LMDB met a page it cannot use); "
               "nothing past it can be read: restore the run directory from a copy made before the damage\n",
               *dir ? dir : "(unknown)", *table ? (std::string("table ") + table).c_str() : "it", ::strsignal(signal));
  return 2;
}

}  // namespace asiarch::storage
