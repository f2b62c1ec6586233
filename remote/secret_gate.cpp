// The secret gate: see secret_gate.h.
#include "remote/secret_gate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <stdexcept>
#include <thread>
#include <vector>

#include "storage/run_store.h"

namespace asiarch::gate {
namespace {

constexpr std::string_view kMagic = "asiarch-gate-v1\n";
constexpr char kAccepted = 'A';
constexpr char kRefused = 'R';
using Clock = std::chrono::steady_clock;

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string peer_name(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    ::getnameinfo(reinterpret_cast<sockaddr*>(&address), size, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
  }
  return std::string(host) + ":" + port;
}

// A TCP socket bound to host:port and listening; throws std::invalid_argument naming the address.
int listen_on(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string where = host + ":" + std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    throw std::invalid_argument("cannot listen on " + where + ": " + ::gai_strerror(rc));
  }
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) throw std::invalid_argument("cannot listen on " + where + ": " + error);
  set_nonblocking(fd);
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

// A connected, blocking TCP socket, or -1 (with a reason) when none answers within `timeout`.
int connect_to(const std::string& host, uint16_t port, std::chrono::seconds timeout, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    error = ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    set_nonblocking(fd);
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int so_error = ETIMEDOUT;
      socklen_t size = sizeof so_error;
      if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(timeout).count())) == 1) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &size);
      rc = so_error == 0 ? 0 : -1;
      errno = so_error;
    }
    if (rc != 0) {
      error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace

bool same_secret(std::string_view given, std::string_view expected) {
  unsigned difference = given.size() != expected.size() ? 1U : 0U;
  const size_t n = std::max(given.size(), expected.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    const unsigned char b = i < expected.size() ? static_cast<unsigned char>(expected[i]) : 0;
    difference |= static_cast<unsigned>(a ^ b);
  }
  return difference == 0;
}

std::string preamble(const std::string& secret) {
  const storage::Digest hash = storage::sha256(secret);
  return std::string(kMagic) + std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}
static_assert(kMagic.size() + 32 == kPreambleBytes);

// One thread that accepts on a listening socket, lets each connection through the gate (the
// run's side reads the preamble, the worker's side sends it) and splices the accepted ones.
class SpliceLoop {
 public:
  enum class Side { Run, Worker };

  SpliceLoop(Side side, int listen_fd, std::string preamble, std::string target_host, uint16_t target_port)
      : side_(side), listen_fd_(listen_fd), preamble_(std::move(preamble)), target_host_(std::move(target_host)), target_port_(target_port) {
    if (::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error(std::string("cannot make the gate's wake-up pipe: ") + std::strerror(errno));
    }
    thread_ = std::thread([this] { run(); });
  }

  ~SpliceLoop() {
    stopping_ = true;
    const char byte = 0;
    [[maybe_unused]] const ssize_t n = ::write(wake_[1], &byte, 1);
    thread_.join();
    for (const Pending& p : pending_) ::close(p.fd);
    for (const Link& link : links_) {
      ::close(link.a);
      ::close(link.b);
    }
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

  uint16_t local_port() const { return bound_port(listen_fd_); }
  bool refused() const { return refused_; }

 private:
  struct Pending {
    int fd;
    std::string received;
    Clock::time_point deadline;
  };
  // Bytes on their way from one socket of a link to the other.
  struct Direction {
    std::vector<char> buffer = std::vector<char>(kSpliceBufferBytes);
    size_t begin = 0, end = 0;
  };
  struct Link {
    int a, b;
    Direction a_to_b, b_to_a;
    bool closed = false;
  };

  void run() {
    std::vector<pollfd> polled;
    while (!stopping_) {
      polled.clear();
      polled.push_back({wake_[0], POLLIN, 0});
      polled.push_back({listen_fd_, POLLIN, 0});
      for (const Pending& p : pending_) polled.push_back({p.fd, POLLIN, 0});
      for (const Link& link : links_) {
        watch(polled, link.a, link.b, link.a_to_b);
        watch(polled, link.b, link.a, link.b_to_a);
      }
      if (::poll(polled.data(), polled.size(), 1000) < 0 && errno != EINTR) {
        spdlog::error("the worker gate stopped: poll failed: {}", std::strerror(errno));
        return;
      }
      if (stopping_) return;
      if (polled[1].revents & POLLIN) accept_one();
      read_preambles();
      for (Link& link : links_) {
        if (!move_bytes(link.a, link.b, link.a_to_b) || !move_bytes(link.b, link.a, link.b_to_a)) close_link(link);
      }
      links_.remove_if([](const Link& link) { return link.closed; });
    }
  }

  // Reads `from` while the direction's buffer is empty, writes `to` while it holds bytes.
  static void watch(std::vector<pollfd>& polled, int from, int to, const Direction& d) {
    if (d.begin == d.end) polled.push_back({from, POLLIN, 0});
    else polled.push_back({to, POLLOUT, 0});
  }

  // Moves what it can without blocking; false when the link ends (EOF or an error on either side).
  static bool move_bytes(int from, int to, Direction& d) {
    if (d.begin == d.end) {
      const ssize_t n = ::recv(from, d.buffer.data(), d.buffer.size(), MSG_DONTWAIT);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      d.begin = 0;
      d.end = static_cast<size_t>(n);
    }
    const ssize_t n = ::send(to, d.buffer.data() + d.begin, d.end - d.begin, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    d.begin += static_cast<size_t>(n);
    return true;
  }

  static void close_link(Link& link) {
    ::close(link.a);
    ::close(link.b);
    link.closed = true;
  }

  void add_link(int a, int b) {
    set_nonblocking(a);
    set_nonblocking(b);
    links_.push_back(Link{a, b, {}, {}});
  }

  void accept_one() {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (side_ == Side::Worker) return open_for(fd);
    if (pending_.size() >= kMaxPending) {
      ::close(fd);
      return;
    }
    pending_.push_back(Pending{fd, {}, Clock::now() + std::chrono::seconds(kPreambleSeconds)});
  }

  // Run side: a pending peer's preamble, read without blocking, at most kPreambleBytes of it.
  void read_preambles() {
    const auto now = Clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      char bytes[kPreambleBytes];
      const ssize_t n = ::recv(it->fd, bytes, kPreambleBytes - it->received.size(), MSG_DONTWAIT);
      if (n > 0) it->received.append(bytes, static_cast<size_t>(n));
      const bool gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
      if (it->received.size() == kPreambleBytes) {
        admit(it->fd, same_secret(it->received, preamble_));
      } else if (gone || now >= it->deadline) {
        ::close(it->fd);
      } else {
        ++it;
        continue;
      }
      it = pending_.erase(it);
    }
  }

  void admit(int fd, bool proven) {
    const std::string peer = peer_name(fd);
    if (!proven) {
      spdlog::warn("refused a worker connection from {}: it did not present the run's secret", peer);
      [[maybe_unused]] const ssize_t n = ::send(fd, &kRefused, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
      ::close(fd);
      return;
    }
    std::string error;
    const int inner = connect_to(target_host_, target_port_, std::chrono::seconds(kPreambleSeconds), error);
    if (inner < 0) spdlog::error("cannot pass a worker from {} to the run's listener: {}", peer, error);
    if (inner < 0 || ::send(fd, &kAccepted, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
      ::close(fd);
      if (inner >= 0) ::close(inner);
      return;
    }
    add_link(fd, inner);
  }

  // Worker side: carries a local connection to the run, preamble first. The handshake blocks the
  // loop for at most twice kPreambleSeconds; a worker has one connection at a time.
  void open_for(int local) {
    std::string error;
    const int remote = connect_to(target_host_, target_port_, std::chrono::seconds(kPreambleSeconds), error);
    if (remote < 0) {
      spdlog::info("cannot reach the run at {}:{}: {}", target_host_, target_port_, error);
      ::close(local);
      return;
    }
    pollfd p{remote, POLLIN, 0};
    char answer = 0;
    const bool answered = ::send(remote, preamble_.data(), preamble_.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(preamble_.size()) &&
                          ::poll(&p, 1, kPreambleSeconds * 1000) == 1 && ::recv(remote, &answer, 1, 0) == 1;
    if (answered && answer == kAccepted) return add_link(local, remote);
    if (answered && answer == kRefused) refused_ = true;
    ::close(local);
    ::close(remote);
  }

  const Side side_;
  const int listen_fd_;
  const std::string preamble_;
  const std::string target_host_;
  const uint16_t target_port_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> refused_{false};
  std::list<Pending> pending_;
  std::list<Link> links_;
  std::thread thread_;
};

Gatekeeper::Gatekeeper(const std::string& bind, uint16_t port, uint16_t inner_port, const std::string& secret)
    : loop_(std::make_unique<SpliceLoop>(SpliceLoop::Side::Run, listen_on(bind, port), preamble(secret), "127.0.0.1", inner_port)) {}
Gatekeeper::~Gatekeeper() = default;

GateOpener::GateOpener(const std::string& host, uint16_t port, const std::string& secret)
    : loop_(std::make_unique<SpliceLoop>(SpliceLoop::Side::Worker, listen_on("127.0.0.1", 0), preamble(secret), host, port)) {}
GateOpener::~GateOpener() = default;
uint16_t GateOpener::local_port() const { return loop_->local_port(); }
bool GateOpener::refused() const { return loop_->refused(); }

}  // namespace asiarch::gate
