// The LLM researcher and judge (actors/llm.h) against a small OpenAI-compatible server on
// loopback (tests/fake_openai_server.py) that answers as its script says: valid, broken,
// badtype, slow, error500, garbage.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <optional>
#include <thread>

#include "actors/analyst.h"
#include "actors/llm.h"
#include "campaign/campaign.h"
#include "lang/program.h"
#include "llm/llm_client.h"
#include "storage/run_store.h"
#include "test_helpers.h"

using namespace asiarch;
using namespace asiarch::testing;

namespace {

// The fake server as a child process; stopped (SIGTERM) when this goes out of scope or stop().
class FakeServer {
 public:
  FakeServer(const std::string& script, int port = 0, const std::string& then = "", double slow_seconds = 3.0) {
    output_ = fresh_dir("fake-openai-" + std::to_string(counter_++)).string() + ".out";
    pid_ = start("/usr/bin/python3 " + source("tests/fake_openai_server.py") + " --port " + std::to_string(port) + " --script " + script +
                     (then.empty() ? "" : " --then " + then) + " --slow-seconds " + std::to_string(slow_seconds),
                 output_);
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      const std::string text = read_file(output_);
      if (text.find('\n') != std::string::npos) port_ = std::stoi(text);
      else std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (port_ == 0) throw std::runtime_error("the fake OpenAI server did not start: " + read_file(output_));
  }
  ~FakeServer() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
    std::filesystem::remove(output_);
  }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/chat/completions"; }

 private:
  static inline int counter_ = 0;
  pid_t pid_ = 0;
  int port_ = 0;
  std::string output_;
};

// The [researcher] and [llm] tables of a campaign that asks the model at `endpoint`.
std::string llm_tables(const std::string& endpoint, bool judge) {
  return "\n[researcher]\nbackend = \"llm\"\n\n[llm]\nendpoint = \"" + endpoint +
         "\"\nmodel = \"fake-model\"\ntimeout_s = 2.0\nmax_retries = 1\nbackoff_s = 0.05\nrevisions = 2\njudge = " + (judge ? "true" : "false") + "\n";
}

// A small simulated campaign whose researcher (and, with `judge`, judge) is the model at
// `endpoint`; experiments = 0: the tiny live campaign of test_helpers.h instead.
std::string llm_scenario(const std::string& endpoint, uint64_t experiments, bool judge) {
  if (experiments == 0) return kTinyLiveScenario + llm_tables(endpoint, judge);
  std::string text = edited_text("scenarios/sim-smoke.toml", "max_experiments = 100", "max_experiments = " + std::to_string(experiments));
  auto replace = [&](const std::string& from, const std::string& to) { text.replace(text.find(from), from.size(), to); };
  replace("gpu_slots = 4", "gpu_slots = 2");
  replace("start = [\"linear_attention\", \"retnet\", \"gla\", \"mamba2\", \"deltanet\", \"gated_deltanet\"]", "start = [\"deltanet\", \"gla\"]");
  return text + llm_tables(endpoint, judge);
}

// A campaign of llm_scenario(...) run with `asiarch run` into `dir`, its scenario file beside it;
// both are removed when this goes out of scope.
struct LlmRun {
  std::filesystem::path dir;
  std::string scenario_file;
  Result result;
  LlmRun(const std::string& name, const std::string& endpoint, uint64_t experiments, bool judge)
      : dir(fresh_dir(name)), scenario_file(write_file(dir.string() + ".toml", llm_scenario(endpoint, experiments, judge))) {
    result = sh(cli("run " + scenario_file + " --out " + dir.string()));
  }
  ~LlmRun() {
    std::filesystem::remove_all(dir);
    std::filesystem::remove(scenario_file);
  }
  Result asiarch(const std::string& command) const { return sh(cli(command + " " + dir.string())); }
};

// The event's canonical bytes with an llmReply's wall-clock latency set to 0: what two runs
// against the same scripted server must agree on.
std::string without_latency(std::string_view canonical) {
  msg::CanonicalView<msg::Event> view(canonical);
  if (view.root().getPayload().which() != msg::Payload::LLM_REPLY) return std::string(canonical);
  capnp::MallocMessageBuilder message;
  message.setRoot(view.root());
  message.getRoot<msg::Event>().getPayload().getLlmReply().setLatencyMs(0);
  return msg::canonical_bytes(message.getRoot<msg::Event>().asReader());
}

std::vector<std::string> events_of(const std::filesystem::path& dir) {
  std::vector<std::string> events;
  storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly)->for_each_event([&](uint64_t, std::string_view e) { events.emplace_back(e); });
  return events;
}

// One request through the HTTP client, as the coordinator makes it.
struct ClientAnswer {
  bool ok;
  std::string content, error, kind;
  uint32_t status, tries;
  uint64_t prompt_tokens, completion_tokens;
  double latency_ms;
  std::string request_hash, expected_hash;
};

ClientAnswer ask(const LlmSpec& spec, const std::string& user_text) {
  capnp::MallocMessageBuilder message;
  auto event = message.initRoot<msg::Event>();
  event.setSeq(1);
  event.setFrom(actor_name::kResearcher);
  event.setTo(actor_name::kLlm);
  auto request = event.initPayload().initLlmRequest();
  fill_llm_request(request, 7, "propose", 1, spec, {{"system", "You design token mixers."}, {"user", user_text}}, 0);
  const std::string reply_bytes = http_llm_client(spec)(msg::canonical_bytes(event.asReader()));
  msg::CanonicalView<msg::Payload> view(reply_bytes);
  auto reply = view.root().getLlmReply();
  REQUIRE(reply.getRequestId() == 7);
  return ClientAnswer{reply.getOk(), reply.getContent().cStr(), reply.getError().cStr(), reply.getErrorKind().cStr(),
                      reply.getHttpStatus(), reply.getTries(), reply.getPromptTokens(), reply.getCompletionTokens(),
                      reply.getLatencyMs(), reply.getRequestHash().cStr(), llm_request_hash(request.asReader())};
}

const std::string kParentPrompt = "Parent program:\n```asiarch\n" + lang::find_baseline("deltanet")->text + "```\n";

}  // namespace

TEST_CASE("proposal replies give their motivation and program, and judge replies their three scores", "[llm]") {
  const ProposalReply reply = parse_proposal_reply("Sure.\nMOTIVATION: add a decay\ngate.\n```asiarch\nprogram p\n  return x\n```\ntrailing");
  CHECK(reply.motivation == "add a decay gate.");
  CHECK(reply.program == "program p\n  return x\n");
  CHECK(parse_proposal_reply("no fence at all").program.empty());
  CHECK(parse_proposal_reply("```\nprogram q\n  return x\n```").program == "program q\n  return x\n");

  std::string problem;
  const auto scores = parse_judge_reply("Here: {\"performance\": 7, \"novelty\": 4, \"complexity\": 10}.", problem);
  REQUIRE(scores);
  CHECK(judge_score(*scores) == Approx((7.0 + 4.0 + 10.0) / 3.0 / 9.0 - 1.0 / 9.0));
  CHECK(judge_score({1, 1, 1}) == 0.0);
  CHECK(judge_score({10, 10, 10}) == 1.0);
  CHECK_FALSE(parse_judge_reply("{\"performance\": 7, \"novelty\": 4}", problem));
  CHECK(problem.find("complexity") != std::string::npos);
  CHECK_FALSE(parse_judge_reply("{\"performance\": 11, \"novelty\": 4, \"complexity\": 3}", problem));
  CHECK(problem.find("outside 1 to 10") != std::string::npos);
  CHECK_FALSE(parse_judge_reply("no object", problem));

  // The system prompt lists every operator the checker knows and an example that checks.
  const std::string reference = language_reference();
  for (const auto& op : lang::operators()) CHECK(reference.find(op.summary) != std::string::npos);
  const ProposalReply example = parse_proposal_reply(reference);
  CHECK_NOTHROW(lang::check(lang::parse(example.program), lang::ModelShape{}));
}

namespace {

// The explore result of `arch` (a baseline when `baseline` names one), delivered to the analyst.
Delivery deliver_result(AnalystState& analyst, uint64_t arch, const std::string& baseline, double loss, double accuracy) {
  return deliver(analyst, [&](msg::Payload::Builder payload) {
    auto result = payload.initTrainResult();
    auto ref = result.initRef();
    ref.setJobId(arch * 2);
    ref.setArchId(arch);
    ref.setBaseline(!baseline.empty());
    ref.setBaselineName(baseline);
    ref.setOperator(baseline.empty() ? "llm" : "baseline");
    ref.setNovelty(0.4);
    ref.setStatements(20);
    ref.setStateSize(4096);
    ref.setProgram(lang::find_baseline("gla")->text);
    result.setLoss(loss);
    result.setAccuracy(accuracy);
    result.setGpuHours(1.0);
  });
}

// The explore fitness the analyst gives a candidate when the judge answers `content` (ok) or
// fails (content empty); checks on the way that it asks before it scores.
double judged_fitness(const std::string& content) {
  const Scenario scenario = parse_scenario(llm_scenario("http://127.0.0.1:1/v1/chat/completions", 10, true), "judge.toml");
  AnalystState analyst(AnalystState::Settings::of(scenario));
  deliver_result(analyst, 1, "deltanet", 2.5, 0.8);
  Delivery asked = deliver_result(analyst, 3, "", 2.4, 0.85);
  REQUIRE(asked.messages().size() == 1);  // no poolUpdate yet: the result waits for the judge
  auto request = asked.messages()[0].getPayload().getLlmRequest();
  CHECK(std::string(asked.messages()[0].getTo().cStr()) == actor_name::kLlm);
  CHECK(std::string(request.getPurpose().cStr()) == "judge");
  CHECK(request.getArchId() == 3);
  const std::string prompt = request.getMessages()[1].getContent().cStr();
  CHECK(prompt.find("program gla") != std::string::npos);       // the candidate's program
  CHECK(prompt.find("baseline arch 1: loss 2.5000") != std::string::npos);  // the anchor
  const uint64_t id = request.getRequestId();
  const std::string hash = llm_request_hash(request);
  Delivery scored = deliver(analyst, [&](msg::Payload::Builder payload) {
    auto reply = payload.initLlmReply();
    reply.setRequestId(id);
    reply.setRequestHash(hash);
    reply.setOk(!content.empty());
    reply.setContent(content);
  });
  for (auto m : scored.messages()) {
    if (m.getPayload().which() == msg::Payload::POOL_UPDATE && m.getPayload().getPoolUpdate().getArchId() == 3) {
      return m.getPayload().getPoolUpdate().getFitness();
    }
  }
  FAIL("no poolUpdate of arch 3 after the judge's reply");
  return 0;
}

}  // namespace

TEST_CASE("the LLM judge's scores replace the deterministic judge term, and a failed judge keeps it", "[llm]") {
  const double best = judged_fitness("{\"performance\": 10, \"novelty\": 10, \"complexity\": 10}");
  const double worst = judged_fitness("{\"performance\": 1, \"novelty\": 1, \"complexity\": 1}");
  const double middle = judged_fitness("{\"performance\": 4, \"novelty\": 7, \"complexity\": 7}");  // mean 6: (6-1)/9
  const double failed = judged_fitness("");
  const double unreadable = judged_fitness("a fine architecture");
  // The judge term goes from 0 to 1 with weight 1 of 3.3 (sim-smoke's fitness weights).
  CHECK(best - worst == Approx(1.0 / 3.3));
  CHECK(middle - worst == Approx(5.0 / 9.0 / 3.3));
  // The deterministic judge: 0.5 + 0.5 * novelty 0.4 = 0.7.
  CHECK(failed - worst == Approx(0.7 / 3.3));
  CHECK(unreadable == failed);
}

TEST_CASE("the HTTP client maps answers, timeouts, HTTP errors, garbage and refused connections to replies", "[llm]") {
  FakeServer server("valid,error500,garbage,slow,slow,error500,valid,error500", 0, "", 2.0);
  LlmSpec spec;
  spec.endpoint = server.endpoint();
  spec.model = "fake-model";
  spec.timeout_s = 0.5;
  spec.max_retries = 0;
  spec.backoff_s = 0.01;

  const ClientAnswer valid = ask(spec, kParentPrompt);
  CHECK(valid.ok);
  CHECK(valid.request_hash == valid.expected_hash);
  CHECK(valid.status == 200);
  CHECK(valid.tries == 1);
  CHECK(valid.prompt_tokens > 0);
  CHECK(valid.completion_tokens > 0);
  const ProposalReply proposal = parse_proposal_reply(valid.content);
  CHECK_NOTHROW(lang::check(lang::parse(proposal.program), lang::ModelShape{}));

  const ClientAnswer error500 = ask(spec, kParentPrompt);
  CHECK_FALSE(error500.ok);
  CHECK(error500.kind == "http");
  CHECK(error500.status == 500);
  CHECK(error500.error.rfind("HTTP 500: ", 0) == 0);
  CHECK(error500.error.find("(1 try)") != std::string::npos);

  const ClientAnswer garbage = ask(spec, kParentPrompt);
  CHECK_FALSE(garbage.ok);
  CHECK(garbage.kind == "malformed");
  CHECK(garbage.error.rfind("malformed JSON: ", 0) == 0);

  spec.max_retries = 1;  // slow, then slow again: both tries time out
  const ClientAnswer timeout = ask(spec, kParentPrompt);
  CHECK_FALSE(timeout.ok);
  CHECK(timeout.kind == "timeout");
  CHECK(timeout.tries == 2);
  CHECK(timeout.error == "timeout after 0.5 s (2 tries)");
  CHECK(timeout.latency_ms >= 1000);

  const ClientAnswer retried = ask(spec, kParentPrompt);  // error500, then valid
  CHECK(retried.ok);
  CHECK(retried.tries == 2);

  spec.max_retries = 0;  // error500 is retried only when retries are allowed
  CHECK(ask(spec, kParentPrompt).tries == 1);

  server.stop();
  const ClientAnswer refused = ask(spec, kParentPrompt);
  CHECK_FALSE(refused.ok);
  CHECK(refused.kind == "connection");
  CHECK(refused.status == 0);
}

TEST_CASE("a reply that never ends is cut at 256 KiB, long before the timeout", "[llm]") {
  FakeServer server("endless");
  LlmSpec spec;
  spec.endpoint = server.endpoint();
  spec.model = "fake-model";
  spec.timeout_s = 600;
  spec.max_retries = 2;
  const ClientAnswer endless = ask(spec, kParentPrompt);
  CHECK_FALSE(endless.ok);
  CHECK(endless.kind == "too_large");
  CHECK(endless.tries == 1);
  CHECK(endless.error == "the reply was longer than 256 KiB (1 try)");
}

TEST_CASE("a campaign with the LLM researcher and judge survives failed calls and replays without the model", "[llm]") {
  // Every kind of failure early on, then valid replies. The second slow makes the retry of the
  // first time out too, so one call fails as a timeout.
  const std::string script = "valid,broken,valid,slow,slow,valid,error500,error500,garbage,valid,badtype,valid,broken,broken,broken";
  std::optional<FakeServer> server(std::in_place, script, 0, "valid");
  const int port = server->port();
  const LlmRun first_run("llm-campaign-1", server->endpoint(), 20, true);
  INFO(first_run.result.output);
  REQUIRE(first_run.result.code == 0);
  const std::string digest = last_line(first_run.result.output);
  REQUIRE(digest.rfind("digest: ", 0) == 0);
  server.reset();
  // The server is gone: the replay takes every reply from the log.
  const Result replay = first_run.asiarch("replay");
  INFO(replay.output);
  CHECK(replay.code == 0);
  CHECK(last_line(replay.output) == digest);
  const Result check = first_run.asiarch("check");
  INFO(check.output);
  CHECK(check.code == 0);
  CHECK(check.output.find("llm") != std::string::npos);

  const Result inspect = first_run.asiarch("inspect");
  INFO(inspect.output);
  CHECK(inspect.output.find("LLM calls:") != std::string::npos);
  CHECK(inspect.output.find("judge") != std::string::npos);
  for (const char* kind : {"timeout 1", "http 1", "malformed 1"}) CHECK(inspect.output.find(kind) != std::string::npos);
  CHECK(inspect.output.find("LLM tokens:") != std::string::npos);

  // The same scenario against a fresh server with the same script on the same port (the
  // endpoint is part of the scenario's bytes): the same campaign, event for event, apart from
  // the measured latencies.
  server.emplace(script, port, "valid");
  const LlmRun second_run("llm-campaign-2", server->endpoint(), 20, true);
  INFO(second_run.result.output);
  REQUIRE(second_run.result.code == 0);
  const auto first = events_of(first_run.dir), second = events_of(second_run.dir);
  REQUIRE(first.size() == second.size());
  size_t replies = 0, failed = 0;
  std::vector<std::string> researcher_errors, motivations;
  for (size_t i = 0; i < first.size(); ++i) {
    INFO("seq " << i + 1);
    REQUIRE(without_latency(first[i]) == without_latency(second[i]));
    msg::CanonicalView<msg::Event> view(first[i]);
    auto payload = view.root().getPayload();
    if (payload.which() == msg::Payload::LLM_REPLY) {
      ++replies;
      if (!payload.getLlmReply().getOk()) {
        ++failed;
        if (view.root().getTo() == actor_name::kResearcher) researcher_errors.push_back(payload.getLlmReply().getError().cStr());
      }
    }
    if (payload.which() == msg::Payload::PROPOSAL) motivations.push_back(payload.getProposal().getMotivation().cStr());
  }
  CHECK(replies > 20);
  CHECK(failed == 3);  // the timeout, the HTTP 500 retried into another 500, the garbage
  // Each failed proposal call fell back to the built-in researcher, saying why.
  CHECK_FALSE(researcher_errors.empty());
  for (const std::string& error : researcher_errors) {
    INFO(error);
    CHECK(std::any_of(motivations.begin(), motivations.end(), [&](const std::string& m) { return m.rfind("LLM failed: " + error + "; built-in mutation: ", 0) == 0; }));
  }
}

TEST_CASE("a broken program goes back to the model with the parser's error, and the lineage shows the revision", "[llm]") {
  FakeServer server("broken,valid", 0, "valid");
  const LlmRun run("llm-revision", server.endpoint(), 6, false);
  INFO(run.result.output);
  REQUIRE(run.result.code == 0);
  const auto& dir = run.dir;

  // The first request's reply is broken; the second request is its revision.
  uint64_t parent = 0;
  std::string expected_error;
  bool revision_found = false;
  for (const std::string& bytes : events_of(dir)) {
    msg::CanonicalView<msg::Event> view(bytes);
    auto payload = view.root().getPayload();
    if (payload.which() != msg::Payload::LLM_REQUEST || payload.getLlmRequest().getAttempt() != 1) continue;
    auto request = payload.getLlmRequest();
    auto messages = request.getMessages();
    REQUIRE(messages.size() == 4);  // system, user, the broken reply, the error
    CHECK(std::string(messages[2].getRole().cStr()) == "assistant");
    const std::string broken = parse_proposal_reply(messages[2].getContent().cStr()).program;
    try {
      lang::parse(broken, "llm reply");
      FAIL("the scripted broken program parses");
    } catch (const lang::ProgramError& e) {
      expected_error = e.what();
    }
    CHECK(std::string(messages[3].getRole().cStr()) == "user");
    CHECK(std::string(messages[3].getContent().cStr()).find(expected_error) != std::string::npos);
    parent = request.getArchId();
    revision_found = true;
    break;
  }
  REQUIRE(revision_found);

  // The accepted proposal after the revision: operator llm, its motivation names the first error.
  uint64_t revised = 0;
  for (const std::string& bytes : events_of(dir)) {
    msg::CanonicalView<msg::Event> view(bytes);
    auto payload = view.root().getPayload();
    if (payload.which() != msg::Payload::PROPOSAL) continue;
    const std::string motivation = payload.getProposal().getMotivation().cStr();
    if (motivation.find("after 1 revision(s)") == std::string::npos) continue;
    CHECK(std::string(payload.getProposal().getOperator().cStr()) == "llm");
    CHECK(payload.getProposal().getParentIds()[0] == parent);
    CHECK(motivation.find(expected_error) != std::string::npos);
    revised = payload.getProposal().getArchId();
    break;
  }
  REQUIRE(revised != 0);
  const Result lineage = run.asiarch("lineage --arch " + std::to_string(revised));
  INFO(lineage.output);
  CHECK(lineage.code == 0);
  CHECK(lineage.output.find("by llm") != std::string::npos);
  CHECK(lineage.output.find("after 1 revision(s); first reply: " + expected_error) != std::string::npos);

  server.stop();
  const Result replay = run.asiarch("replay");
  INFO(replay.output);
  CHECK(replay.code == 0);
}

TEST_CASE("a live campaign asks the model while its jobs train, and replays with neither", "[llm]") {
  // While the loop waits for the model, results of the jobs that train on their threads wait
  // too; the log's order is the loop's, whatever the timing.
  std::optional<FakeServer> server(std::in_place, "valid,broken,valid,error500,error500,valid", 0, "valid");
  const LlmRun run("llm-live", server->endpoint(), 0, true);
  INFO(run.result.output);
  REQUIRE(run.result.code == 0);
  server.reset();
  const Result replay = run.asiarch("replay");
  INFO(replay.output);
  CHECK(replay.code == 0);
  CHECK(last_line(replay.output) == last_line(run.result.output));
  CHECK(run.asiarch("check").code == 0);
  size_t live_results = 0, llm_proposals = 0, judged = 0;
  for (const std::string& bytes : events_of(run.dir)) {
    msg::CanonicalView<msg::Event> view(bytes);
    auto payload = view.root().getPayload();
    if (payload.which() == msg::Payload::TRAIN_RESULT && view.root().getInput()) ++live_results;
    if (payload.which() == msg::Payload::PROPOSAL && payload.getProposal().getOperator() == "llm") ++llm_proposals;
    if (payload.which() == msg::Payload::LLM_REQUEST && payload.getLlmRequest().getPurpose() == "judge") ++judged;
  }
  CHECK(live_results >= 5);
  CHECK(llm_proposals >= 2);
  CHECK(judged >= 1);
}

TEST_CASE("a recorded reply that answers another request is refused by check and replay", "[llm]") {
  FakeServer server("valid", 0, "valid");
  const LlmRun run("llm-tamper", server.endpoint(), 4, false);
  REQUIRE(run.result.code == 0);
  server.stop();
  const auto& dir = run.dir;

  // Rewrite the log, with a valid chain, where the first reply names another request hash.
  std::vector<std::string> events = events_of(dir);
  uint64_t tampered = 0;
  for (size_t i = 0; i < events.size() && tampered == 0; ++i) {
    msg::CanonicalView<msg::Event> view(events[i]);
    if (view.root().getPayload().which() != msg::Payload::LLM_REPLY) continue;
    capnp::MallocMessageBuilder message;
    message.setRoot(view.root());
    message.getRoot<msg::Event>().getPayload().getLlmReply().setRequestHash(std::string(64, '0'));
    events[i] = msg::canonical_bytes(message.getRoot<msg::Event>().asReader());
    tampered = i + 1;
  }
  REQUIRE(tampered != 0);
  {
    const std::string header = *storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly)->meta("header");
    std::filesystem::remove(dir / "data.mdb");
    std::filesystem::remove(dir / "lock.mdb");
    auto rewritten = storage::RunStore::create(dir);
    rewritten->put_meta("header", header);
    rewritten->begin_chain(header);
    for (uint64_t seq = 1; seq <= events.size(); ++seq) rewritten->append_event(seq, events[seq - 1]);
    rewritten->commit();
  }
  const Result check = run.asiarch("check");
  INFO(check.output);
  CHECK(check.code == 1);
  CHECK(check.output.find("check failed at seq " + std::to_string(tampered) + " (llm)") != std::string::npos);
  const Result replay = run.asiarch("replay");
  INFO(replay.output);
  CHECK(replay.code == 1);
  CHECK(replay.output.find("the llmReply at seq " + std::to_string(tampered) + " answers request") != std::string::npos);
}

TEST_CASE("with the model unreachable a campaign still runs, on the built-in researcher", "[llm]") {
  // A port nobody listens on: every call fails to connect (after its retry) and falls back.
  int port = 0;
  {
    FakeServer server("valid");
    port = server.port();
  }
  const LlmRun run("llm-offline", "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions", 6, true);
  INFO(run.result.output);
  REQUIRE(run.result.code == 0);
  const Result inspect = run.asiarch("inspect --json");
  INFO(inspect.output);
  CHECK(inspect.output.find("\"failures\": {\"connection\": ") != std::string::npos);
  CHECK(inspect.output.find("\"llm_proposals\": 0") != std::string::npos);
  CHECK(run.asiarch("replay").code == 0);
}

TEST_CASE("the [llm] keys are validated with the line and the fix", "[llm]") {
  const auto dir = fresh_dir("llm-keys");
  std::filesystem::create_directories(dir);
  auto run_with = [&](const std::string& tail) {
    const std::string file = write_file(dir / "s.toml", read_file(source("scenarios/sim-smoke.toml")) + tail);
    return sh(cli("run " + file + " --out " + (dir / "run").string()));
  };
  // Each bad table, and what its error must name: the key to fix.
  const std::pair<const char*, const char*> cases[] = {
      {"\n[researcher]\nbackend = \"gpt\"\n", "backend = \"llm\""},
      {"\n[researcher]\nbackend = \"llm\"\n", "[llm]"},
      {"\n[llm]\nendpoint = \"http://127.0.0.1:1/v1/chat/completions\"\n", "model ="},
      {"\n[llm]\nendpoint = \"http://127.0.0.1:1/v1/chat/completions\"\nmodel = \"m\"\njudge = 1\n", "true or false"},
  };
  for (const auto& [tail, names] : cases) {
    INFO(tail);
    const Result result = run_with(tail);
    CHECK(result.code == 2);
    CHECK(result.output.find(names) != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "run"));
  std::filesystem::remove_all(dir);
}
