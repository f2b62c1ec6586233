#include "storage/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "storage/run_store.h"

namespace asiarch::storage {

std::unique_ptr<RunLock> RunLock::acquire(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "writer.lock";
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw StorageError("cannot open " + file.string() + ": " + std::strerror(errno) + "; check the run directory's permissions");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    throw StorageError("the run directory " + dir.string() + " is in use by another asiarch process" +
                       (n > 0 ? " (pid " + std::string(holder, static_cast<size_t>(n)) + ")" : std::string()) +
                       "; wait for it to finish or stop it, then try again");
  }
  // The holder's pid, for the message another process gets.
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    ::close(fd);
    throw StorageError("cannot write " + file.string() + ": " + std::strerror(errno));
  }
  return std::unique_ptr<RunLock>(new RunLock(fd));
}

RunLock::~RunLock() { ::close(fd_); }  // closing the descriptor releases the flock

}  // namespace asiarch::storage
