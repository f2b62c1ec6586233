// The run store: key encoding, the hash chain, durability boundaries, concurrent readers, the
// lineage tables, and that the LMDB tools read what it writes.
#include <lmdb.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "storage/run_store.h"

namespace fs = std::filesystem;
using asiarch::storage::be64;
using asiarch::storage::Bytes;
using asiarch::storage::Digest;
using asiarch::storage::from_be64;
using asiarch::storage::RunStore;
using asiarch::storage::StorageError;
using asiarch::storage::to_hex;

namespace {

// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("asiarch-test-storage-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Event bytes that vary in length and hold NUL and high bytes, like Cap'n Proto does.
Bytes test_event(uint64_t seq) {
  Bytes bytes = "event-" + std::to_string(seq);
  bytes += std::string(seq % 5, '\0');
  for (uint64_t i = 0; i < 8 + seq % 13; ++i) bytes += static_cast<char>((seq * 37 + i * 101) & 0xff);
  return bytes;
}

const Bytes kHeader = std::string("scenario = \"test\"\0seed=7", 24);

// The chain recomputed here with OpenSSL's one-shot SHA256 and a hand-written big-endian key,
// independent of the store's own hashing and encoding.
Digest sha256_oneshot(const std::string& bytes) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return digest;
}

Digest independent_link(const Digest& previous, uint64_t seq, const Bytes& event) {
  std::string input(reinterpret_cast<const char*>(previous.data()), previous.size());
  for (int shift = 56; shift >= 0; shift -= 8) input += static_cast<char>((seq >> shift) & 0xff);
  input += event;
  return sha256_oneshot(input);
}

// Writes the header and events 1..count; returns h_0..h_count as append returned them.
std::vector<Digest> write_events(RunStore& store, uint64_t count) {
  std::vector<Digest> links{store.begin_chain(kHeader)};
  for (uint64_t seq = 1; seq <= count; ++seq) links.push_back(store.append_event(seq, test_event(seq)));
  return links;
}

// Runs a shell command; returns its exit status and standard output.
std::pair<int, std::string> run_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string hex_of(const Bytes& bytes) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : bytes) {
    hex += kHexDigits[byte >> 4];
    hex += kHexDigits[byte & 0x0f];
  }
  return hex;
}

}  // namespace

TEST_CASE("be64 is big-endian and orders like the numbers and round-trips", "[storage]") {
  CHECK(be64(0x0102030405060708ULL) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  CHECK(be64(0) == std::string(8, '\0'));

  const std::vector<uint64_t> ascending = {0, 1, 2, 255, 256, 257, 65535, 65536, 1ULL << 32, (1ULL << 32) + 1, 1ULL << 63, ~0ULL - 1, ~0ULL};
  for (size_t i = 0; i < ascending.size(); ++i) {
    CHECK(be64(ascending[i]).size() == 8);
    CHECK(from_be64(be64(ascending[i])) == ascending[i]);
    if (i > 0) CHECK(be64(ascending[i - 1]) < be64(ascending[i]));  // std::string compares bytes as LMDB does
  }
  CHECK_THROWS_AS(from_be64("1234567"), StorageError);
  CHECK_THROWS_AS(from_be64("123456789"), StorageError);
}

TEST_CASE("sha256 and to_hex match the FIPS 180-2 test vector", "[storage]") {
  CHECK(to_hex(asiarch::storage::sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(asiarch::storage::sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("the stored chain equals an independent recomputation", "[storage]") {
  TempDir tmp;
  auto store = RunStore::create(tmp.path());
  const auto links = write_events(*store, 50);

  Digest expected = sha256_oneshot(kHeader);
  CHECK(links[0] == expected);
  CHECK(store->chain_link(0) == expected);
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    expected = independent_link(expected, seq, test_event(seq));
    CHECK(links[seq] == expected);
    CHECK(store->chain_link(seq) == expected);
    CHECK(asiarch::storage::chain_next(links[seq - 1], seq, test_event(seq)) == expected);
  }
  CHECK(store->head() == expected);
  CHECK(store->last_seq() == 50);
  CHECK_FALSE(store->chain_link(51).has_value());
}

TEST_CASE("appends must come in order and after the chain begins", "[storage]") {
  TempDir tmp;
  auto store = RunStore::create(tmp.path());
  CHECK(store->last_seq() == 0);
  CHECK(store->head() == Digest{});
  CHECK_THROWS_AS(store->append_event(1, "too early"), StorageError);

  const auto links = write_events(*store, 3);
  CHECK_THROWS_AS(store->begin_chain(kHeader), StorageError);
  CHECK_THROWS_AS(store->append_event(3, "duplicate"), StorageError);
  CHECK_THROWS_AS(store->append_event(5, "gap"), StorageError);
  CHECK_THROWS_AS(store->append_event(0, "zero"), StorageError);
  // A refused append leaves the log as it was.
  CHECK(store->last_seq() == 3);
  CHECK(store->head() == links[3]);
  CHECK(store->append_event(4, test_event(4)) == independent_link(links[3], 4, test_event(4)));
}

TEST_CASE("reopening sees exactly the committed events and not the uncommitted ones", "[storage]") {
  TempDir tmp;
  std::vector<Digest> links;
  {
    auto store = RunStore::create(tmp.path());
    links = write_events(*store, 100);
    store->commit();
    for (uint64_t seq = 101; seq <= 105; ++seq) store->append_event(seq, test_event(seq));
    CHECK(store->event(105) == test_event(105));  // a writer reads its own uncommitted writes
    CHECK(store->last_seq() == 105);
  }
  {
    auto reader = RunStore::open(tmp.path(), RunStore::Mode::ReadOnly);
    CHECK(reader->last_seq() == 100);
    CHECK(reader->head() == links[100]);
    CHECK(reader->chain_link(0) == sha256_oneshot(kHeader));
    for (uint64_t seq = 1; seq <= 100; ++seq) REQUIRE(reader->event(seq) == test_event(seq));
    CHECK_FALSE(reader->event(101).has_value());
    CHECK_FALSE(reader->chain_link(101).has_value());
    CHECK_THROWS_AS(reader->append_event(101, test_event(101)), StorageError);
    CHECK_THROWS_AS(reader->put_meta("k", "v"), StorageError);
  }
  {
    // Resuming continues the chain from the committed head.
    auto writer = RunStore::open(tmp.path(), RunStore::Mode::ReadWrite);
    CHECK(writer->last_seq() == 100);
    CHECK(writer->head() == links[100]);
    CHECK_THROWS_AS(writer->begin_chain(kHeader), StorageError);
    CHECK(writer->append_event(101, test_event(101)) == independent_link(links[100], 101, test_event(101)));
    writer->commit();
  }
  auto reader = RunStore::open(tmp.path(), RunStore::Mode::ReadOnly);
  CHECK(reader->last_seq() == 101);
}

TEST_CASE("a reader in another process sees committed writes only", "[storage]") {
  TempDir tmp;
  // What the reader process saw at one moment.
  struct Observation {
    uint64_t last_seq = 0;
    Digest head{};
    bool has_event_11 = false;
    bool event_10_intact = false;
    bool ok = false;
  };
  int to_reader[2], from_reader[2];
  REQUIRE(pipe(to_reader) == 0);
  REQUIRE(pipe(from_reader) == 0);

  // Fork before the writer opens LMDB: a child must not use an environment its parent opened.
  const pid_t reader_pid = fork();
  REQUIRE(reader_pid >= 0);
  if (reader_pid == 0) {
    close(to_reader[1]);
    close(from_reader[0]);
    int exit_code = 0;
    try {
      std::unique_ptr<RunStore> reader;
      char go;
      while (read(to_reader[0], &go, 1) == 1) {
        if (!reader) reader = RunStore::open(tmp.path(), RunStore::Mode::ReadOnly);
        Observation seen;
        seen.last_seq = reader->last_seq();
        seen.head = reader->head();
        seen.has_event_11 = reader->event(11).has_value();
        seen.event_10_intact = reader->event(10) == test_event(10);
        seen.ok = true;
        if (write(from_reader[1], &seen, sizeof seen) != sizeof seen) exit_code = 2;
      }
    } catch (...) {
      exit_code = 1;
    }
    _exit(exit_code);
  }
  close(to_reader[0]);
  close(from_reader[1]);
  auto observe = [&] {
    Observation seen;
    REQUIRE(write(to_reader[1], "g", 1) == 1);
    REQUIRE(read(from_reader[0], &seen, sizeof seen) == sizeof seen);
    REQUIRE(seen.ok);
    return seen;
  };

  auto writer = RunStore::create(tmp.path());
  const auto links = write_events(*writer, 10);
  writer->commit();
  for (uint64_t seq = 11; seq <= 15; ++seq) writer->append_event(seq, test_event(seq));

  const Observation before = observe();  // the writer holds an open write transaction
  CHECK(before.last_seq == 10);
  CHECK(before.head == links[10]);
  CHECK_FALSE(before.has_event_11);
  CHECK(before.event_10_intact);

  writer->commit();
  const Observation after = observe();
  CHECK(after.last_seq == 15);
  CHECK(after.head == writer->head());
  CHECK(after.has_event_11);

  close(to_reader[1]);
  int status = 0;
  REQUIRE(waitpid(reader_pid, &status, 0) == reader_pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  close(from_reader[0]);
}

TEST_CASE("meta and archs and results and insights round-trip", "[storage]") {
  TempDir tmp;
  const Bytes binary = std::string("\0\xff\x01 arch", 8);
  {
    auto store = RunStore::create(tmp.path());
    store->put_meta("header", kHeader);
    store->put_meta("summary", "first");
    store->put_meta("summary", "second");  // a later put replaces
    store->put_arch(42, binary);
    store->put_result(42, 0, "explore");
    store->put_result(42, 1, "verify");
    store->put_insight(3, "insight three");
    CHECK(store->meta("summary") == "second");  // visible before commit to the writer
    CHECK(store->arch(42) == binary);
    store->commit();
  }
  auto store = RunStore::open(tmp.path(), RunStore::Mode::ReadOnly);
  CHECK(store->meta("header") == kHeader);
  CHECK(store->meta("summary") == "second");
  CHECK_FALSE(store->meta("absent").has_value());
  CHECK(store->arch(42) == binary);
  CHECK_FALSE(store->arch(43).has_value());
  CHECK(store->result(42, 0) == "explore");
  CHECK(store->result(42, 1) == "verify");
  CHECK_FALSE(store->result(42, 2).has_value());
  CHECK_FALSE(store->result(41, 0).has_value());
  std::vector<std::pair<uint64_t, Bytes>> insights;
  store->for_each_insight([&](uint64_t id, std::string_view value) { insights.emplace_back(id, Bytes(value)); });
  CHECK(insights == std::vector<std::pair<uint64_t, Bytes>>{{3, "insight three"}});
}

TEST_CASE("for_each visits in key order before and after commit", "[storage]") {
  TempDir tmp;
  // Inserted out of order; byte order of a little-endian or decimal key would differ from these.
  const std::vector<uint64_t> ids = {300, 1, 1ULL << 40, 256, 7, 2};
  std::vector<uint64_t> sorted_ids = ids;
  std::sort(sorted_ids.begin(), sorted_ids.end());
  const std::vector<std::pair<uint64_t, uint8_t>> result_keys = {{256, 1}, {1, 1}, {256, 0}, {2, 0}, {1, 0}};
  auto sorted_result_keys = result_keys;
  std::sort(sorted_result_keys.begin(), sorted_result_keys.end());

  auto check_order = [&](const RunStore& store) {
    std::vector<uint64_t> archs, insights;
    store.for_each_arch([&](uint64_t id, std::string_view value) {
      CHECK(value == "arch " + std::to_string(id));
      archs.push_back(id);
    });
    store.for_each_insight([&](uint64_t id, std::string_view) { insights.push_back(id); });
    std::vector<std::pair<uint64_t, uint8_t>> results;
    store.for_each_result([&](uint64_t id, uint8_t fidelity, std::string_view value) {
      CHECK(value == std::to_string(id) + "/" + std::to_string(fidelity));
      results.emplace_back(id, fidelity);
    });
    CHECK(archs == sorted_ids);
    CHECK(insights == sorted_ids);
    CHECK(results == sorted_result_keys);
  };

  {
    auto store = RunStore::create(tmp.path());
    for (uint64_t id : ids) {
      store->put_arch(id, "arch " + std::to_string(id));
      store->put_insight(id, "insight");
    }
    for (auto [id, fidelity] : result_keys) store->put_result(id, fidelity, std::to_string(id) + "/" + std::to_string(fidelity));
    check_order(*store);
    store->commit();
  }
  check_order(*RunStore::open(tmp.path(), RunStore::Mode::ReadOnly));
}

TEST_CASE("create refuses an existing run and open refuses a directory without one", "[storage]") {
  TempDir tmp;
  const fs::path nested = tmp.path() / "runs" / "first";
  {
    auto store = RunStore::create(nested);  // creates missing parents
    write_events(*store, 1);
    store->commit();
  }
  CHECK(fs::exists(nested / "data.mdb"));
  try {
    RunStore::create(nested);
    FAIL("create over an existing run did not throw");
  } catch (const StorageError& error) {
    CHECK_THAT(error.what(), Catch::Contains(nested.string()) && Catch::Contains("--out"));
  }
  try {
    RunStore::open(tmp.path(), RunStore::Mode::ReadOnly);
    FAIL("open of a directory without a run did not throw");
  } catch (const StorageError& error) {
    CHECK_THAT(error.what(), Catch::Contains("not a run directory") && Catch::Contains(tmp.path().string()));
  }
  CHECK_THROWS_AS(RunStore::open(tmp.path() / "missing", RunStore::Mode::ReadWrite), StorageError);
}

TEST_CASE("mdb_stat and mdb_dump read the run store", "[storage]") {
  TempDir tmp;
  {
    auto store = RunStore::create(tmp.path());
    write_events(*store, 20);
    store->put_meta("header", kHeader);
    store->commit();
  }
  const std::string dir = tmp.path().string();
  const auto [stat_status, stat_output] = run_command("mdb_stat -a '" + dir + "' 2>&1");
  CHECK(stat_status == 0);
  for (const char* table : {"events", "chain", "archs", "results", "insights", "meta"}) CHECK_THAT(stat_output, Catch::Contains(table));

  const auto [dump_status, dump_output] = run_command("mdb_dump -s events '" + dir + "' 2>&1");
  CHECK(dump_status == 0);
  // bytevalue format: each key and each value on its own line, in hex after one space.
  const std::string record = std::string(" ").append(hex_of(be64(17))).append("\n ").append(hex_of(test_event(17))).append("\n");
  CHECK_THAT(dump_output, Catch::Contains(record));
}

TEST_CASE("a changed event no longer matches the stored chain at its seq", "[storage]") {
  TempDir original, copy;
  constexpr uint64_t kEvents = 20, kChanged = 7;
  {
    auto store = RunStore::create(original.path());
    write_events(*store, kEvents);
    store->commit();
  }
  fs::create_directories(copy.path());
  fs::copy_file(original.path() / "data.mdb", copy.path() / "data.mdb");

  // Flip one byte of event 7 behind the store's back, through LMDB itself.
  {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    REQUIRE(mdb_env_set_maxdbs(env, 8) == 0);
    REQUIRE(mdb_env_open(env, copy.path().c_str(), 0, 0644) == 0);
    MDB_txn* txn = nullptr;
    MDB_dbi events;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, "events", 0, &events) == 0);
    Bytes changed = test_event(kChanged);
    changed[3] ^= 0x01;
    std::string key = be64(kChanged);
    MDB_val k{key.size(), key.data()}, v{changed.size(), changed.data()};
    REQUIRE(mdb_put(txn, events, &k, &v, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }

  auto store = RunStore::open(copy.path(), RunStore::Mode::ReadOnly);
  REQUIRE(store->last_seq() == kEvents);
  uint64_t first_mismatch = 0;
  Digest recomputed = *store->chain_link(0);
  for (uint64_t seq = 1; seq <= kEvents && first_mismatch == 0; ++seq) {
    recomputed = asiarch::storage::chain_next(recomputed, seq, *store->event(seq));
    if (recomputed != *store->chain_link(seq)) first_mismatch = seq;
  }
  CHECK(first_mismatch == kChanged);
  CHECK(store->event(kChanged) != test_event(kChanged));
}

TEST_CASE("readers killed inside a read transaction do not use up the reader slots", "[storage]") {
  TempDir tmp;
  {
    auto store = RunStore::create(tmp.path());
    write_events(*store, 10);
    store->commit();
  }
  // A process that keeps the store open, as a running campaign does: LMDB clears the reader
  // table only when the first process opens the store after all others closed it.
  int hold[2];
  REQUIRE(pipe(hold) == 0);
  const pid_t holder = fork();
  REQUIRE(holder >= 0);
  if (holder == 0) {
    close(hold[1]);
    auto store = RunStore::open(tmp.path(), RunStore::Mode::ReadOnly);
    char byte;
    while (read(hold[0], &byte, 1) > 0) {
    }
    _exit(0);
  }
  close(hold[0]);
  // LMDB has 126 reader slots; each reader here dies holding one (as a `top` stopped mid-read).
  for (int reader = 0; reader < 130; ++reader) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        RunStore::open(tmp.path(), RunStore::Mode::ReadOnly)->for_each_event([](uint64_t, std::string_view) { ::raise(SIGKILL); });
      } catch (...) {
      }
      _exit(3);  // the read failed before it began
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("reader " << reader);
    REQUIRE(WIFSIGNALED(status));
  }
  {
    auto reader = RunStore::open(tmp.path(), RunStore::Mode::ReadOnly);
    CHECK(reader->last_seq() == 10);
  }
  close(hold[1]);
  REQUIRE(waitpid(holder, nullptr, 0) == holder);
}

TEST_CASE("a store that holds nothing (a run killed in its first commits) is started afresh by create", "[storage]") {
  TempDir tmp;
  RunStore::create(tmp.path());  // the tables' catalogue only: nothing of a run
  {
    auto store = RunStore::create(tmp.path());
    write_events(*store, 3);
    store->commit();
  }
  CHECK(RunStore::open(tmp.path(), RunStore::Mode::ReadOnly)->last_seq() == 3);
}
