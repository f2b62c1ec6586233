#pragma once
// The HTTP side of the LLM researcher and judge: an LlmClient (actors/llm.h) that POSTs each
// request to an OpenAI-compatible chat-completions endpoint ([llm] endpoint: a hosted API, or a
// local llama.cpp, vLLM or Ollama server) with libcurl, and turns whatever happens into an
// llmReply. Nothing here throws for a failed call: the campaign goes on with ok = false.
//
// Body sent: {"model", "messages", "temperature", "max_tokens"}; header "Authorization: Bearer
// KEY" only when the environment variable named by [llm] api_key_env is set (the key is never
// logged or stored). Reply read: choices[0].message.content, usage.prompt_tokens and
// usage.completion_tokens.
//
// Failures (errorKind, and whether another try is made, up to max_retries, pausing backoff_s,
// then twice as long before each next try):
//   timeout     no complete answer within timeout_s                 retried
//   connection  refused, reset, unresolvable host                   retried
//   http        HTTP 429 or 5xx                                      retried
//   http        another status outside 2xx (bad key, bad request)   not retried: it would repeat
//   malformed   a 2xx body that is not JSON or has no message text  not retried: the server answered
//   too_large   a body longer than 256 KiB (cut there)               not retried: the server answered
// Wall-clock time is measured here (latencyMs); it is an input, never a decision.
#include "actors/llm.h"
#include "scenario/scenario.h"

namespace asiarch {

LlmClient http_llm_client(const LlmSpec& spec);

}  // namespace asiarch
