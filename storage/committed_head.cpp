// DIR/head: see committed_head.h.
#include "storage/committed_head.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace asiarch::storage {

void write_committed_head(const std::filesystem::path& dir, const CommittedHead& head) {
  const std::string text = std::to_string(head.seq) + " " + to_hex(head.link) + "\n";
  const std::filesystem::path file = dir / "head", partial = dir / "head.partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const bool written = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int error = errno;
  if (fd >= 0) ::close(fd);
  if (!written || std::rename(partial.c_str(), file.c_str()) != 0) {
    throw StorageError("cannot write " + file.string() + ": " + std::strerror(written ? errno : error) + "; check the disk");
  }
}

std::optional<CommittedHead> read_committed_head(const std::filesystem::path& dir) {
  std::ifstream in(dir / "head");
  if (!in) return std::nullopt;
  CommittedHead head;
  std::string hex, rest;
  in >> head.seq >> hex;
  in >> rest;
  bool valid = in.eof() && rest.empty() && hex.size() == 2 * head.link.size() && hex.find_first_not_of("0123456789abcdef") == std::string::npos;
  for (size_t i = 0; valid && i < head.link.size(); ++i) head.link[i] = static_cast<unsigned char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  if (!valid) throw StorageError((dir / "head").string() + " is damaged: expected \"SEQ DIGEST\" (the end of the log at the last commit)");
  return head;
}

std::optional<std::string> rolled_back(const RunStore& store, const std::optional<CommittedHead>& head) {
  if (!head) return std::nullopt;
  const uint64_t last = store.last_seq();
  if (last < head->seq) {
    return "the store's log ends at event " + std::to_string(last) + " but " + (store.dir() / "head").string() + " records " +
           std::to_string(head->seq) + " committed events: the store was set back to an older state (a rolled-back meta page or an old copy)";
  }
  if (store.chain_link(head->seq) != head->link) {
    return "the chain link h_" + std::to_string(head->seq) + " differs from the one " + (store.dir() / "head").string() +
           " recorded at that commit: the store is not the one that was committed";
  }
  return std::nullopt;
}

}  // namespace asiarch::storage
