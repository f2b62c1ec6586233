// The worker secret's file (remote/remote_workers.h): made once per run directory, read by the
// run and by every worker.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/hex.h"
#include "remote/remote_protocol.h"
#include "remote/remote_workers.h"

namespace asiarch {
namespace remote {

std::string read_secret_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::invalid_argument("cannot read the secret file " + path.string() +
                                " (a worker's is the run's DIR/worker.secret, or the file given to `asiarch run --secret-file`)");
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) secret.pop_back();
  if (secret.empty()) throw std::invalid_argument("the secret file " + path.string() + " is empty; put a random line in it");
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
    spdlog::warn("the secret file {} can be read by other users; `chmod 600 {}`", path.string(), path.string());
  }
  return secret;
}

}  // namespace remote

namespace {

std::string random_hex(size_t bytes) {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!urandom.read(raw.data(), static_cast<std::streamsize>(bytes))) throw std::runtime_error("cannot read /dev/urandom for the worker secret");
  return hex_of(raw);
}

}  // namespace

WorkerSecret worker_secret(const ListenOptions& options, const std::filesystem::path& dir) {
  if (!options.secret_file.empty()) return WorkerSecret{remote::read_secret_file(options.secret_file), options.secret_file};
  const auto path = dir / "worker.secret";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return WorkerSecret{remote::read_secret_file(path), path};
    throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(errno));
  }
  const std::string secret = random_hex(32);
  const std::string line = secret + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written) throw std::runtime_error("cannot write " + path.string() + "; check the disk");
  return WorkerSecret{secret, path};
}

}  // namespace asiarch
