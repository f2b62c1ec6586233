#include "actors/llm.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "actors/actor_state.h"
#include "common/hex.h"
#include "lang/program.h"
#include "storage/run_store.h"

namespace asiarch {

std::string llm_request_hash(msg::LlmRequest::Reader request) {
  return sha256_hex(msg::canonical_bytes(request));
}

void fill_llm_request(msg::LlmRequest::Builder request, uint64_t request_id, const std::string& purpose, uint64_t arch_id,
                      const LlmSpec& spec, const std::vector<ChatTurn>& messages, uint32_t attempt) {
  request.setRequestId(request_id);
  request.setPurpose(purpose);
  request.setArchId(arch_id);
  request.setModel(spec.model);
  request.setTemperature(spec.temperature);
  request.setMaxTokens(spec.max_tokens);
  auto list = request.initMessages(static_cast<unsigned>(messages.size()));
  for (unsigned i = 0; i < messages.size(); ++i) {
    list[i].setRole(messages[i].role);
    list[i].setContent(messages[i].content);
  }
  request.setAttempt(attempt);
}

std::string language_reference() {
  std::string text =
      "You design token mixers for small language models in the asiarch architecture language: typed SSA programs that map "
      "the block input x : seq[D] (a tensor [B, T, D]) to the mixer output seq[D]. Every mixer must be causal (no output "
      "depends on later tokens) and cost less than quadratic time in the sequence length.\n\n"
      "Text form:\n"
      "- `program NAME` opens the program; NAME is [a-z_][a-z0-9_]*. The input is always x.\n"
      "- Each line of the body, indented by two spaces, defines one new value: NAME = OP(ARG, ARG, ..., KEY=VALUE, ...). "
      "Arguments are earlier values or x; attributes come after all arguments. A name is defined once; a copy (o = v) is "
      "not a statement.\n"
      "- add, sub, mul, div, max and min also take a number as an argument (mul(a, 0.5), max(p, 0.05)), a constant of "
      "the other argument's type.\n"
      "- The body ends with `return NAME`, whose type must be seq[D].\n"
      "- Attribute values: dimensions (4, D, D/2, D*2, D*2+240) or reals written with a dot (1.0, 0.5). Every attribute an "
      "operator lists is required unless its usage shows a form without it, and no other is allowed.\n"
      "- A log decay g of decay_attn and gated_delta_rule must be <= 0 by construction (logsigmoid, neg of a softplus or "
      "exp, min(g, 0.0), retnet_decay).\n"
      "- Comment lines start with # on their own line; a comment after code on the same line is an error.\n\n"
      "Types: seq[n] = [B, T, n] sequence features; heads[h, d] = [B, h, T, d] per-head vectors; scalars[h] = [B, h, T] "
      "per-head scalars.\n\n"
      "Operators (usage: signature and meaning):\n";
  for (const auto& op : lang::operators()) text += "- " + op.summary + (op.causal ? "" : " [not causal: always rejected]") + "\n";
  const lang::Baseline* example = lang::find_baseline("deltanet");
  text += "\nExample (DeltaNet):\n```asiarch\n" + (example ? example->text : std::string()) + "```\n";
  return text;
}

namespace {

std::string trim(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

ProposalReply parse_proposal_reply(const std::string& content) {
  ProposalReply reply;
  const size_t fence = content.find("```");
  if (fence != std::string::npos) {
    const size_t body = content.find('\n', fence);  // the fence line may name the language
    if (body != std::string::npos) {
      const size_t close = content.find("```", body + 1);
      reply.program = content.substr(body + 1, close == std::string::npos ? std::string::npos : close - body - 1);
    }
  }
  const std::string head = content.substr(0, fence);
  const size_t label = lower(head).find("motivation:");
  if (label != std::string::npos) reply.motivation = trim(head.substr(label + 11));
  // One paragraph: newlines would break the lineage's one-line-per-step layout.
  std::replace(reply.motivation.begin(), reply.motivation.end(), '\n', ' ');
  return reply;
}

std::optional<JudgeScores> parse_judge_reply(const std::string& content, std::string& problem) {
  const size_t open = content.find('{'), close = content.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    problem = "the reply holds no JSON object";
    return std::nullopt;
  }
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(content.substr(open, close - open + 1));
  } catch (const nlohmann::json::exception& e) {
    problem = std::string("the reply's JSON does not parse: ") + e.what();
    return std::nullopt;
  }
  JudgeScores scores;
  const std::pair<const char*, double*> keys[] = {{"performance", &scores.performance}, {"novelty", &scores.novelty}, {"complexity", &scores.complexity}};
  for (const auto& [key, value] : keys) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number()) {
      problem = std::string("the reply's JSON has no number \"") + key + "\"";
      return std::nullopt;
    }
    *value = object[key].get<double>();
    if (!(*value >= 1 && *value <= 10)) {
      problem = std::string("\"") + key + "\" is " + object[key].dump() + ", outside 1 to 10";
      return std::nullopt;
    }
  }
  return scores;
}

double judge_score(const JudgeScores& s) { return ((s.performance + s.novelty + s.complexity) / 3.0 - 1.0) / 9.0; }

uint64_t LlmCallStats::requests() const {
  uint64_t total = 0;
  for (const auto& [purpose, count] : requests_by_purpose) total += count;
  return total;
}

LlmCallStats read_llm_calls(const std::filesystem::path& dir) {
  const auto store = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  LlmCallStats stats;
  store->for_each_event([&](uint64_t, std::string_view canonical) {
    msg::CanonicalView<msg::Event> view(canonical);
    auto payload = view.root().getPayload();
    switch (payload.which()) {
      case msg::Payload::LLM_REQUEST: {
        auto request = payload.getLlmRequest();
        ++stats.requests_by_purpose[request.getPurpose().cStr()];
        if (request.getAttempt() > 0) ++stats.revisions;
        break;
      }
      case msg::Payload::LLM_REPLY: {
        auto reply = payload.getLlmReply();
        ++stats.replies;
        if (!reply.getOk()) {
          ++stats.failures;
          ++stats.failures_by_kind[reply.getErrorKind().cStr()];
        }
        stats.http_tries += reply.getTries();
        stats.prompt_tokens += reply.getPromptTokens();
        stats.completion_tokens += reply.getCompletionTokens();
        stats.total_latency_ms += reply.getLatencyMs();
        stats.max_latency_ms = std::max(stats.max_latency_ms, reply.getLatencyMs());
        break;
      }
      case msg::Payload::PROPOSAL:
        if (payload.getProposal().getOperator() == "llm") ++stats.llm_proposals;
        break;
      default:
        break;
    }
  });
  return stats;
}

}  // namespace asiarch
