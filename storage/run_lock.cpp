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

// The lock is on the directory itself, which cannot be deleted while it holds a run; writer.lock
// only names the holder's pid for the message another process gets.
std::unique_ptr<RunLock> RunLock::acquire(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw StorageError("cannot open the run directory " + dir.string() + ": " + std::strerror(errno) + "; check the path and its permissions");
  const std::filesystem::path file = dir / "writer.lock";
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    std::ifstream holder(file);
    std::string pid;
    holder >> pid;
    throw StorageError("the run directory " + dir.string() + " is in use by another asiarch process" + (pid.empty() ? std::string() : " (pid " + pid + ")") +
                       "; wait for it to finish or stop it, then try again");
  }
  const std::string pid = std::to_string(::getpid());
  std::ofstream note(file, std::ios::trunc);
  note << pid;
  note.close();
  if (!note) {
    ::close(fd);
    throw StorageError("cannot write " + file.string() + "; check the run directory's permissions");
  }
  return std::unique_ptr<RunLock>(new RunLock(fd));
}

bool RunLock::held(const std::filesystem::path& dir) {
  struct stat file{};
  if (::stat(dir.c_str(), &file) != 0) return errno != ENOENT;
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
