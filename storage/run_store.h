#pragma once
// The run store: one LMDB environment per campaign, in the run directory itself (data.mdb and
// lock.mdb next to the scenario file), so that `mdb_stat -a DIR` and `mdb_dump -s events DIR`
// read it. Nothing else in the code base knows LMDB's API.
//
// Named databases and their byte formats:
//
//   events   key: be64(seq), seq = 1, 2, 3, ... appended with MDB_APPEND
//            value: the canonical Cap'n Proto bytes of one `Event` (messages/asiarch.capnp)
//   chain    key: be64(n)   value: 32 bytes, h_n
//            h_0 = SHA-256(canonical bytes of the run's `RunHeader`)
//            h_n = SHA-256(h_{n-1} || be64(n) || events[n])
//            The last h_n is the campaign's digest.
//   archs    key: be64(arch id)                 value: Cap'n Proto `ArchRecord`
//   results  key: be64(arch id) || u8(fidelity)  value: Cap'n Proto `ResultRecord`
//   insights key: be64(insight id)              value: Cap'n Proto `InsightRecord`
//   meta     key: ASCII name                    value: bytes (names: meta_key in scenario/run_header.h)
//
// Writes go into one open write transaction that commit() makes durable; readers in other
// processes see the state of the last commit. A read-only RunStore can be opened while another
// process writes (LMDB readers do not block the writer).
//
// Threads: a ReadWrite store is used from one thread (LMDB binds a write transaction to the
// thread that began it); a ReadOnly store may be read from several threads at once.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace asiarch::storage {

using Bytes = std::string;  // raw bytes; std::string for cheap views and comparisons
using Digest = std::array<unsigned char, 32>;

std::string to_hex(const Digest& digest);
Digest sha256(std::string_view bytes);
// The chain rule: h_seq = SHA-256(previous || be64(seq) || canonical_event).
Digest chain_next(const Digest& previous, uint64_t seq, std::string_view canonical_event);

// Storage failures (LMDB errors, missing or corrupt run directories). what() says which run
// directory, what went wrong, and what to do.
class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string be64(uint64_t value);          // 8-byte big-endian key
uint64_t from_be64(std::string_view key);  // inverse; key must have 8 bytes

class RunStore {
 public:
  enum class Mode { ReadOnly, ReadWrite };

  // Creates the LMDB environment in `dir` (created if missing; refused if it already holds one).
  static std::unique_ptr<RunStore> create(const std::filesystem::path& dir);
  // Opens an existing run directory; throws StorageError if there is no run there.
  static std::unique_ptr<RunStore> open(const std::filesystem::path& dir, Mode mode);
  // Discards writes not yet committed: the caller decides what is durable.
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  const std::filesystem::path& dir() const;

  // ---- event log and hash chain ----
  // Starts the chain: stores h_0 = sha256(header_bytes) at chain key 0. Once, before append.
  Digest begin_chain(std::string_view header_bytes);
  // Appends event `seq` (must be last_seq() + 1) and its chain link; returns h_seq.
  Digest append_event(uint64_t seq, std::string_view canonical_event);
  uint64_t last_seq() const;                         // 0 when empty
  std::optional<Bytes> event(uint64_t seq) const;    // nullopt past the end
  std::optional<Digest> chain_link(uint64_t n) const;  // h_n; n = 0 is the header hash
  Digest head() const;                               // h_{last_seq}; all zero before begin_chain
  // Every stored event in key order, with the key as stored: a checker compares them with 1, 2, 3, ...
  void for_each_event(const std::function<void(uint64_t seq, std::string_view canonical_event)>& visit) const;

  // ---- lineage tables and meta ----
  void put_arch(uint64_t id, std::string_view value);
  std::optional<Bytes> arch(uint64_t id) const;
  void for_each_arch(const std::function<void(uint64_t id, std::string_view value)>& visit) const;

  void put_result(uint64_t id, uint8_t fidelity, std::string_view value);
  std::optional<Bytes> result(uint64_t id, uint8_t fidelity) const;
  void for_each_result(const std::function<void(uint64_t id, uint8_t fidelity, std::string_view value)>& visit) const;

  void put_insight(uint64_t id, std::string_view value);
  void for_each_insight(const std::function<void(uint64_t id, std::string_view value)>& visit) const;

  void put_meta(std::string_view key, std::string_view value);
  std::optional<Bytes> meta(std::string_view key) const;
  void for_each_meta(const std::function<void(std::string_view key, std::string_view value)>& visit) const;

  // Runs `reads` with every read of this store in one read transaction: one committed state,
  // even while another process commits (check compares tables written in the same commit).
  void read_snapshot(const std::function<void()>& reads) const;

  // Makes every write since the last commit durable and visible to other processes. A write that
  // fails throws and discards every write since the last commit (LMDB cannot go on with it).
  void commit();
  // Fault injection ([faults] log_write_failure): the next commit() discards the writes since the
  // last commit and throws StorageError naming `reason`, as a commit that LMDB refused would.
  void fail_next_commit(std::string reason);

 private:
  struct Impl;
  explicit RunStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace asiarch::storage
