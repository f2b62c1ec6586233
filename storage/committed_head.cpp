// DIR/head: see committed_head.h.
#include "storage/committed_head.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace asiarch::storage {

Digest meta_digest(const RunStore& store) {
  std::string bytes;
  store.for_each_meta([&](std::string_view key, std::string_view value) {
    bytes.append(be64(key.size())).append(key).append(be64(value.size())).append(value);
  });
  return sha256(bytes);
}

CommittedHead committed_head(const RunStore& store) { return CommittedHead{store.last_seq(), store.head(), meta_digest(store)}; }

void write_committed_head(const std::filesystem::path& dir, const CommittedHead& head) {
  const std::string text = std::to_string(head.seq) + " " + to_hex(head.link) + " " + to_hex(head.meta) + "\n";
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
  std::string link, meta, rest;
  in >> head.seq >> link >> meta;
  in >> rest;
  const auto parse = [](const std::string& hex, Digest& digest) {
    if (hex.size() != 2 * digest.size() || hex.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
    for (size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<unsigned char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    return true;
  };
  if (!in.eof() || !rest.empty() || !parse(link, head.link) || !parse(meta, head.meta)) {
    throw StorageError((dir / "head").string() + " is damaged: expected \"SEQ LINK META\" (the end of the log at the last commit)");
  }
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

std::optional<std::string> meta_changed(const RunStore& store, const std::optional<CommittedHead>& head) {
  if (!head || store.last_seq() != head->seq || meta_digest(store) == head->meta) return std::nullopt;
  return "the meta table is not the one committed with event " + std::to_string(head->seq) + " (" + (store.dir() / "head").string() +
         " records its SHA-256): a meta value was changed";
}

}  // namespace asiarch::storage
