// The run's side of remote workers (remote/remote_workers.h): the published dispatcher that
// hands jobs to connected workers, and the trainer that waits on it.
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "actors/coordinator.h"
#include "messages/codec.h"
#include "remote/remote_protocol.h"
#include "remote/remote_workers.h"
#include "remote/secret_gate.h"

namespace asiarch {
namespace {

using namespace remote;

// What the trainer threads and the dispatcher hand each other. Requests go through this locked
// exchange rather than in messages because the dispatcher is published: a peer can send it any
// message, and the only one it takes from this process is a wake-up, which changes nothing by
// itself. Exit messages are ignored for the same reason; `closing` ends the dispatcher.
struct Exchange {
  struct Answer {
    bool ok;
    std::string text;  // the trainResult payload, or why training failed
  };
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::pair<uint64_t, std::string>> submitted;  // ticket, canonical dispatch event
  std::vector<uint64_t> withdrawn;                         // tickets nobody waits for any more
  bool closing = false;
  std::map<uint64_t, Answer> answers;  // by ticket

  void answer(uint64_t ticket, bool ok, std::string text) {
    {
      std::lock_guard lock(mutex);
      answers[ticket] = Answer{ok, std::move(text)};
    }
    ready.notify_all();
  }
};

struct RemoteJob {
  std::string dispatch_bytes;
  std::string label;
  caf::actor_addr holder;  // the worker training it; none while queued
  std::chrono::steady_clock::time_point sent;  // when the holder was given it
};

struct ConnectedWorker {
  uint64_t number = 0;  // for messages: "worker 2"
  caf::actor handle;
  uint32_t slots = 1;
  std::set<uint64_t> tickets;  // jobs it holds
  std::chrono::steady_clock::time_point heard;  // its last message
};

struct DispatcherState {
  std::map<uint64_t, RemoteJob> jobs;  // every job submitted and not answered or withdrawn
  std::deque<uint64_t> queue;          // tickets waiting for a worker slot, re-queued ones first
  std::map<caf::actor_addr, ConnectedWorker> workers;
  uint64_t workers_seen = 0;
  bool announced_waiting = false;  // the "waiting for a worker" line is printed once per wait
};

struct DispatcherSetup {
  std::string secret;
  std::string scenario_text, scenario_file;
  uint64_t seed = 0;
  std::string connect_hint;  // the worker command line for this run
  std::shared_ptr<Exchange> exchange;
};

void announce_waiting(DispatcherState& state, const DispatcherSetup& setup) {
  if (!state.workers.empty() || state.queue.empty() || state.announced_waiting) return;
  state.announced_waiting = true;
  spdlog::info("{} job(s) wait for a remote worker; start one with `{}`", state.queue.size(), setup.connect_hint);
}

// What is wrong with a worker's answer to a dispatch, or "" when it is the dispatched job's valid
// trainResult: the rule a local slot's answer is held to (slot_answer_problem), since anything
// else would stop the campaign when the coordinator reads it.
std::string remote_answer_problem(const std::string& payload_bytes, const std::string& dispatch_bytes) {
  try {
    msg::CanonicalView<msg::Payload> payload(payload_bytes);
    if (payload.root().which() != msg::Payload::TRAIN_RESULT) return "the answer is a " + msg::kind_name(payload.root().which()) + ", not a trainResult";
    msg::CanonicalView<msg::Event> dispatch(dispatch_bytes);
    const auto job = dispatch.root().getPayload().getDispatch();
    return slot_answer_problem(msg::canonical_bytes(payload.root().getTrainResult()), job.getJob().getRef().getJobId(), job.getSlot());
  } catch (const kj::Exception& e) {
    return std::string("the answer does not decode: ") + e.getDescription().cStr();
  }
}

// Gives queued jobs to the workers with free slots, the least busy first.
void assign(caf::stateful_actor<DispatcherState>* self) {
  auto& state = self->state;
  while (!state.queue.empty()) {
    ConnectedWorker* chosen = nullptr;
    caf::actor_addr chosen_addr;
    for (auto& [addr, worker] : state.workers) {
      if (worker.tickets.size() >= worker.slots) continue;
      if (!chosen || worker.tickets.size() < chosen->tickets.size()) {
        chosen = &worker;
        chosen_addr = addr;
      }
    }
    if (!chosen) return;
    const uint64_t ticket = state.queue.front();
    state.queue.pop_front();
    RemoteJob& job = state.jobs.at(ticket);
    job.holder = chosen_addr;
    job.sent = std::chrono::steady_clock::now();
    chosen->tickets.insert(ticket);
    spdlog::info("{} -> remote worker {}", job.label, chosen->number);
    self->send(chosen->handle, job_atom::value, ticket, job.dispatch_bytes);
  }
}

// Forgets a worker that left or fell silent, and queues again the jobs it held.
void drop_worker(caf::stateful_actor<DispatcherState>* self, const DispatcherSetup& setup,
                 std::map<caf::actor_addr, ConnectedWorker>::iterator found, const std::string& why) {
  auto& state = self->state;
  const ConnectedWorker& worker = found->second;
  std::string held;
  for (auto ticket = worker.tickets.rbegin(); ticket != worker.tickets.rend(); ++ticket) {
    RemoteJob& job = state.jobs.at(*ticket);
    job.holder = caf::actor_addr{};
    state.queue.push_front(*ticket);
    held = job.label + (held.empty() ? "" : ", ") + held;
  }
  spdlog::warn("remote worker {} {}{}", worker.number, why, held.empty() ? "" : "; re-queued what it held: " + held);
  state.workers.erase(found);
  if (state.workers.empty()) state.announced_waiting = false;
  assign(self);
  announce_waiting(state, setup);
}

caf::behavior dispatcher(caf::stateful_actor<DispatcherState>* self, std::shared_ptr<const DispatcherSetup> setup) {
  self->set_default_handler(caf::drop);
  self->set_exit_handler([](caf::exit_msg&) {});
  self->set_down_handler([self, setup](caf::down_msg& down) {
    const auto found = self->state.workers.find(down.source);
    if (found != self->state.workers.end()) drop_worker(self, *setup, found, "left (" + self->system().render(down.reason) + ")");
  });
  self->delayed_send(self, kHeartbeat, tick_atom::value);
  return {
      [self, setup](tick_atom) {
        auto& workers = self->state.workers;
        const auto now = std::chrono::steady_clock::now();
        for (auto it = workers.begin(); it != workers.end();) {
          const auto next = std::next(it);
          if (now - it->second.heard > kSilence) {
            const caf::actor handle = it->second.handle;
            self->demonitor(handle);
            drop_worker(self, *setup, it, "fell silent for " + std::to_string(kSilence.count()) + " s (frozen or cut off)");
            self->send(handle, dropped_atom::value);
          }
          it = next;
        }
        self->delayed_send(self, kHeartbeat, tick_atom::value);
      },
      [self](heartbeat_atom) {
        const auto addr = caf::actor_cast<caf::actor_addr>(self->current_sender());
        const auto worker = self->state.workers.find(addr);
        if (worker != self->state.workers.end()) worker->second.heard = std::chrono::steady_clock::now();
        else if (self->current_sender()) self->send(caf::actor_cast<caf::actor>(self->current_sender()), dropped_atom::value);
      },
      [self, setup](hello_atom, const std::string& secret, uint32_t slots) {
        const caf::strong_actor_ptr sender = self->current_sender();
        if (!sender) return;
        auto& state = self->state;
        const auto addr = caf::actor_cast<caf::actor_addr>(sender);
        const auto handle = caf::actor_cast<caf::actor>(sender);
        if (!gate::same_secret(secret, setup->secret)) {
          spdlog::warn("refused a worker from node {}: it presented a wrong secret", caf::to_string(sender->node()));
          self->send(handle, refused_atom::value, std::string(kWrongSecret));
          return;
        }
        if (state.workers.count(addr)) return;
        ConnectedWorker worker{++state.workers_seen, handle, std::clamp<uint32_t>(slots, 1, kMaxSlotsPerWorker), {},
                               std::chrono::steady_clock::now()};
        spdlog::info("remote worker {} connected from node {} with {} slot(s)", worker.number, caf::to_string(sender->node()), worker.slots);
        self->monitor(handle);
        state.workers.emplace(addr, std::move(worker));
        state.announced_waiting = false;
        self->send(handle, welcome_atom::value, setup->scenario_text, setup->scenario_file, setup->seed);
        assign(self);
      },
      [self, setup](wake_atom) {
        std::deque<std::pair<uint64_t, std::string>> submitted;
        std::vector<uint64_t> withdrawn;
        bool closing = false;
        {
          std::lock_guard lock(setup->exchange->mutex);
          submitted.swap(setup->exchange->submitted);
          withdrawn.swap(setup->exchange->withdrawn);
          closing = setup->exchange->closing;
        }
        if (closing) return self->quit();
        auto& state = self->state;
        for (auto& [ticket, dispatch_bytes] : submitted) {
          const std::string label = dispatch_label(dispatch_bytes);
          state.jobs[ticket] = RemoteJob{std::move(dispatch_bytes), label, caf::actor_addr{}, {}};
          state.queue.push_back(ticket);
        }
        for (const uint64_t ticket : withdrawn) {
          const auto job = state.jobs.find(ticket);
          if (job == state.jobs.end()) continue;
          if (const auto worker = state.workers.find(job->second.holder); worker != state.workers.end()) {
            worker->second.tickets.erase(ticket);
            self->send(worker->second.handle, cancel_atom::value, ticket);
          }
          state.queue.erase(std::remove(state.queue.begin(), state.queue.end(), ticket), state.queue.end());
          state.jobs.erase(job);
        }
        assign(self);
        announce_waiting(state, *setup);
      },
      [self, setup](result_atom, uint64_t ticket, bool ok, std::string& text) {
        auto& state = self->state;
        const auto addr = caf::actor_cast<caf::actor_addr>(self->current_sender());
        const auto worker = state.workers.find(addr);
        const auto job = state.jobs.find(ticket);
        // Only the worker that holds a job answers it: a result from a worker that left, or
        // for a job re-queued or already answered, is not the job's any more.
        if (worker == state.workers.end() || job == state.jobs.end() || job->second.holder != addr) {
          spdlog::info("dropped a result for ticket {}: its sender does not hold that job (any more)", ticket);
          return;
        }
        if (const std::string problem = ok ? remote_answer_problem(text, job->second.dispatch_bytes) : ""; !problem.empty()) {
          spdlog::warn("remote worker {} sent an answer to {} that is no valid result ({}); sending the job again", worker->second.number,
                       job->second.label, problem);
          worker->second.tickets.erase(ticket);
          job->second.holder = caf::actor_addr{};
          state.queue.push_front(ticket);
          return assign(self);
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - job->second.sent).count();
        spdlog::info("{} answered by remote worker {} {:.3f} s after it was sent{}", job->second.label, worker->second.number, seconds,
                     ok ? "" : " (training failed)");
        worker->second.tickets.erase(ticket);
        state.jobs.erase(job);
        setup->exchange->answer(ticket, ok, std::move(text));
        assign(self);
      },
  };
}

// Listens for workers; its train() runs one job on one of them and waits for the answer.
class RemotePool {
 public:
  RemotePool(const ListenOptions& options, std::shared_ptr<DispatcherSetup> setup) : exchange_(setup->exchange) {
    config_.load<caf::io::middleman>();
    config_.set("scheduler.max-threads", 2);
    system_ = std::make_unique<caf::actor_system>(config_);
    const std::string secret = setup->secret;
    dispatcher_ = system_->spawn(dispatcher, std::shared_ptr<const DispatcherSetup>(std::move(setup)));
    // The middleman listens on loopback only; workers reach it through the secret gate.
    const auto inner_port = system_->middleman().publish(dispatcher_, 0, "127.0.0.1", true);
    try {
      if (!inner_port) throw std::invalid_argument(system_->render(inner_port.error()));
      gate_ = std::make_unique<gate::Gatekeeper>(options.bind, options.port, *inner_port, secret);
    } catch (const std::invalid_argument& e) {
      close();
      throw std::invalid_argument("cannot listen for workers on " + options.bind + ":" + std::to_string(options.port) + ": " + e.what() +
                                  "; choose another --listen port or --bind address");
    }
  }

  ~RemotePool() { close(); }

  std::string train(const std::string& dispatch_bytes, const std::atomic<bool>& cancelled) {
    const uint64_t ticket = next_ticket_++;
    std::unique_lock lock(exchange_->mutex);
    exchange_->submitted.emplace_back(ticket, dispatch_bytes);
    caf::anon_send(dispatcher_, wake_atom::value);
    while (!exchange_->answers.count(ticket)) {
      if (cancelled) {
        exchange_->withdrawn.push_back(ticket);
        caf::anon_send(dispatcher_, wake_atom::value);
        throw std::runtime_error(dispatch_label(dispatch_bytes) + " was withdrawn: the campaign no longer waits for it");
      }
      exchange_->ready.wait_for(lock, std::chrono::milliseconds(100));
    }
    Exchange::Answer answer = std::move(exchange_->answers.at(ticket));
    exchange_->answers.erase(ticket);
    if (!answer.ok) throw std::runtime_error("a remote worker failed: " + answer.text);
    return std::move(answer.text);
  }

 private:
  void close() {
    {
      std::lock_guard lock(exchange_->mutex);
      exchange_->closing = true;
    }
    caf::anon_send(dispatcher_, wake_atom::value);
  }

  std::shared_ptr<Exchange> exchange_;
  caf::actor_system_config config_;
  std::unique_ptr<caf::actor_system> system_;
  caf::actor dispatcher_;
  std::unique_ptr<gate::Gatekeeper> gate_;  // closed before the actor system goes
  std::atomic<uint64_t> next_ticket_{1};
};

}  // namespace

std::string dispatch_label(const std::string& dispatch_event_bytes) {
  msg::CanonicalView<msg::Event> event(dispatch_event_bytes);
  auto ref = event.root().getPayload().getDispatch().getJob().getRef();
  return "job " + std::to_string(ref.getJobId()) + " (arch " + std::to_string(ref.getArchId()) + ", " +
         (ref.getFidelity() == msg::Fidelity::VERIFY ? "verify" : "explore") + ")";
}

LiveTrainer remote_trainer(const ListenOptions& options, const WorkerSecret& secret, const Scenario& scenario, uint64_t seed) {
  auto setup = std::make_shared<DispatcherSetup>();
  setup->secret = secret.secret;
  setup->scenario_text = scenario.bytes;
  setup->scenario_file = scenario.file;
  setup->seed = seed;
  setup->exchange = std::make_shared<Exchange>();
  const std::string where = options.bind + ":" + std::to_string(options.port);
  const bool any_address = options.bind == "0.0.0.0" || options.bind == "::";
  setup->connect_hint = "asiarch worker --connect " + (any_address ? "THIS_HOST:" + std::to_string(options.port) : where) + " --secret-file " + secret.file.string();
  const bool loopback = options.bind == "127.0.0.1" || options.bind == "::1" || options.bind == "localhost";
  if (!loopback) {
    spdlog::warn("listening on {}, not loopback: workers' traffic, the secret included, crosses the network unencrypted; "
                 "prefer --bind 127.0.0.1 with an SSH tunnel (ssh -R {}:127.0.0.1:{} WORKER_HOST)",
                 options.bind, options.port, options.port);
  }
  auto pool = std::make_shared<RemotePool>(options, setup);
  spdlog::info("listening for remote workers on {}; start each with `{}`", where, setup->connect_hint);
  return [pool](const std::string& dispatch_bytes, const std::atomic<bool>& cancelled) { return pool->train(dispatch_bytes, cancelled); };
}

}  // namespace asiarch
