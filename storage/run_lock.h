#pragma once
// One writer per run directory: `asiarch run` and `asiarch resume` hold an exclusive flock(2)
// on the directory DIR itself for as long as they write (DIR/writer.lock names the holder's pid). The kernel releases it when the process ends,
// however it ends (kill -9 included), so a crashed run never leaves a stale lock behind.
// Readers (inspect, replay, check) take no lock: LMDB readers do not block the writer.
#include <filesystem>
#include <memory>

namespace asiarch::storage {

class RunLock {
 public:
  // Takes the lock or throws StorageError naming the process that holds it.
  static std::unique_ptr<RunLock> acquire(const std::filesystem::path& dir);
  // Whether a process holds the lock now, read from /proc/locks without touching the lock (a
  // probe that took it could make a starting writer fail). True when it cannot be told.
  static bool held(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace asiarch::storage
