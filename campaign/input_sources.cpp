#include "campaign/input_sources.h"

#include <kj/exception.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "actors/actor_state.h"
#include "messages/codec.h"

namespace asiarch {

std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (const kj::Exception& e) {
    return std::string("a message could not be decoded: ") + e.getDescription().cStr();
  } catch (...) {
    return "an unknown exception";
  }
}

namespace {

// Runs `work` on a source's worker thread and posts its answer, or why it failed.
void work_and_post(const PostInput& post, uint32_t key, const std::string& failure_prefix, const std::function<std::string()>& work) {
  bool ok = true;
  std::string answer;
  try {
    answer = work();
  } catch (...) {
    ok = false;
    answer = failure_prefix + describe_current_exception();
  }
  post(key, ok, std::move(answer));
}

}  // namespace

std::optional<Input> RecordedInputs::take(const InputNeed& need) {
  const auto recorded = sink_.recorded_event(need.next_seq);
  if (!recorded) return std::nullopt;
  msg::CanonicalView<msg::Event> view(*recorded);
  auto event = view.root();
  if (need.llm) {
    if (!event.getInput() || event.getPayload().which() != msg::Payload::LLM_REPLY) {
      throw std::runtime_error("the recorded log diverges at seq " + std::to_string(need.next_seq) + ": it holds " +
                               msg::kind_name(event.getPayload().which()) + " where the reply to the llmRequest just recomputed belongs");
    }
  } else if (!event.getInput()) {
    return std::nullopt;
  }
  return Input{event.getVtimeNs(), event.getFrom().cStr(), msg::canonical_bytes(event.getPayload())};
}

TrainingThreads::~TrainingThreads() {
  cancelled_ = true;
  if (!workers_.empty()) spdlog::info("waiting for the training jobs still running to end");
  for (auto& worker : workers_) worker.join();
}

std::optional<Input> TrainingThreads::take(const InputNeed& need) {
  if (need.llm || arrivals_.empty()) return std::nullopt;
  auto [slot, payload_bytes] = std::move(arrivals_.front());
  arrivals_.pop_front();
  const auto job = need.jobs->find(slot);
  if (job == need.jobs->end()) throw std::logic_error("coordinator: a result arrived from idle " + actor_name::gpu_slot(slot));
  msg::CanonicalView<msg::Payload> payload(payload_bytes);
  // One multiplication, not hours_to_ns: logged live campaigns replay with the rounding they had.
  const double ns = payload.root().getTrainResult().getGpuHours() * 3.6e12;
  const uint64_t vtime = std::max(need.now_ns, job->second.dispatch_vtime_ns + static_cast<uint64_t>(std::llround(ns)));
  return Input{vtime, actor_name::gpu_slot(slot), std::move(payload_bytes)};
}

bool TrainingThreads::start(const InputNeed& need, const PostInput& post) {
  if (!trainer_ || need.llm) return false;
  for (auto& [slot, job] : *need.jobs) {
    if (job.started) continue;
    job.started = true;
    workers_.emplace_back([this, post, slot = slot, bytes = job.dispatch_bytes] {
      work_and_post(post, slot, actor_name::gpu_slot(slot) + " failed: ", [&] { return trainer_(bytes, cancelled_); });
    });
  }
  return true;
}

void TrainingThreads::arrived(uint32_t slot, std::string answer) { arrivals_.emplace_back(slot, std::move(answer)); }

ModelReplies::~ModelReplies() {
  if (worker_.joinable()) worker_.join();
}

std::optional<Input> ModelReplies::take(const InputNeed& need) {
  if (!need.llm || !reply_) return std::nullopt;
  worker_.join();  // it has posted the reply: its last act
  Input input{need.llm->vtime_ns, actor_name::kLlm, std::move(*reply_)};
  reply_.reset();
  return input;
}

bool ModelReplies::start(const InputNeed& need, const PostInput& post) {
  if (!client_ || !need.llm) return false;
  if (need.llm->started) return true;
  need.llm->started = true;
  worker_ = std::thread([this, post, bytes = need.llm->request_bytes] {
    work_and_post(post, 0, "the LLM client failed: ", [&] { return client_(bytes); });
  });
  return true;
}

}  // namespace asiarch
