#pragma once
// Remote gpu-slots: a live campaign's jobs trained by `asiarch worker` processes that connect over
// CAF's middleman (TCP). Workers change who trains a job, never what the campaign decides: the
// coordinator's logical gpu-slots dispatch as before, and each slot's LiveTrainer hands its job to
// a free remote slot and waits for the result, which is logged as the same input event. Replay
// and resume read results from the log, so they need no workers.
//
// The protocol: plain CAF messages of atoms, strings and integers between the worker's session
// actor and the run's dispatcher actor, the one actor the run publishes.
//   worker -> dispatcher  hello(secret, slots)
//   dispatcher -> worker  welcome(scenario text, scenario file, seed)  or  refused(why)
//   dispatcher -> worker  job(ticket, canonical dispatch event)  and  cancel(ticket)
//   worker -> dispatcher  result(ticket, ok, canonical trainResult payload, or why training failed)
// A peer that has not presented the secret is given nothing and its other messages are ignored.
// A worker that goes down (connection lost, process killed) has its jobs queued again for
// another worker; a result for a job that is not (or no longer) its sender's is dropped.
//
// The middleman itself listens on a loopback port only. Workers reach it through the secret gate
// (remote/secret_gate.h): a connection must prove the secret in its first 48 bytes before any byte
// reaches CAF, whose handshake would otherwise allocate whatever a stranger's header announces.
// The hello message carries the secret too, for peers on the run's own host that bypass the gate.
//
// The traffic is not encrypted (CAF's OpenSSL module is not used): the run listens on loopback
// unless told otherwise, and the secret keeps out peers that reach the port.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "actors/gpu_slot.h"
#include "scenario/scenario.h"

namespace asiarch {

// Where a live campaign listens for remote gpu-slot workers (`asiarch worker`).
struct ListenOptions {
  uint16_t port = 0;
  std::string bind = "127.0.0.1";
  std::string secret_file;  // empty: the run's DIR/worker.secret, made when missing
};

// The secret a worker must present, and the file that holds it: options.secret_file, or
// DIR/worker.secret, which is made (32 bytes from /dev/urandom, hex, mode 0600) when missing and
// kept when present so that workers outlive a resume. Throws std::invalid_argument when the file
// given is unreadable or empty.
struct WorkerSecret {
  std::string secret;
  std::filesystem::path file;
};
WorkerSecret worker_secret(const ListenOptions& options, const std::filesystem::path& dir);

// Publishes the dispatcher on options.bind:options.port and returns the trainer that runs each
// job on a remote worker slot, waiting (with a progress line) while none is connected. The
// listener lives as long as the trainer and its copies. Throws std::invalid_argument when the
// port cannot be opened.
LiveTrainer remote_trainer(const ListenOptions& options, const WorkerSecret& secret, const Scenario& scenario, uint64_t seed);

// A short description of a dispatch for people: "job 7 (arch 3, explore)".
std::string dispatch_label(const std::string& dispatch_event_bytes);

struct WorkerOptions {
  std::string host;
  uint16_t port = 0;
  uint32_t slots = 1;       // jobs trained at once
  std::string secret_file;  // read at each connection attempt
  std::string device;       // where jobs train ("cpu", "cuda", "cuda:N"); empty: the campaign's [live] device
};

// `asiarch worker`: connects to a run (retrying with backoff until it is up), presents the
// secret, and trains the jobs it is given until `stop` turns true; reconnects when the run goes
// away. Returns 0 when stopped, 2 when refused or when the secret file cannot be read.
int serve_as_worker(const WorkerOptions& options, const std::atomic<bool>& stop);

}  // namespace asiarch
