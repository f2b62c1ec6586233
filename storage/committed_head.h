#pragma once
// DIR/head: the end of the log at the last commit, "SEQ LINK META\n" (h_SEQ, and the SHA-256 of
// the meta table), rewritten (through a temporary file, fsync and rename) after each commit.
// LMDB keeps two meta pages and a store set back to the older one is a consistent, older run that
// its own chain cannot tell apart; the head file outside it can: the store must hold event SEQ
// with the link h_SEQ. While the store still ends at SEQ, its meta table must also hash to META:
// the values there that the log does not determine (a failure's text, the count of starts) are
// bound this way. A process killed between a commit and the rewrite leaves the file behind the
// store, never ahead of it.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "storage/run_store.h"

namespace asiarch::storage {

struct CommittedHead {
  uint64_t seq = 0;
  Digest link{};
  Digest meta{};
};

// The SHA-256 of every meta key and value, in key order, each preceded by its length (be64).
Digest meta_digest(const RunStore& store);
// The head of `store` as committed now.
CommittedHead committed_head(const RunStore& store);

void write_committed_head(const std::filesystem::path& dir, const CommittedHead& head);
// nullopt when the file is absent (a run recorded before it existed); StorageError when it does
// not parse.
std::optional<CommittedHead> read_committed_head(const std::filesystem::path& dir);
// Why `store` is behind its head file, or nullopt when it is not.
std::optional<std::string> rolled_back(const RunStore& store, const std::optional<CommittedHead>& head);
// Why `store`'s meta table is not the one its head file recorded, or nullopt when it is (or when
// the store has moved on since the file was written).
std::optional<std::string> meta_changed(const RunStore& store, const std::optional<CommittedHead>& head);

}  // namespace asiarch::storage
