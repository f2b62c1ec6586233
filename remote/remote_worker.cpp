// The worker's side of remote workers (remote/remote_workers.h): `asiarch worker`, a session that
// connects to a run, presents the secret and trains the jobs it is given on its own threads.
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "actors/gpu_slot.h"
#include "remote/remote_protocol.h"
#include "remote/remote_workers.h"
#include "remote/secret_gate.h"

namespace asiarch {
namespace {

using namespace remote;

// The training threads of a worker: one per job, each with its own cancel flag.
class JobThreads {
 public:
  ~JobThreads() { cancel_and_join_all(); }

  void start(uint64_t ticket, std::function<void(const std::atomic<bool>&)> body) {
    std::lock_guard lock(mutex_);
    reap_finished();
    auto entry = std::make_shared<Entry>();
    entry->thread = std::thread([entry, body = std::move(body)] {
      body(entry->cancelled);
      entry->done = true;
    });
    entries_.emplace(ticket, entry);
  }

  void cancel(uint64_t ticket) {
    std::lock_guard lock(mutex_);
    if (const auto found = entries_.find(ticket); found != entries_.end()) found->second->cancelled = true;
  }

  size_t running() {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& [ticket, entry] : entries_) n += entry->done ? 0 : 1;
    return n;
  }

  void cancel_and_join_all() {
    std::multimap<uint64_t, std::shared_ptr<Entry>> entries;
    {
      std::lock_guard lock(mutex_);
      for (auto& [ticket, entry] : entries_) entry->cancelled = true;
      entries.swap(entries_);
    }
    for (auto& [ticket, entry] : entries) entry->thread.join();
  }

 private:
  struct Entry {
    std::atomic<bool> cancelled{false};
    std::atomic<bool> done{false};
    std::thread thread;
  };
  void reap_finished() {
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (!it->second->done) {
        ++it;
        continue;
      }
      it->second->thread.join();
      it = entries_.erase(it);
    }
  }
  std::mutex mutex_;
  std::multimap<uint64_t, std::shared_ptr<Entry>> entries_;
};

// How a session with a run ended: 1 the run went away (connect again), 2 refused or unusable.
struct SessionEnd {
  std::atomic<int> code{0};  // 0 while the session lasts
};

struct SessionState {
  std::shared_ptr<const LiveJobSettings> settings;  // from the welcome's scenario
  uint64_t seed = 0;
  struct Running {
    std::string label;
    std::chrono::steady_clock::time_point since;
  };
  std::map<uint64_t, Running> running;  // by ticket
};

caf::behavior worker_session(caf::stateful_actor<SessionState>* self, caf::actor run, std::string secret, uint32_t slots,
                             std::string device, JobThreads* jobs, std::shared_ptr<SessionEnd> end, std::string where) {
  auto finish = [self, end](int code) {
    end->code = code;
    self->quit();
  };
  self->monitor(run);
  self->set_down_handler([self, jobs, where, finish](caf::down_msg& down) {
    spdlog::warn("the run at {} went away ({}); cancelling {} job(s) in training and connecting again", where,
                 self->system().render(down.reason), jobs->running());
    finish(1);
  });
  self->send(run, hello_atom::value, secret, slots);
  self->send(self, heartbeat_atom::value);
  return {
      [self, where, slots, device, finish](welcome_atom, const std::string& scenario_text, const std::string& scenario_file, uint64_t seed) {
        try {
          const Scenario scenario = parse_scenario(scenario_text, scenario_file);
          LiveJobSettings settings = LiveJobSettings::of(scenario);
          if (!device.empty()) settings.live.device = device;
          // A worker that cannot train where it was asked to says so once, rather than failing every job.
          if (const std::string problem = training::device_info(settings.live.device).problem; !problem.empty()) {
            spdlog::error("this worker cannot train on {}{}: {}", settings.live.device, device.empty() ? " (the campaign's [live] device)" : "",
                          problem);
            return finish(2);
          }
          self->state.settings = std::make_shared<const LiveJobSettings>(std::move(settings));
          self->state.seed = seed;
          spdlog::info("connected to {}: campaign {} (seed {}); training up to {} job(s) at once on {}", where, scenario.name, seed, slots,
                       self->state.settings->live.device);
        } catch (const ScenarioError& e) {
          spdlog::error("the run's scenario does not load in this build ({}); run the same asiarch version as the run", e.what());
          finish(2);
        }
      },
      [where, finish](refused_atom, const std::string& why) {
        spdlog::error("the run at {} refused this worker: {}", where, why);
        finish(2);
      },
      [where, finish](dropped_atom) {
        spdlog::warn("the run at {} dropped this worker after a silence (was it stopped?); connecting again", where);
        finish(1);
      },
      [self, run](heartbeat_atom) {
        self->send(run, heartbeat_atom::value);
        self->delayed_send(self, kHeartbeat, heartbeat_atom::value);
      },
      [self, jobs, run](job_atom, uint64_t ticket, const std::string& dispatch_bytes) {
        const std::string label = dispatch_label(dispatch_bytes);
        if (!self->state.settings) return;  // not welcomed: the run gives no jobs before its welcome
        spdlog::info("running {}", label);
        self->state.running[ticket] = SessionState::Running{label, std::chrono::steady_clock::now()};
        const auto session = caf::actor_cast<caf::actor>(self);
        jobs->start(ticket, [session, ticket, dispatch_bytes, settings = self->state.settings, seed = self->state.seed](const std::atomic<bool>& cancelled) {
          bool ok = true;
          std::string answer;
          try {
            answer = train_live_job(*settings, seed, dispatch_bytes, cancelled);
          } catch (const std::exception& e) {
            ok = false;
            answer = e.what();
          } catch (...) {
            ok = false;
            answer = "an unknown exception";
          }
          caf::anon_send(session, trained_atom::value, ticket, ok, std::move(answer));
        });
      },
      [jobs](cancel_atom, uint64_t ticket) { jobs->cancel(ticket); },
      [self, run](trained_atom, uint64_t ticket, bool ok, std::string& answer) {
        const auto job = self->state.running.find(ticket);
        if (job != self->state.running.end()) {
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - job->second.since).count();
          spdlog::info("finished {} in {:.3f} s{}", job->second.label, seconds, ok ? "" : ": training failed: " + answer);
          self->state.running.erase(job);
        }
        self->send(run, result_atom::value, ticket, ok, std::move(answer));
      },
  };
}

// Sleeps up to `duration`, waking early when `stop` turns true.
void sleep_unless_stopped(std::chrono::milliseconds duration, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace

int serve_as_worker(const WorkerOptions& options, const std::atomic<bool>& stop) {
  // The training threads outlive the actor system, which waits for the session that uses them.
  JobThreads jobs;
  caf::actor_system_config config;
  config.load<caf::io::middleman>();
  caf::actor_system system{config};
  const std::string where = options.host + ":" + std::to_string(options.port);
  const auto kFirstBackoff = std::chrono::milliseconds(500);
  const auto kMaxBackoff = std::chrono::milliseconds(10000);
  auto backoff = kFirstBackoff;
  while (!stop) {
    std::string secret;
    try {
      secret = read_secret_file(options.secret_file);
    } catch (const std::invalid_argument& e) {
      spdlog::error("{}", e.what());
      return 2;
    }
    // The middleman connects to the local end of the secret gate, which carries it to the run.
    const gate::GateOpener opener(options.host, options.port, secret);
    auto run = system.middleman().remote_actor("127.0.0.1", opener.local_port());
    if (!run && opener.refused()) {
      spdlog::error("the run at {} refused this worker: {}", where, kWrongSecret);
      return 2;
    }
    if (!run) {
      spdlog::info("no run listens at {} yet ({}); trying again in {:.1f} s", where, system.render(run.error()),
                   std::chrono::duration<double>(backoff).count());
      sleep_unless_stopped(backoff, stop);
      backoff = std::min(backoff * 2, kMaxBackoff);
      continue;
    }
    backoff = kFirstBackoff;
    auto end = std::make_shared<SessionEnd>();
    auto session = system.spawn(worker_session, *run, secret, options.slots, options.device, &jobs, end, where);
    while (!stop && end->code == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (end->code == 0) caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
    jobs.cancel_and_join_all();
    if (end->code == 2) return 2;
    if (end->code == 1) sleep_unless_stopped(kFirstBackoff, stop);
  }
  spdlog::info("worker stopped");
  return 0;
}

}  // namespace asiarch
