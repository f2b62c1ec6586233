#pragma once
// What the two sides of remote workers (remote/remote_workers.h) share, internal to actors/: the
// messages' atoms, the heartbeat's timing, the refusal for a wrong secret, and reading a secret
// file. The run's side is remote_dispatcher.cpp, the worker's remote_worker.cpp, the secret file
// worker_secret.cpp.
#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace asiarch::remote {

using hello_atom = caf::atom_constant<caf::atom("wk_hello")>;
using welcome_atom = caf::atom_constant<caf::atom("wk_welcome")>;
using refused_atom = caf::atom_constant<caf::atom("wk_refused")>;
using job_atom = caf::atom_constant<caf::atom("wk_job")>;
using cancel_atom = caf::atom_constant<caf::atom("wk_cancel")>;
using result_atom = caf::atom_constant<caf::atom("wk_result")>;
// A worker's session says it is alive every kHeartbeat; the run drops a worker silent for
// kSilence (a frozen process keeps its connection open) and tells it so if it wakes up.
using heartbeat_atom = caf::atom_constant<caf::atom("wk_beat")>;
using dropped_atom = caf::atom_constant<caf::atom("wk_dropped")>;
using tick_atom = caf::atom_constant<caf::atom("wk_tick")>;
constexpr auto kHeartbeat = std::chrono::seconds(2);
constexpr auto kSilence = std::chrono::seconds(20);
// Why a worker is refused, by the dispatcher (hello) or by the gate (preamble).
constexpr std::string_view kWrongSecret =
    "wrong secret: present the run's worker secret (`--secret-file DIR/worker.secret`, or the file the run was given with --secret-file)";
// Within one process: the dispatcher has new requests in its Exchange; a worker's training
// thread reports to its session.
using wake_atom = caf::atom_constant<caf::atom("wake")>;
using trained_atom = caf::atom_constant<caf::atom("trained")>;

constexpr uint32_t kMaxSlotsPerWorker = 256;

// The secret in `path`, less trailing white space; warns when other users can read the file.
// Throws std::invalid_argument when it cannot be read or is empty.
std::string read_secret_file(const std::filesystem::path& path);

}  // namespace asiarch::remote
