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
//
// ASIARCH_PAUSE_AT=SITE:N with ASIARCH_PAUSE_UNTIL=FILE pauses the process there instead: it
// creates FILE.paused and waits until FILE exists, so a test can act on a run that is certainly
// still going (read it while it runs) however fast the machine is.
#include <cstdint>

namespace asiarch::storage {

enum class CrashSite { Event, Commit, Committed, Sync, Write };

// Kills (or pauses) the process when the crash (or pause) point names this site and `value` (the
// event's seq for Event; otherwise the site's running count in this process, which the call
// advances).
void crash_point(CrashSite site, uint64_t event_seq = 0);

}  // namespace asiarch::storage
