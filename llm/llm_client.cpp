#include "llm/llm_client.h"

#define CURL_DISABLE_TYPECHECK  // curl_easy_setopt is called through a pointer below
#include <curl/curl.h>
#include <dlfcn.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>

namespace asiarch {
namespace {

// One try's outcome.
struct Try {
  bool ok = false;
  bool retry = false;
  std::string content, error, error_kind;
  uint32_t http_status = 0;
  uint64_t prompt_tokens = 0, completion_tokens = 0;
};

// A reply with a program is a few KiB; a server that streams without end must not fill memory
// or the log (the reply's content is logged).
constexpr size_t kMaxReplyBytes = 256 << 10;

// Returning less than it was given makes libcurl end the transfer with CURLE_WRITE_ERROR.
size_t collect(char* data, size_t size, size_t count, void* out) {
  auto* reply = static_cast<std::string*>(out);
  if (reply->size() + size * count > kMaxReplyBytes) return 0;
  reply->append(data, size * count);
  return size * count;
}

std::string clip(const std::string& text, size_t limit = 200) {
  return text.size() <= limit ? text : text.substr(0, limit) + "...";
}

std::string seconds(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g s", s);
  return buffer;
}

Try read_answer(long status, const std::string& body) {
  Try t;
  t.http_status = static_cast<uint32_t>(status);
  if (status < 200 || status >= 300) {
    t.error_kind = "http";
    t.error = "HTTP " + std::to_string(status) + ": " + clip(body);
    t.retry = status == 429 || status >= 500;
    return t;
  }
  try {
    const nlohmann::json answer = nlohmann::json::parse(body);
    const auto& content = answer.at("choices").at(0).at("message").at("content");
    if (!content.is_string()) throw std::invalid_argument("choices[0].message.content is not a string");
    t.content = content.get<std::string>();
    if (answer.contains("usage") && answer["usage"].is_object()) {
      const auto& usage = answer["usage"];
      if (usage.contains("prompt_tokens") && usage["prompt_tokens"].is_number_unsigned()) t.prompt_tokens = usage["prompt_tokens"].get<uint64_t>();
      if (usage.contains("completion_tokens") && usage["completion_tokens"].is_number_unsigned()) {
        t.completion_tokens = usage["completion_tokens"].get<uint64_t>();
      }
    }
    t.ok = true;
  } catch (const std::exception& e) {
    t.error_kind = "malformed";
    t.error = std::string("malformed JSON: ") + e.what() + " (body: " + clip(body, 80) + ")";
  }
  return t;
}

// libcurl, loaded by the first LLM client: linked, it brought some 25 libraries (TLS, Kerberos,
// LDAP) into every start of asiarch, about a third of the time `asiarch --help` took.
struct Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

const Curl& curl() {
  static const Curl loaded = [] {
    void* handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      throw std::runtime_error(std::string("the LLM client needs libcurl, which could not be loaded: ") + dlerror() +
                               "; install Debian's libcurl4 (make deps installs it)");
    }
    auto symbol = [handle](const char* name) {
      void* address = dlsym(handle, name);
      if (!address) throw std::runtime_error(std::string("libcurl.so.4 has no ") + name + "; install Debian's libcurl4");
      return address;
    };
    Curl c{};
    c.global_init = reinterpret_cast<decltype(c.global_init)>(symbol("curl_global_init"));
    c.easy_init = reinterpret_cast<decltype(c.easy_init)>(symbol("curl_easy_init"));
    c.easy_setopt = reinterpret_cast<decltype(c.easy_setopt)>(symbol("curl_easy_setopt"));
    c.easy_perform = reinterpret_cast<decltype(c.easy_perform)>(symbol("curl_easy_perform"));
    c.easy_getinfo = reinterpret_cast<decltype(c.easy_getinfo)>(symbol("curl_easy_getinfo"));
    c.easy_cleanup = reinterpret_cast<decltype(c.easy_cleanup)>(symbol("curl_easy_cleanup"));
    c.easy_strerror = reinterpret_cast<decltype(c.easy_strerror)>(symbol("curl_easy_strerror"));
    c.slist_append = reinterpret_cast<decltype(c.slist_append)>(symbol("curl_slist_append"));
    c.slist_free_all = reinterpret_cast<decltype(c.slist_free_all)>(symbol("curl_slist_free_all"));
    c.global_init(CURL_GLOBAL_DEFAULT);
    return c;
  }();
  return loaded;
}

Try post(const LlmSpec& spec, const std::string& body, const std::string& key) {
  const Curl& lib = curl();
  CURL* curl = lib.easy_init();
  if (!curl) return Try{false, false, "", "libcurl could not start a transfer", "connection"};
  std::string answer;
  curl_slist* headers = lib.slist_append(nullptr, "Content-Type: application/json");
  if (!key.empty()) headers = lib.slist_append(headers, ("Authorization: Bearer " + key).c_str());
  const long timeout_ms = std::max(1L, std::lround(spec.timeout_s * 1000.0));
  lib.easy_setopt(curl, CURLOPT_URL, spec.endpoint.c_str());
  lib.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  lib.easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  lib.easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  lib.easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  lib.easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  lib.easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  lib.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  lib.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  const CURLcode code = lib.easy_perform(curl);
  long status = 0;
  lib.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  lib.slist_free_all(headers);
  lib.easy_cleanup(curl);
  if (code == CURLE_OPERATION_TIMEDOUT) return Try{false, true, "", "timeout after " + seconds(spec.timeout_s), "timeout"};
  if (code == CURLE_WRITE_ERROR) return Try{false, false, "", "the reply was longer than " + std::to_string(kMaxReplyBytes >> 10) + " KiB", "too_large"};
  if (code != CURLE_OK) return Try{false, true, "", std::string("connection failed: ") + lib.easy_strerror(code), "connection"};
  return read_answer(status, answer);
}

std::string tries_text(uint32_t tries) { return " (" + std::to_string(tries) + (tries == 1 ? " try)" : " tries)"); }

}  // namespace

LlmClient http_llm_client(const LlmSpec& spec) {
  curl();  // loaded and initialised once, before any thread calls it
  return [spec](const std::string& request_event_bytes) {
    msg::CanonicalView<msg::Event> event(request_event_bytes);
    const auto request = event.root().getPayload().getLlmRequest();
    nlohmann::json messages = nlohmann::json::array();
    for (auto m : request.getMessages()) messages.push_back({{"role", m.getRole().cStr()}, {"content", m.getContent().cStr()}});
    const nlohmann::json body = {{"model", request.getModel().cStr()},
                                 {"messages", messages},
                                 {"temperature", request.getTemperature()},
                                 {"max_tokens", request.getMaxTokens()}};
    // Invalid UTF-8 (a model's reply echoed back) is replaced rather than thrown on: a request
    // must always be sent.
    const std::string body_text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    const char* key = spec.api_key_env.empty() ? nullptr : std::getenv(spec.api_key_env.c_str());

    const auto began = std::chrono::steady_clock::now();
    Try last;
    uint32_t tries = 0;
    double pause = spec.backoff_s;
    while (true) {
      last = post(spec, body_text, key ? key : "");
      ++tries;
      if (last.ok || !last.retry || tries > spec.max_retries) break;
      std::this_thread::sleep_for(std::chrono::duration<double>(pause));
      pause *= 2;
    }
    const double latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();

    capnp::MallocMessageBuilder message;
    auto reply = message.initRoot<msg::Payload>().initLlmReply();
    reply.setRequestId(request.getRequestId());
    reply.setRequestHash(llm_request_hash(request));
    reply.setOk(last.ok);
    reply.setContent(last.content);
    if (!last.ok) {
      reply.setError(last.error + tries_text(tries));
      reply.setErrorKind(last.error_kind);
    }
    reply.setHttpStatus(last.http_status);
    reply.setTries(tries);
    reply.setPromptTokens(last.prompt_tokens);
    reply.setCompletionTokens(last.completion_tokens);
    reply.setLatencyMs(latency_ms);
    return msg::canonical_bytes(message.getRoot<msg::Payload>().asReader());
  };
}

}  // namespace asiarch
