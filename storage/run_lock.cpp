#include "storage/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
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

bool RunLock::held(const std::filesystem::path& dir) {
  struct stat file{};
  if (::stat((dir / "writer.lock").c_str(), &file) != 0) return errno != ENOENT;
  std::ifstream locks("/proc/locks");
  if (!locks) return true;
  // A line: "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF"; the device in hex, the inode in decimal.
  char expected[64];
  std::snprintf(expected, sizeof expected, "%02x:%02x:%lu", major(file.st_dev), minor(file.st_dev), static_cast<unsigned long>(file.st_ino));
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string index, kind, mode, access, pid, device;
    if (fields >> index >> kind >> mode >> access >> pid >> device && kind == "FLOCK" && device == expected) return true;
  }
  return false;
}

RunLock::~RunLock() { ::close(fd_); }  // closing the descriptor releases the flock

}  // namespace asiarch::storage
