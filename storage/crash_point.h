#pragma once
// Deterministic crash points for crash tests. With ASIARCH_CRASH_AT=SITE:N in its environment, a
// process kills itself with SIGKILL (as `kill -9` would) at a chosen point of its writes:
//
//   event:N      when event N is about to be appended to the run store (N is the event's seq)
//   commit:N     before this process's N-th commit of the run store
//   committed:N  after its N-th commit returned
//   sync:N       inside its N-th fsync or fdatasync, before the call (LMDB's durability point)
//   write:N      inside its N-th pwrite, before the call (LMDB writes its meta pages so)
//
// Counts start at 1 in each process. The sync and write sites wrap the C library's calls, which
// LMDB makes from its own code; without the variable the wrappers only forward. Tests place a
// crash at the same point on every machine, however busy, instead of killing after a delay.
#include <cstdint>

namespace asiarch::storage {

enum class CrashSite { Event, Commit, Committed, Sync, Write };

// Kills the process when the crash point names this site and `value` (the event's seq for
// Event; otherwise the site's running count in this process, which the call advances).
void crash_point(CrashSite site, uint64_t event_seq = 0);

}  // namespace asiarch::storage
