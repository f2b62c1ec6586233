#pragma once
// DIR/head: the end of the log at the last commit, "SEQ HEX-DIGEST\n" (h_SEQ), rewritten (through
// a temporary file, fsync and rename) after each commit. LMDB keeps two meta pages and a store
// set back to the older one is a consistent, older run that its own chain cannot tell apart;
// the head file outside it can: the store must hold event SEQ with the link h_SEQ. A process
// killed between a commit and the rewrite leaves the file behind the store, never ahead of it.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "storage/run_store.h"

namespace asiarch::storage {

struct CommittedHead {
  uint64_t seq = 0;
  Digest link{};
};

void write_committed_head(const std::filesystem::path& dir, const CommittedHead& head);
// nullopt when the file is absent (a run recorded before it existed); StorageError when it does
// not parse.
std::optional<CommittedHead> read_committed_head(const std::filesystem::path& dir);
// Why `store` is behind its head file, or nullopt when it is not.
std::optional<std::string> rolled_back(const RunStore& store, const std::optional<CommittedHead>& head);

}  // namespace asiarch::storage
