#pragma once
// Reading a damaged run store must end with exit 2, never a signal. LMDB trusts the pages it
// maps: a damaged branch page can make a reader fault (SIGSEGV, SIGBUS) or fail one of LMDB's
// assertions (SIGABRT) before any check of ours sees a byte. So the commands that read a store
// run in a child process; the parent waits, and turns such an end of the child into a message
// that names the run store and the table the child was reading, and exit 2.
#include <functional>

namespace asiarch::storage {

// Runs `command` in a child process and returns its exit code; a child ended by SIGSEGV, SIGBUS,
// SIGABRT, SIGFPE or SIGILL gives exit 2 and the message on stderr. SIGINT, SIGTERM and SIGHUP
// sent to the parent are passed on to the child.
int run_guarded(const std::function<int()>& command);

// What the process reads now, for the guard's message (a no-op outside run_guarded).
void note_reading(const char* dir, const char* table);

}  // namespace asiarch::storage
