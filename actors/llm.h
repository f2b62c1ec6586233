#pragma once
// The language model as a researcher and a judge ([researcher] backend = "llm", [llm] judge).
//
// An actor that wants the model sends an llmRequest to the pseudo-actor `llm` (actor_name::kLlm).
// The coordinator holds the request and does nothing else until it has the reply: from the
// recorded log when there is one (replay, resume), else from an LlmClient (llm/llm_client.h,
// an OpenAI-compatible HTTP server), else the campaign stops like a live one without a trainer.
// The reply is logged as an input event from `llm` to the requester, at the request's virtual
// time, and committed before it is delivered. As nothing else moves while a request is out, the
// log's order does not depend on how long the model takes.
//
// A reply names the request it answers by requestId and requestHash: the hex SHA-256 of the
// request's canonical LlmRequest bytes. Replay recomputes each request and refuses a recorded
// reply whose hash differs, so a replayed campaign never pairs a reply with another question.
//
// This file holds what both actors and tools need: the hash, the prompts' shared parts, the
// reading of replies, and the per-run statistics of calls that `asiarch inspect` shows.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "messages/codec.h"
#include "scenario/scenario.h"

namespace asiarch {

// Answers one llmRequest: takes the canonical bytes of the request's Event and returns the
// canonical bytes of a Payload holding its llmReply (ok or not: failures are replies too). Runs
// on a worker thread.
using LlmClient = std::function<std::string(const std::string& request_event_bytes)>;

// Hex SHA-256 of the request's canonical LlmRequest bytes.
std::string llm_request_hash(msg::LlmRequest::Reader request);

struct ChatTurn {
  std::string role;  // system, user, assistant
  std::string content;
};

// Fills an llmRequest from the scenario's [llm] settings.
void fill_llm_request(msg::LlmRequest::Builder request, uint64_t request_id, const std::string& purpose, uint64_t arch_id,
                      const LlmSpec& spec, const std::vector<ChatTurn>& messages, uint32_t attempt);

// The system prompt of the researcher: the architecture language's rules, types, operator table
// (from the code's operator table, so it never drifts from what the checker accepts) and one
// example program.
std::string language_reference();

// What a proposal reply holds: a motivation line and a program in a fenced block.
struct ProposalReply {
  std::string motivation;  // empty when the reply has none
  std::string program;     // the fenced block's text; empty when there is none
};
// Reads "MOTIVATION: ..." and the first ``` fenced block (```asiarch or plain ```).
ProposalReply parse_proposal_reply(const std::string& content);

// The judge's three scores, each 1 to 10 (higher is better; complexity 10 = as lean as it gets).
struct JudgeScores {
  double performance = 0, novelty = 0, complexity = 0;
};
// Reads the first JSON object of the reply; nullopt with `problem` set when it has no object,
// a missing key or a score outside 1..10.
std::optional<JudgeScores> parse_judge_reply(const std::string& content, std::string& problem);
// The qualitative score in [0, 1]: (mean of the three - 1) / 9, so 1 maps to 0 and 10 to 1.
double judge_score(const JudgeScores& scores);

// The calls of one run, from its event log: what `asiarch inspect` shows.
struct LlmCallStats {
  std::map<std::string, uint64_t> requests_by_purpose;  // propose, judge
  uint64_t replies = 0, failures = 0;
  std::map<std::string, uint64_t> failures_by_kind;     // timeout, connection, http, malformed, too_large
  uint64_t revisions = 0;         // requests with attempt > 0
  uint64_t llm_proposals = 0;     // proposals made from the model's program (operator "llm")
  uint64_t http_tries = 0;        // HTTP attempts, retries included
  uint64_t prompt_tokens = 0, completion_tokens = 0;
  double total_latency_ms = 0, max_latency_ms = 0;
  uint64_t requests() const;
  double mean_latency_ms() const { return replies ? total_latency_ms / static_cast<double>(replies) : 0.0; }
};
// Reads the run's events (works while the campaign runs). Throws storage::StorageError when DIR
// is not a run.
LlmCallStats read_llm_calls(const std::filesystem::path& dir);

}  // namespace asiarch
