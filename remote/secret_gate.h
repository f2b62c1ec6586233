#pragma once
// The secret gate in front of CAF's middleman. The middleman reads a connecting peer's handshake,
// and allocates the payload its header announces, before any message of ours could check the
// worker secret: one 32-byte header could make a run allocate 4 GiB. So the run publishes its
// dispatcher on a loopback port only, and the gate listens on the public address instead:
//
//   worker's middleman -> GateOpener (worker, loopback) -> network -> Gatekeeper (run) -> run's middleman (loopback)
//
// A connection through the gate begins with a 48-byte preamble: "asiarch-gate-v1\n" and the
// SHA-256 of the secret. The gatekeeper reads exactly those bytes (within kPreambleSeconds),
// answers one byte, 'A' (accepted) or 'R' (refused), and only after 'A' passes bytes through.
// Before the secret is proven a peer makes the run hold at most kPreambleBytes of its data, and
// at most kMaxPending such peers are held at once; later ones are closed at once. Accepted
// connections are spliced through buffers of kSpliceBufferBytes per direction.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace asiarch::gate {

constexpr size_t kPreambleBytes = 48;
constexpr int kPreambleSeconds = 10;
constexpr size_t kMaxPending = 64;
constexpr size_t kSpliceBufferBytes = 64 << 10;

// The preamble that proves `secret`.
std::string preamble(const std::string& secret);
// Compares a presented secret (or preamble) with the expected one in time that depends on the
// lengths only, so a peer cannot find it byte by byte.
bool same_secret(std::string_view given, std::string_view expected);

class SpliceLoop;

// Run side: listens on bind:port and connects each peer that proves `secret` to
// 127.0.0.1:inner_port. Throws std::invalid_argument when it cannot listen there.
class Gatekeeper {
 public:
  Gatekeeper(const std::string& bind, uint16_t port, uint16_t inner_port, const std::string& secret);
  ~Gatekeeper();
  Gatekeeper(const Gatekeeper&) = delete;
  Gatekeeper& operator=(const Gatekeeper&) = delete;

 private:
  std::unique_ptr<SpliceLoop> loop_;
};

// Worker side: listens on a free loopback port for the local middleman; each connection is
// carried to host:port with the preamble of `secret` in front.
class GateOpener {
 public:
  GateOpener(const std::string& host, uint16_t port, const std::string& secret);
  ~GateOpener();
  GateOpener(const GateOpener&) = delete;
  GateOpener& operator=(const GateOpener&) = delete;

  uint16_t local_port() const;
  // True once the run answered a connection with 'R': the secret is wrong.
  bool refused() const;

 private:
  std::unique_ptr<SpliceLoop> loop_;
};

}  // namespace asiarch::gate
