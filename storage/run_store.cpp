// The run store over LMDB. The byte formats are documented in run_store.h.
#include "storage/run_store.h"

#include "storage/crash_point.h"
#include "storage/damage_guard.h"

#include <lmdb.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <csetjmp>
#include <csignal>
#include <cerrno>
#include <fstream>
#include <functional>
#include <set>
#include <cstring>
#include <system_error>
#include <utility>

namespace asiarch::storage {
namespace {

sigjmp_buf* guard_jump = nullptr;

void on_bus_error(int) { siglongjmp(*guard_jump, 1); }

// Runs `read` (reads of the mapped file) and returns false instead of dying when a page it
// touches lies past the end of the file (SIGBUS). Only for the opening checks, which run before
// the store is shared between threads.
bool read_guarded(const std::function<void()>& read) {
  sigjmp_buf jump;
  struct sigaction guard{}, previous{};
  guard.sa_handler = on_bus_error;
  sigemptyset(&guard.sa_mask);
  if (sigsetjmp(jump, 1) != 0) {
    sigaction(SIGBUS, &previous, nullptr);
    guard_jump = nullptr;
    return false;
  }
  guard_jump = &jump;
  sigaction(SIGBUS, &guard, &previous);
  read();
  sigaction(SIGBUS, &previous, nullptr);
  guard_jump = nullptr;
  return true;
}

}  // namespace

namespace {

// The map is sparse on disk; this only bounds how large one run can grow.
constexpr size_t kMapSize = size_t{8} << 30;
constexpr unsigned int kMaxDatabases = 8;
constexpr size_t kKeyBytes = 8;
constexpr std::string_view kDiscarded = "the writes since the last commit were discarded";
constexpr uint64_t kLowDiskBytes = uint64_t{64} << 20;  // below this a failed write is blamed on the full disk

enum Table : size_t { kEvents, kChain, kArchs, kResults, kInsights, kMeta, kTableCount };
constexpr std::array<const char*, kTableCount> kTableNames = {"events", "chain", "archs", "results", "insights", "meta"};

MDB_val as_value(std::string_view bytes) { return {bytes.size(), const_cast<char*>(bytes.data())}; }
std::string_view as_view(const MDB_val& value) { return {static_cast<const char*>(value.mv_data), value.mv_size}; }
std::string_view as_view(const Digest& digest) { return {reinterpret_cast<const char*>(digest.data()), digest.size()}; }

std::string result_key(uint64_t id, uint8_t fidelity) {
  std::string key = be64(id);
  key += static_cast<char>(fidelity);
  return key;
}

// The map reserves address space, not memory: 8 GiB, or half of what an address-space limit
// (`ulimit -v`) leaves, so that a limited shell can still read and write runs. LMDB raises it to
// the size of an existing file.
size_t map_size() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return kMapSize;
  size_t pages_in_use = 0;
  std::ifstream("/proc/self/statm") >> pages_in_use;
  const size_t in_use = pages_in_use * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t left = limit.rlim_cur > in_use ? limit.rlim_cur - in_use : 0;
  return std::min(kMapSize, left / 2);
}

// What to do about an LMDB or system error, where there is something to say.
std::string remedy(int rc, const std::filesystem::path& dir) {
  // LMDB reports a write that the full disk cut short as EIO.
  struct statvfs disk{};
  if ((rc == EIO || rc == ENOSPC) && ::statvfs(dir.c_str(), &disk) == 0 && uint64_t{disk.f_bavail} * disk.f_frsize < kLowDiskBytes) {
    return "; the file system holding " + dir.string() + " has " + std::to_string(uint64_t{disk.f_bavail} * disk.f_frsize >> 20) +
           " MiB free: free some disk space and resume the run";
  }
  switch (rc) {
    case MDB_MAP_FULL: return "; the run outgrew the store's map (8 GiB, less under `ulimit -v`): raise the limit or start a smaller campaign";
    case ENOSPC: return "; free some disk space and resume the run";
    case EACCES:
    case EROFS: return "; check that the directory is writable by this user";
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID:
    case MDB_INCOMPATIBLE:
    case MDB_NOTFOUND: return "; the run store is damaged or was not written by asiarch";
    default: return "";
  }
}

}  // namespace

std::string be64(uint64_t value) {
  std::string key(kKeyBytes, '\0');
  for (size_t i = 0; i < kKeyBytes; ++i) key[i] = static_cast<char>(value >> (8 * (kKeyBytes - 1 - i)));
  return key;
}

uint64_t from_be64(std::string_view key) {
  if (key.size() != kKeyBytes) {
    throw StorageError("a stored key has " + std::to_string(key.size()) + " bytes where an 8-byte big-endian number belongs; the run store is damaged");
  }
  uint64_t value = 0;
  for (unsigned char byte : key) value = (value << 8) | byte;
  return value;
}

// The end of the log as the database holds it.
struct LogEnd {
  uint64_t last_seq = 0;
  Digest head{};
  bool chain_started = false;
};

struct RunStore::Impl {
  std::filesystem::path dir;
  Mode mode;
  MDB_env* env = nullptr;
  std::array<MDB_dbi, kTableCount> tables{};
  MDB_txn* write_txn = nullptr;  // open from the first write to commit(); ReadWrite only
  MDB_txn* snapshot_txn = nullptr;  // during read_snapshot(): the one read transaction of every read
  LogEnd end;                    // ReadWrite only: cached so that append is O(1)
  std::string injected_failure;  // set: the next commit fails with this reason (fault injection)

  Impl(std::filesystem::path run_dir, Mode run_mode) : dir(std::move(run_dir)), mode(run_mode) {}
  ~Impl() {
    if (write_txn != nullptr) mdb_txn_abort(write_txn);
    if (env != nullptr) mdb_env_close(env);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // `doing` names the step, `table` (if any) the table it was on, `consequence` (if any) what the
  // failure undid; the message is built only on failure.
  [[noreturn]] void fail(int rc, std::string_view doing, std::string_view table = {}, std::string_view consequence = {}) const {
    std::string message = "run store " + dir.string() + ": ";
    message += doing;
    if (!table.empty()) message.append(" ").append(table);
    message.append(": ").append(mdb_strerror(rc));
    if (!consequence.empty()) message.append("; ").append(consequence);
    throw StorageError(message + remedy(rc, dir));
  }
  void check(int rc, std::string_view doing, std::string_view table = {}) const {
    if (rc != MDB_SUCCESS) fail(rc, doing, table);
  }

  // Opens the environment and its tables; false when the store holds no table at all (the
  // process that created it ended before its first commit: an empty run, not a damaged one).
  [[nodiscard]] bool open_env() {
    check(mdb_env_create(&env), "creating the LMDB environment");
    check(mdb_env_set_maxdbs(env, kMaxDatabases), "setting the number of tables");
    check(mdb_env_set_mapsize(env, map_size()), "setting the map size");
    // MDB_NOTLS: read transactions are not bound to threads, so a read may nest in a for_each visit.
    const unsigned int flags = MDB_NOTLS | (mode == Mode::ReadOnly ? MDB_RDONLY : 0);
    note_reading(dir.c_str(), "meta (LMDB's meta pages)");
    check(mdb_env_open(env, dir.c_str(), flags, 0644), "opening the LMDB environment");
    release_dead_readers();
    require_whole_file();

    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, mode == Mode::ReadOnly ? MDB_RDONLY : 0, &txn), "beginning a transaction");
    const unsigned int table_flags = mode == Mode::ReadWrite ? MDB_CREATE : 0;
    for (size_t t = 0; t < kTableCount; ++t) {
      const int rc = mdb_dbi_open(txn, kTableNames[t], table_flags, &tables[t]);
      if (rc != MDB_SUCCESS) {
        // No table at all: the process that created the environment ended before its first
        // commit. That is an empty run, not a damaged one.
        MDB_stat catalogue{};
        const bool empty = rc == MDB_NOTFOUND && mdb_stat(txn, 0, &catalogue) == MDB_SUCCESS && catalogue.ms_entries == 0;
        mdb_txn_abort(txn);
        if (empty) return false;
        fail(rc, "opening table", kTableNames[t]);
      }
    }
    // Committing keeps the table handles open for the life of the environment.
    check(mode == Mode::ReadWrite ? commit_write(txn) : mdb_txn_commit(txn), "committing the table catalogue");
    if (mode == Mode::ReadWrite) end = read_log_end();
    return true;
  }

  // True when every table is empty: nothing of a run was ever committed.
  bool holds_nothing() const {
    ReadTxn txn(*this);
    for (size_t t = 0; t < kTableCount; ++t) {
      MDB_stat stat{};
      check(mdb_stat(txn.get(), tables[t], &stat), "reading the size of table", kTableNames[t]);
      if (stat.ms_entries != 0) return false;
    }
    return true;
  }

  // A reader killed inside a read transaction keeps its slot in lock.mdb; after 126 of them no
  // reader could begin. LMDB frees the slots whose process is gone.
  void release_dead_readers() const {
    int released = 0;
    check(mdb_reader_check(env, &released), "releasing the reader slots of ended processes");
  }

  // LMDB maps data.mdb and trusts its meta page: reading a page past the end of a truncated file
  // would kill the process with SIGBUS, so a file shorter than its pages is refused here.
  void require_whole_file() const {
    MDB_envinfo info{};
    MDB_stat stat{};
    check(mdb_env_info(env, &info), "reading the environment's size");
    check(mdb_env_stat(env, &stat), "reading the environment's page size");
    const uint64_t needed = (uint64_t{info.me_last_pgno} + 1) * stat.ms_psize;
    std::error_code error;
    const uint64_t size = std::filesystem::file_size(dir / "data.mdb", error);
    if (error) throw StorageError("run store " + dir.string() + ": cannot read the size of data.mdb: " + error.message());
    if (size < needed && !missing_pages_are_free(size / stat.ms_psize, info.me_last_pgno)) {
      throw StorageError("run store " + dir.string() + ": data.mdb has " + std::to_string(size) + " bytes where its pages need " +
                         std::to_string(needed) + "; the file was truncated (an interrupted copy?) and the run store is damaged");
    }
  }

  // A transaction that takes pages from the end of the file and frees them again before it
  // commits (deleting records does) records a last page it never wrote, so data.mdb can end
  // before it: not damage, as long as every page past the end is on LMDB's free list. The free
  // list is read under a SIGBUS guard, since its own pages could lie past the end of a file that
  // really was truncated.
  bool missing_pages_are_free(uint64_t first_missing, uint64_t last) const {
    std::set<uint64_t> free;
    const bool read = read_guarded([&] {
      MDB_txn* txn = nullptr;
      if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != MDB_SUCCESS) return;
      MDB_cursor* cursor = nullptr;
      if (mdb_cursor_open(txn, 0, &cursor) == MDB_SUCCESS) {  // dbi 0: LMDB's free list
        MDB_val key{}, value{};
        for (int rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
          // An ID list: its length, then page numbers.
          const auto* ids = static_cast<const size_t*>(value.mv_data);
          const size_t count = value.mv_size / sizeof(size_t);
          for (size_t i = 1; i < count && i <= ids[0]; ++i) free.insert(ids[i]);
        }
        mdb_cursor_close(cursor);
      }
      mdb_txn_abort(txn);
    });
    if (!read) return false;
    for (uint64_t page = first_missing; page <= last; ++page) {
      if (!free.count(page)) return false;
    }
    return true;
  }

  // A transaction to read in: the open write transaction, whose uncommitted writes a ReadWrite
  // store must see, or else a short read-only one.
  class ReadTxn {
   public:
    explicit ReadTxn(const Impl& impl) : txn_(impl.write_txn != nullptr ? impl.write_txn : impl.snapshot_txn) {
      if (txn_ == nullptr) {
        int rc = mdb_txn_begin(impl.env, nullptr, MDB_RDONLY, &txn_);
        if (rc == MDB_READERS_FULL) {  // slots of readers that ended since the store was opened
          impl.release_dead_readers();
          rc = mdb_txn_begin(impl.env, nullptr, MDB_RDONLY, &txn_);
        }
        impl.check(rc, "beginning a read transaction");
        owned_ = true;
      }
    }
    ~ReadTxn() {
      if (owned_) mdb_txn_abort(txn_);
    }
    ReadTxn(const ReadTxn&) = delete;
    ReadTxn& operator=(const ReadTxn&) = delete;
    MDB_txn* get() const { return txn_; }

   private:
    MDB_txn* txn_;
    bool owned_ = false;
  };

  class Cursor {
   public:
    Cursor(const Impl& impl, MDB_txn* txn, Table table) {
      note_reading(impl.dir.c_str(), kTableNames[table]);
      impl.check(mdb_cursor_open(txn, impl.tables[table], &cursor_), "opening a cursor on table", kTableNames[table]);
    }
    ~Cursor() { mdb_cursor_close(cursor_); }
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    MDB_cursor* get() const { return cursor_; }

   private:
    MDB_cursor* cursor_ = nullptr;
  };

  std::optional<std::string_view> get_in(MDB_txn* txn, Table table, std::string_view key) const {
    note_reading(dir.c_str(), kTableNames[table]);
    MDB_val k = as_value(key), value{};
    const int rc = mdb_get(txn, tables[table], &k, &value);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check(rc, "reading table", kTableNames[table]);
    return as_view(value);
  }

  std::optional<Bytes> get(Table table, std::string_view key) const {
    ReadTxn txn(*this);
    auto value = get_in(txn.get(), table, key);
    if (!value) return std::nullopt;
    return Bytes(*value);
  }

  // Visits every (key, value) of `table` in key order.
  template <typename Visit>
  void for_each(Table table, const Visit& visit) const {
    ReadTxn txn(*this);
    Cursor cursor(*this, txn.get(), table);
    MDB_val key{}, value{};
    int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST);
    for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) visit(as_view(key), as_view(value));
    if (rc != MDB_NOTFOUND) fail(rc, "iterating table", kTableNames[table]);
  }

  LogEnd read_log_end() const {
    ReadTxn txn(*this);
    LogEnd found;
    {
      Cursor events(*this, txn.get(), kEvents);
      MDB_val key{}, value{};
      const int rc = mdb_cursor_get(events.get(), &key, &value, MDB_LAST);
      if (rc != MDB_NOTFOUND) {
        check(rc, "finding the last event");
        found.last_seq = from_be64(as_view(key));
      }
    }
    {
      Cursor chain(*this, txn.get(), kChain);
      MDB_val key{}, value{};
      const int rc = mdb_cursor_get(chain.get(), &key, &value, MDB_LAST);
      if (rc == MDB_NOTFOUND && found.last_seq == 0) return found;
      if (rc != MDB_NOTFOUND) check(rc, "finding the last chain link");
      if (rc == MDB_NOTFOUND || from_be64(as_view(key)) != found.last_seq || value.mv_size != sizeof(Digest)) {
        throw StorageError("run store " + dir.string() + ": the chain table does not end at the last event (seq " +
                           std::to_string(found.last_seq) + "); the run store is damaged");
      }
      std::memcpy(found.head.data(), value.mv_data, sizeof(Digest));
      found.chain_started = true;
    }
    return found;
  }

  LogEnd log_end() const { return mode == Mode::ReadWrite ? end : read_log_end(); }

  void require_writable(std::string_view table) const {
    if (mode != Mode::ReadWrite) {
      throw StorageError("run store " + dir.string() + ": cannot write table " + std::string(table) +
                         ": the store was opened read-only; writes go through the process that runs the campaign");
    }
  }

  // Writes key -> value into `table` in the open write transaction (begun here if needed). On a
  // failure LMDB cannot continue the transaction: it is discarded and the cached end reloaded.
  void put(Table table, std::string_view key, std::string_view value, unsigned int flags = 0) {
    require_writable(kTableNames[table]);
    if (write_txn == nullptr) check(mdb_txn_begin(env, nullptr, 0, &write_txn), "beginning a write transaction");
    MDB_val k = as_value(key), v = as_value(value);
    const int rc = mdb_put(write_txn, tables[table], &k, &v, flags);
    if (rc != MDB_SUCCESS) {
      discard_writes();
      fail(rc, "writing table", kTableNames[table], kDiscarded);
    }
  }

  void discard_writes() {
    mdb_txn_abort(write_txn);
    write_txn = nullptr;
    end = read_log_end();
  }

  static int commit_write(MDB_txn* txn) {
    crash_point(CrashSite::Commit);
    const int rc = mdb_txn_commit(txn);
    if (rc == MDB_SUCCESS) crash_point(CrashSite::Committed);
    return rc;
  }

  void commit() {
    if (write_txn == nullptr) return;
    if (!injected_failure.empty()) {
      // An injected failure ends the transaction as a failed mdb_txn_commit does: nothing lands.
      mdb_txn_abort(write_txn);
      write_txn = nullptr;
      end = read_log_end();
      const std::string why = std::exchange(injected_failure, {});
      throw StorageError("run store " + dir.string() + ": committing: " + why + "; " + std::string(kDiscarded));
    }
    const int rc = commit_write(write_txn);  // frees the transaction whether or not it succeeds
    write_txn = nullptr;
    if (rc != MDB_SUCCESS) {
      end = read_log_end();
      fail(rc, "committing", {}, kDiscarded);
    }
  }
};

RunStore::RunStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunStore::~RunStore() = default;

std::unique_ptr<RunStore> RunStore::create(const std::filesystem::path& dir) {
  if (std::filesystem::exists(dir / "data.mdb")) {
    // A run killed inside its first commits left a store that holds nothing: it is started afresh.
    bool empty = false;
    {
      Impl existing(dir, Mode::ReadOnly);
      empty = !existing.open_env() || existing.holds_nothing();
    }
    if (!empty) throw StorageError(dir.string() + " already holds a run store (data.mdb); choose another --out directory or remove it");
    std::filesystem::remove(dir / "data.mdb");
    std::filesystem::remove(dir / "lock.mdb");
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw StorageError("cannot create the run directory " + dir.string() + ": " + error.message() + "; check the path and its permissions");
  auto impl = std::make_unique<Impl>(dir, Mode::ReadWrite);
  if (!impl->open_env()) throw StorageError("run store " + dir.string() + ": the new store's tables could not be created");
  return std::unique_ptr<RunStore>(new RunStore(std::move(impl)));
}

std::unique_ptr<RunStore> RunStore::open(const std::filesystem::path& dir, Mode mode) {
  if (!std::filesystem::exists(dir / "data.mdb")) {
    throw StorageError("not a run directory: " + dir.string() + " has no data.mdb; pass the directory that `asiarch run` wrote");
  }
  auto impl = std::make_unique<Impl>(dir, mode);
  if (!impl->open_env()) {
    throw StorageError("run store " + dir.string() + " holds no run: the process that created it ended before its first commit; "
                       "start the campaign again with `asiarch run SCENARIO --out " + dir.string() + "`, which reuses the directory");
  }
  return std::unique_ptr<RunStore>(new RunStore(std::move(impl)));
}

const std::filesystem::path& RunStore::dir() const { return impl_->dir; }

Digest RunStore::begin_chain(std::string_view header_bytes) {
  impl_->require_writable(kTableNames[kChain]);
  if (impl_->end.chain_started) {
    throw StorageError("run store " + impl_->dir.string() + ": the chain was already begun; begin_chain is called once per run");
  }
  const Digest h0 = sha256(header_bytes);
  impl_->put(kChain, be64(0), as_view(h0), MDB_APPEND);
  impl_->end.head = h0;
  impl_->end.chain_started = true;
  return h0;
}

Digest RunStore::append_event(uint64_t seq, std::string_view canonical_event) {
  impl_->require_writable(kTableNames[kEvents]);
  LogEnd& end = impl_->end;
  if (!end.chain_started) {
    throw StorageError("run store " + impl_->dir.string() + ": cannot append event " + std::to_string(seq) + " before begin_chain");
  }
  if (seq != end.last_seq + 1) {
    throw StorageError("run store " + impl_->dir.string() + ": event seq " + std::to_string(seq) + " does not follow the last seq " +
                       std::to_string(end.last_seq) + "; events are appended in order 1, 2, 3, ...");
  }
  crash_point(CrashSite::Event, seq);
  const Digest link = chain_next(end.head, seq, canonical_event);
  const std::string key = be64(seq);
  impl_->put(kEvents, key, canonical_event, MDB_APPEND);
  impl_->put(kChain, key, as_view(link), MDB_APPEND);
  end.last_seq = seq;
  end.head = link;
  return link;
}

void RunStore::for_each_event(const std::function<void(uint64_t seq, std::string_view canonical_event)>& visit) const {
  impl_->for_each(kEvents, [&](std::string_view key, std::string_view value) { visit(from_be64(key), value); });
}

uint64_t RunStore::last_seq() const { return impl_->log_end().last_seq; }

Digest RunStore::head() const { return impl_->log_end().head; }

std::optional<Bytes> RunStore::event(uint64_t seq) const { return impl_->get(kEvents, be64(seq)); }

std::optional<Digest> RunStore::chain_link(uint64_t n) const {
  auto bytes = impl_->get(kChain, be64(n));
  if (!bytes) return std::nullopt;
  if (bytes->size() != sizeof(Digest)) {
    throw StorageError("run store " + impl_->dir.string() + ": chain link " + std::to_string(n) + " has " + std::to_string(bytes->size()) +
                       " bytes, not 32; the run store is damaged");
  }
  Digest link;
  std::memcpy(link.data(), bytes->data(), link.size());
  return link;
}

void RunStore::put_arch(uint64_t id, std::string_view value) {
  impl_->put(kArchs, be64(id), value);
}

std::optional<Bytes> RunStore::arch(uint64_t id) const { return impl_->get(kArchs, be64(id)); }

void RunStore::for_each_arch(const std::function<void(uint64_t id, std::string_view value)>& visit) const {
  impl_->for_each(kArchs, [&](std::string_view key, std::string_view value) { visit(from_be64(key), value); });
}

void RunStore::put_result(uint64_t id, uint8_t fidelity, std::string_view value) {
  impl_->put(kResults, result_key(id, fidelity), value);
}

std::optional<Bytes> RunStore::result(uint64_t id, uint8_t fidelity) const { return impl_->get(kResults, result_key(id, fidelity)); }

void RunStore::for_each_result(const std::function<void(uint64_t id, uint8_t fidelity, std::string_view value)>& visit) const {
  impl_->for_each(kResults, [&](std::string_view key, std::string_view value) {
    if (key.size() != kKeyBytes + 1) {
      throw StorageError("run store " + impl_->dir.string() + ": a results key has " + std::to_string(key.size()) + " bytes, not 9; the run store is damaged");
    }
    visit(from_be64(key.substr(0, kKeyBytes)), static_cast<uint8_t>(key[kKeyBytes]), value);
  });
}

void RunStore::put_insight(uint64_t id, std::string_view value) {
  impl_->put(kInsights, be64(id), value);
}

void RunStore::for_each_insight(const std::function<void(uint64_t id, std::string_view value)>& visit) const {
  impl_->for_each(kInsights, [&](std::string_view key, std::string_view value) { visit(from_be64(key), value); });
}

void RunStore::put_meta(std::string_view key, std::string_view value) {
  impl_->put(kMeta, key, value);
}

std::optional<Bytes> RunStore::meta(std::string_view key) const { return impl_->get(kMeta, key); }

void RunStore::for_each_meta(const std::function<void(std::string_view key, std::string_view value)>& visit) const {
  impl_->for_each(kMeta, visit);
}

void RunStore::read_snapshot(const std::function<void()>& reads) const {
  if (impl_->snapshot_txn != nullptr || impl_->write_txn != nullptr) return reads();
  MDB_txn* txn = nullptr;
  impl_->check(mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn), "beginning a read transaction");
  impl_->snapshot_txn = txn;
  try {
    reads();
  } catch (...) {
    impl_->snapshot_txn = nullptr;
    mdb_txn_abort(txn);
    throw;
  }
  impl_->snapshot_txn = nullptr;
  mdb_txn_abort(txn);
}

void RunStore::commit() { impl_->commit(); }

void RunStore::fail_next_commit(std::string reason) { impl_->injected_failure = std::move(reason); }

}  // namespace asiarch::storage
