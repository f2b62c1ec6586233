// Models built from programs, the tasks, the checks by measurement, training and `asiarch train`.
#include <cmath>
#include <map>
#include <set>

#include "training/model.h"
#include "training/tasks.h"
#include "training/training.h"
#include "tests/test_helpers.h"

// libtorch's c10 logging defines CHECK (abort on failure, invisible to Catch): Catch's must win.
#undef CHECK
#include <catch2/catch.hpp>

using namespace asiarch;
using asiarch::testing::cli;
using asiarch::testing::last_line;
using asiarch::testing::read_file;
using asiarch::testing::source;
using asiarch::testing::sh;

namespace {

lang::Program baseline(const std::string& name) {
  const lang::Baseline* b = lang::find_baseline(name);
  REQUIRE(b != nullptr);
  return lang::parse(b->text, b->name);
}

lang::Program program_text(const std::string& body) { return lang::parse("program probe\n" + body, "probe"); }

// Small programs that together use every operator of the language, at D = 32.
const std::map<std::string, std::string>& operator_programs() {
  static const std::map<std::string, std::string> programs = {
      {"elementwise",
       "  a = linear(x, out=D)\n  b = silu(a)\n  c = sigmoid(b)\n  d = softplus(c)\n  e = logsigmoid(d)\n  f = elu1(e)\n"
       "  g = relu(f)\n  h = tanh(g)\n  i = exp(h)\n  j = neg(i)\n  k = sub(j, a)\n  l = mul(k, a)\n  m = add(l, b)\n"
       "  n = scale(m)\n  o = temperature(n)\n  p = concat(o, a)\n  y = linear(p, out=D)\n  return y\n"},
      {"heads_and_scalars",
       "  a = linear(x, out=D)\n  h = split_heads(a, h=4)\n  s_proj = linear(x, out=4)\n  s = head_scalars(s_proj)\n"
       "  m1 = mul(h, s)\n  m2 = mul(s, h)\n  a1 = add(m1, s)\n  a2 = sub(s, m2)\n  s2 = scale(s)\n  s3 = temperature(s2)\n"
       "  s4 = seq_mean(s3)\n  h2 = scale(a1)\n  h3 = temperature(a2)\n  h4 = add(h2, h3)\n  h5 = mul(h4, s4)\n  y_heads = merge_heads(h5)\n"
       "  y = linear(y_heads, out=D)\n  return y\n"},
      {"norms_and_local_mixing",
       "  a = linear(x, out=D)\n  b = l2norm(a)\n  c = rmsnorm(b)\n  d = gated_rmsnorm(c, a)\n  h = split_heads(d, h=4)\n"
       "  h1 = l2norm(h)\n  h2 = rmsnorm(h1)\n  h3 = gated_rmsnorm(h2, h)\n  e = merge_heads(h3)\n  f = short_conv(e, k=4)\n"
       "  g = noncausal_conv(f, k=3)\n  hm = seq_mean(h3)\n  hs = merge_heads(hm)\n  m = seq_mean(g)\n  n = add(m, hs)\n"
       "  y = linear(n, out=D)\n  return y\n"},
      {"recurrences",
       "  a = linear(x, out=D)\n  q = split_heads(a, h=4)\n  b = linear(x, out=D)\n  k0 = split_heads(b, h=4)\n  k = l2norm(k0)\n"
       "  c = linear(x, out=D*2)\n  v = split_heads(c, h=4)\n  beta_proj = linear(x, out=4)\n  beta_logit = head_scalars(beta_proj)\n"
       "  beta = sigmoid(beta_logit)\n  g = retnet_decay(x, h=4)\n  gv_proj = linear(x, out=D)\n  gv_log = logsigmoid(gv_proj)\n"
       "  gv = split_heads(gv_log, h=4)\n  o1 = linear_attn(q, k, v)\n  o2 = decay_attn(q, k, v, g)\n  o3 = decay_attn(q, k, v, gv)\n"
       "  o4 = delta_rule(q, k, v, beta)\n  o5 = gated_delta_rule(q, k, v, beta, g)\n  o6 = swa(q, k, v, window=5)\n"
       "  o7 = softmax_attn(q, k, v)\n  s1 = add(o1, o2)\n  s2 = add(s1, o3)\n  s3 = add(s2, o4)\n  s4 = add(s3, o5)\n  s5 = add(s4, o6)\n"
       "  s6 = add(s5, o7)\n  o = merge_heads(s6)\n  y = linear(o, out=D)\n  return y\n"},
      {"routing",
       "  a = linear(x, out=D)\n  b = linear(x, out=D)\n  gate = linear(x, out=D)\n  f = gated_fuse(a, b, gate)\n"
       "  ha = split_heads(a, h=4)\n  hb = split_heads(b, h=4)\n  sa_proj = linear(x, out=4)\n  sa = head_scalars(sa_proj)\n"
       "  stats = path_stats(a, b, f)\n  hstats = path_stats(ha, hb)\n  sstats = path_stats(sa)\n  all_stats = concat(stats, hstats)\n"
       "  more_stats = concat(all_stats, sstats)\n  logits = linear(more_stats, out=3)\n  r = route(logits, a, b, f, temp=2.0)\n"
       "  hlogits = linear(x, out=2)\n  hr = route(hlogits, ha, hb, temp=1.0)\n  sr = route(hlogits, sa, sa, temp=0.5)\n"
       "  hs = mul(hr, sr)\n  hseq = merge_heads(hs)\n  y0 = add(r, hseq)\n  y = linear(y0, out=D)\n  return y\n"},
      {"per_head_routing",
       "  a = linear(x, out=D)\n  v = split_heads(a, h=4)\n  f1 = fir(v, k=3)\n  f2 = fir(v, k=7)\n  fs = fir(a, k=2)\n"
       "  abs = head_mean_abs(f1, f2, v)\n  ms = head_mean_std(f1, f2, v)\n  stats = concat(abs, ms)\n  feats = concat(x, stats)\n"
       "  g_proj = linear(feats, out=12)\n  g = split_heads(g_proj, h=4)\n  gs = sharpen(g)\n  gt = temperature(g)\n"
       "  fused = sigmoid_fuse(gs, f1, f2, v, floor=0.02)\n  routed = head_route(gt, f1, f2, v)\n  both = add(fused, routed)\n"
       "  m = merge_heads(both)\n  s_proj = linear(x, out=4)\n  s = head_scalars(s_proj)\n  ss = sharpen(s)\n  sq = sharpen(fs)\n"
       "  sm = seq_mean(ss)\n  mixed = add(m, sq)\n  y0 = linear(mixed, out=4)\n  ys = head_scalars(y0)\n  yy = mul(ys, sm)\n"
       "  yh = mul(v, yy)\n  yseq = merge_heads(yh)\n  y = linear(yseq, out=D)\n  return y\n"},
  };
  return programs;
}

int64_t mixer_params(const lang::Program& program, int64_t d_model) {
  model::Mixer mixer(program, d_model, 1, "mixer");
  int64_t count = 0;
  for (const auto& p : mixer->parameters()) count += p.numel();
  return count;
}

training::TrainConfig quick_config(training::Task task, int64_t steps) {
  training::TrainConfig config = training::explore_config(task);
  config.steps = steps;
  config.warmup_steps = std::min<int64_t>(config.warmup_steps, steps / 2);
  return config;
}

std::string json_field(const std::string& json, const std::string& key) {
  const std::string marker = "\"" + key + "\": ";
  const size_t at = json.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = at + marker.size();
  size_t end = start;
  if (json[start] == '"') end = json.find('"', start + 1) + 1;
  else end = json.find_first_of(",}", start);
  return json.substr(start, end - start);
}

// NAME.arch in a fresh directory, so that messages name the file as NAME.arch.
std::string write_program(const std::string& name, const std::string& body) {
  const auto dir = asiarch::testing::fresh_dir(name);
  std::filesystem::create_directories(dir);
  return asiarch::testing::write_file(dir / (name + ".arch"), "program " + name + "\n" + body);
}

// Every exp feeds the next: the values overflow to Inf, the loss is NaN at once.
const char* kOverflowingBody =
    "  a = linear(x, out=D)\n  b = exp(a)\n  c = exp(b)\n  d = exp(c)\n  e = exp(d)\n  f = exp(e)\n  y = linear(f, out=D)\n  return y\n";

}  // namespace

TEST_CASE("model: the mixer has exactly the parameters derive() counts, for every shipped program", "[training][model]") {
  std::vector<lang::Baseline> shipped = lang::baselines();
  shipped.insert(shipped.end(), lang::discoveries().begin(), lang::discoveries().end());
  for (const auto& b : shipped) {
    const lang::Program program = lang::parse(b.text, b.name);
    for (const int64_t d_model : {64, 128}) {
      INFO(b.name << " at D=" << d_model);
      CHECK(mixer_params(program, d_model) == lang::derive(program, {d_model, 256}).params);
    }
  }
}

TEST_CASE("model: every operator builds, runs and keeps the shapes of its type", "[training][model]") {
  std::vector<std::pair<std::string, lang::Program>> programs;
  for (const auto& [name, body] : operator_programs()) programs.emplace_back(name, program_text(body));
  programs.emplace_back("every_addition", lang::parse(read_file(source("tests/programs/every_addition.arch"))));
  std::set<std::string> used;
  for (const auto& [name, program] : programs) {
    INFO(name);
    for (const auto& s : program.body) used.insert(s.op);
    CHECK(mixer_params(program, 32) == lang::derive(program, {32, 64}).params);
    model::Mixer mixer(program, 32, 7, "mixer");
    const auto x = torch::randn({2, 12, 32});
    const auto y = mixer->forward(x);
    CHECK(y.sizes() == x.sizes());
    CHECK(y.isfinite().all().item<bool>());
    y.sum().backward();
    for (const auto& p : mixer->parameters()) CHECK(p.grad().defined());
  }
  for (const auto& op : lang::operators()) {
    INFO(op.name);
    CHECK(used.count(op.name) == 1);
  }
}

TEST_CASE("model: the whole model maps tokens to logits, dead statements are not built", "[training][model]") {
  const lang::Program program = program_text("  unused = linear(x, out=D)\n  a = linear(x, out=D)\n  return a\n");
  model::LanguageModel net(program, model::ModelConfig{256, 32, 2, 1});
  CHECK(net->mixer_params() == 32 * 32);
  const auto logits = net->forward(torch::randint(256, {3, 10}));
  CHECK(logits.sizes() == std::vector<int64_t>({3, 10, 256}));
  // Embedding (tied head), per block: two gains, the mixer and the SwiGLU MLP, a final gain.
  const int64_t hidden = model::mlp_hidden_width(32);
  int64_t total = 0;
  for (const auto& p : net->parameters()) total += p.numel();
  CHECK(total == 256 * 32 + 2 * (2 * 32 + 32 * 32 + 3 * 32 * hidden) + 32);
  CHECK(hidden == 88);
}

TEST_CASE("model: the same seed gives bit-identical weights, another seed others", "[training][model]") {
  const lang::Program program = baseline("gated_deltanet");
  model::LanguageModel a(program, model::ModelConfig{256, 64, 2, 5});
  model::LanguageModel b(program, model::ModelConfig{256, 64, 2, 5});
  model::LanguageModel c(program, model::ModelConfig{256, 64, 2, 6});
  const auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (const auto& item : pa) {
    INFO(item.key());
    CHECK(torch::equal(item.value(), pb[item.key()]));
  }
  CHECK_FALSE(torch::equal(pa["embedding"], pc["embedding"]));
  CHECK_FALSE(torch::equal(pa["block0.mixer.q_proj.weight"], pc["block0.mixer.q_proj.weight"]));
}

TEST_CASE("model: decays start slow and multi-scale, RetNet's are fixed", "[training][model]") {
  model::Mixer mixer(baseline("gated_deltanet"), 64, 1, "mixer");
  const auto scales = mixer->named_parameters()["decay_scaled.weight"];
  CHECK(scales.min().item<float>() == Approx(1.0 / 256));
  CHECK(scales.max().item<float>() == Approx(1.0 / 16));
  model::Mixer gla(baseline("gla"), 64, 1, "mixer");
  CHECK(gla->named_parameters()["g.log_temperature"].exp().min().item<float>() == Approx(16.0));
  // retnet_decay has no parameters: RetNet's mixer has only its projections.
  const auto params = model::Mixer(baseline("retnet"), 64, 1, "mixer")->named_parameters();
  for (const auto& item : params) CHECK(item.key().find("g.") != 0);
}

TEST_CASE("model: FIR filters start as the identity and the per-head gates weight paths as LANGUAGE.md says", "[training][model]") {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 9, 16});
  // A FIR filter of seq and of heads returns its input until it learns.
  CHECK(torch::equal(model::Mixer(program_text("  f = fir(x, k=5)\n  return f\n"), 16, 1, "m")->forward(x), x));
  const lang::Program heads = program_text("  h = split_heads(x, h=4)\n  f = fir(h, k=63)\n  m = merge_heads(f)\n  return m\n");
  model::Mixer fir(heads, 16, 1, "m");
  CHECK(torch::allclose(fir->forward(x), x));
  // With the taps set to a delay by one token, output t is input t - 1 (zero before the start).
  auto taps = fir->named_parameters()["f.taps"];
  taps.zero_();
  taps.select(1, 61).fill_(1.0);
  const auto delayed = fir->forward(x);
  CHECK(torch::allclose(delayed.narrow(1, 1, 8), x.narrow(1, 0, 8)));
  CHECK(delayed.select(1, 0).abs().max().item<float>() == 0.0f);

  // Per-head statistics, fused and routed paths against their formulas.
  const lang::Program routing = program_text(
      "  a = split_heads(x, h=2)\n  b = neg(a)\n  abs = head_mean_abs(a, b)\n  ms = head_mean_std(a, b)\n"
      "  g_proj = linear(x, out=4)\n  g = split_heads(g_proj, h=2)\n  fused = sigmoid_fuse(g, a, b, floor=0.25)\n"
      "  routed = head_route(g, a, b)\n  both = add(fused, routed)\n  m = merge_heads(both)\n  return m\n");
  model::Mixer mixer(routing, 16, 3, "m");
  const auto a = x.view({2, 9, 2, 8}).transpose(1, 2);
  const auto g = torch::linear(x, mixer->named_parameters()["g_proj.weight"]).view({2, 9, 2, 2}).transpose(1, 2);
  const auto w = 0.25 + 0.75 * torch::sigmoid(g);
  const auto fused = a * w.select(-1, 0).unsqueeze(-1) - a * w.select(-1, 1).unsqueeze(-1);
  const auto p = torch::softmax(g, -1);
  const auto routed = a * p.select(-1, 0).unsqueeze(-1) - a * p.select(-1, 1).unsqueeze(-1);
  const auto expected = (fused + routed).transpose(1, 2).reshape({2, 9, 16});
  CHECK(torch::allclose(mixer->forward(x), expected, 1e-5, 1e-6));
}

TEST_CASE("model: live tensor memory is counted exactly per scope", "[training][model]") {
  model::MemoryScope scope;
  {
    const auto a = torch::empty({1000}, torch::kFloat32);
    const auto b = torch::empty({500}, torch::kFloat64);
    CHECK(scope.live_bytes() == 8000);
  }
  CHECK(scope.live_bytes() == 0);
  CHECK(scope.peak_bytes() == 8000);
}

TEST_CASE("tasks: MQAR data is deterministic and labelled as Zoology defines it", "[training][tasks]") {
  training::MqarTask task;
  task.vocab = 64;
  task.seq_len = 32;
  const int64_t kv_pairs = 6;
  task.kv_pairs = {kv_pairs};
  const auto a = training::mqar_examples(task, kv_pairs, 3, "mqar train", 7, 40);
  const auto b = training::mqar_examples(task, kv_pairs, 3, "mqar train", 7, 40);
  const auto c = training::mqar_examples(task, kv_pairs, 3, "mqar train", 8, 40);
  CHECK(torch::equal(a.inputs, b.inputs));
  CHECK(torch::equal(a.targets, b.targets));
  CHECK_FALSE(torch::equal(a.inputs, c.inputs));
  for (int64_t e = 0; e < 40; ++e) {
    const auto in = a.inputs[e], target = a.targets[e];
    std::map<int64_t, int64_t> value_of;
    for (int64_t p = 0; p < kv_pairs; ++p) {
      const int64_t key = in[2 * p].item<int64_t>(), value = in[2 * p + 1].item<int64_t>();
      CHECK(key >= 1);
      CHECK(key < 32);
      CHECK(value >= 32);
      CHECK(value < 64);
      CHECK(value_of.count(key) == 0);
      value_of[key] = value;
    }
    std::set<int64_t> queried;
    for (int64_t t = 2 * kv_pairs; t < task.seq_len; ++t) {
      const int64_t label = target[t].item<int64_t>(), token = in[t].item<int64_t>();
      if (label == training::kIgnored) {
        // A filler: never one of this sequence's keys, so no key is bound to a second token.
        CHECK(value_of.count(token) == 0);
        continue;
      }
      // A query: one of the keys, after the pairs at an even offset, labelled with its value.
      CHECK((t - 2 * kv_pairs) % 2 == 0);
      REQUIRE(value_of.count(token) == 1);
      CHECK(label == value_of[token]);
      queried.insert(token);
    }
    CHECK(static_cast<int64_t>(queried.size()) == kv_pairs);
  }
  // The test set does not depend on the training seed.
  training::TrainConfig one = training::explore_config(training::Task::Mqar), two = one;
  two.seed = 99;
  const auto test_one = training::make_task(one)->eval_batches(64), test_two = training::make_task(two)->eval_batches(64);
  REQUIRE(test_one.size() == test_two.size());
  CHECK(torch::equal(test_one[0].inputs, test_two[0].inputs));
  CHECK_FALSE(torch::equal(training::make_task(one)->train_batch(0, 4).inputs, training::make_task(two)->train_batch(0, 4).inputs));
}

TEST_CASE("tasks: the MQAR ladder goes through its rungs and scores each rung apart", "[training][tasks]") {
  training::TrainConfig config = training::explore_config(training::Task::Mqar);
  config.mqar.seq_len = 64;
  config.mqar.kv_pairs = {2, 4, 8};
  config.mqar.test_examples = 20;
  const auto task = training::make_task(config);
  CHECK(task->eval_groups() == 3);
  // Step s trains rung s mod 3: 2, 4, 8 pairs in sequences of 16, 32, 64 tokens.
  for (int64_t step = 3; step < 6; ++step) {
    const auto batch = task->train_batch(step, 5);
    const int64_t kv = config.mqar.kv_pairs[static_cast<size_t>(step % 3)];
    CHECK(batch.inputs.size(0) == 5);
    CHECK(batch.inputs.size(1) == 8 * kv);
    CHECK(training::mqar_rung_length(config.mqar, kv) == 8 * kv);
    CHECK((batch.targets.ne(training::kIgnored).sum(1) == kv).all().item<bool>());
  }
  // The held-out set: test_examples per rung, tagged with the rung.
  std::map<int64_t, int64_t> rows_per_group;
  for (const auto& b : task->eval_batches(8)) rows_per_group[b.group] += b.inputs.size(0);
  CHECK(rows_per_group == std::map<int64_t, int64_t>{{0, 20}, {1, 20}, {2, 20}});
  // The verify task keeps the pressure: twice the vocabulary, length and pairs per rung.
  const training::MqarTask verify = training::verify_task(config.mqar);
  CHECK(verify.vocab == 2 * config.mqar.vocab);
  CHECK(verify.seq_len == 2 * config.mqar.seq_len);
  CHECK(verify.kv_pairs == std::vector<int64_t>{4, 8, 16});
  // A rung the sequence cannot hold is refused with the rule.
  config.mqar.kv_pairs = {4, 40};
  CHECK_THROWS_WITH(training::make_task(config), Catch::Contains("at least 4 * kv_pairs"));
}

TEST_CASE("tasks: LM windows are deterministic and the held-out split is the corpus's end", "[training][tasks]") {
  // Letters from a linear congruential generator: every 16-byte window occurs once.
  std::string text;
  for (uint64_t state = 1; text.size() < 20000;) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    text += static_cast<char>('a' + (state >> 33) % 26);
  }
  const auto path = asiarch::testing::write_file(asiarch::testing::fresh_dir("corpus.txt"), text);
  training::TrainConfig config = training::explore_config(training::Task::Lm);
  config.lm.corpus = path;
  config.lm.seq_len = 16;
  config.lm.eval_bytes = 1000;
  const auto task = training::make_task(config);
  const auto a = task->train_batch(3, 8), b = task->train_batch(3, 8), c = task->train_batch(4, 8);
  CHECK(torch::equal(a.inputs, b.inputs));
  CHECK_FALSE(torch::equal(a.inputs, c.inputs));
  CHECK(torch::equal(a.inputs.narrow(1, 1, 15), a.targets.narrow(1, 0, 15)));
  const auto held_out = task->eval_batches(10);
  int64_t windows = 0;
  for (const auto& batch : held_out) windows += batch.inputs.size(0);
  CHECK(windows == (1000 - 1) / 16);
  const size_t first = text.size() - 1000;
  CHECK(held_out[0].inputs[0][0].item<int64_t>() == static_cast<unsigned char>(text[first]));
  CHECK(held_out[0].targets[0][0].item<int64_t>() == static_cast<unsigned char>(text[first + 1]));
  // Training windows never reach into the held-out bytes.
  for (int64_t step = 0; step < 50; ++step) {
    const auto batch = task->train_batch(step, 8);
    for (int64_t row = 0; row < 8; ++row) {
      const auto window = batch.targets[row];
      std::string bytes;
      for (int64_t i = 0; i < 16; ++i) bytes += static_cast<char>(window[i].item<int64_t>());
      CHECK(text.find(bytes) + 16 <= first);
    }
  }
}

TEST_CASE("tasks: the default corpus is GCIDE, a missing one names the path and the fix", "[training][tasks]") {
  if (std::filesystem::exists(training::kDefaultCorpus)) {
    const auto bytes = training::corpus_bytes(training::kDefaultCorpus);
    CHECK(bytes->size() > 10'000'000);
    CHECK(bytes->find("dictionary") != std::string::npos);
    CHECK(training::corpus_bytes(training::kDefaultCorpus) == bytes);  // read once per process
  }
  training::TrainConfig config = quick_config(training::Task::Lm, 2);
  config.lm.corpus = "/nonexistent/corpus.txt";
  const training::TrainMetrics m = training::train_program(baseline("deltanet"), config);
  CHECK_FALSE(m.ok);
  CHECK(m.failure.find("/nonexistent/corpus.txt") != std::string::npos);
  CHECK(m.failure.find("dict-gcide") != std::string::npos);
}

TEST_CASE("checks: the sub-quadratic baselines and the discoveries pass every check by measurement", "[training][checks]") {
  std::vector<lang::Baseline> shipped = lang::baselines();
  shipped.insert(shipped.end(), lang::discoveries().begin(), lang::discoveries().end());
  for (const auto& b : shipped) {
    if (b.reference_only) continue;
    INFO(b.name);
    const lang::Program program = lang::parse(b.text, b.name);
    training::MeasureConfig config;
    config.param_target = lang::derive(program, {config.d_model, config.context}).params;
    const auto checks = training::measure_checks(program, config);
    REQUIRE(checks.size() == 4);
    const char* names[] = {"causality", "complexity", "parameters", "finite"};
    for (size_t i = 0; i < 4; ++i) {
      INFO(checks[i].detail);
      CHECK(checks[i].check == names[i]);
      CHECK(checks[i].passed);
    }
  }
}

TEST_CASE("checks: softmax attention fails complexity, look-ahead fails causality", "[training][checks]") {
  const auto softmax = training::measure_checks(baseline("softmax_attention"), {});
  REQUIRE(softmax.size() == 2);
  CHECK(softmax[0].passed);
  CHECK(softmax[1].check == "complexity");
  CHECK_FALSE(softmax[1].passed);
  for (const char* op : {"seq_mean(a)", "noncausal_conv(a, k=3)"}) {
    INFO(op);
    const auto checks = training::measure_checks(program_text(std::string("  a = linear(x, out=D)\n  b = ") + op + "\n  return b\n"), {});
    REQUIRE(checks.size() == 1);
    CHECK(checks[0].check == "causality");
    CHECK_FALSE(checks[0].passed);
  }
}

TEST_CASE("checks: a mixer outside the parameter budget fails parameters", "[training][checks]") {
  const lang::Program program = baseline("deltanet");
  training::MeasureConfig config;
  config.param_target = lang::derive(program, {config.d_model, config.context}).params * 3;
  config.param_tolerance = 0.5;
  const auto checks = training::measure_checks(program, config);
  REQUIRE(checks.size() == 3);
  CHECK(checks[2].check == "parameters");
  CHECK_FALSE(checks[2].passed);
  CHECK(checks[2].detail.find("outside the budget") != std::string::npos);
}

TEST_CASE("training: failures are named, never scored", "[training]") {
  const training::TrainMetrics overflow = training::train_program(program_text(kOverflowingBody), quick_config(training::Task::Mqar, 5));
  CHECK_FALSE(overflow.ok);
  CHECK(overflow.failure == "nan_loss: step 1");
  CHECK(overflow.failure_kind == msg::FailureKind::NUMERICAL);
  CHECK(overflow.failed_step == 1);
  CHECK(overflow.accuracy == 0);

  const auto unbuildable = program_text("  h = split_heads(x, h=3)\n  y = merge_heads(h)\n  return y\n");
  const training::TrainMetrics model = training::train_program(unbuildable, quick_config(training::Task::Mqar, 5));
  CHECK_FALSE(model.ok);
  CHECK(model.failure.rfind("model: ", 0) == 0);
  CHECK(model.failure_kind == msg::FailureKind::MODEL);

  const auto measured = training::measure_checks(program_text(kOverflowingBody), {});
  CHECK(measured.back().check == "finite");
  CHECK_FALSE(measured.back().passed);
  CHECK(measured.back().failure_kind == msg::FailureKind::NUMERICAL);

  std::atomic<bool> cancelled{true};
  training::TrainConfig config = quick_config(training::Task::Mqar, 5);
  config.cancelled = &cancelled;
  const training::TrainMetrics stopped = training::train_program(baseline("deltanet"), config);
  CHECK(stopped.failure == "cancelled");
  CHECK(stopped.failure_kind == msg::FailureKind::CANCELLED);
}

TEST_CASE("training: the discoveries train on MQAR and LM", "[training]") {
  for (const auto& d : lang::discoveries()) {
    for (const training::Task task : {training::Task::Mqar, training::Task::Lm}) {
      INFO(d.name << (task == training::Task::Mqar ? " on MQAR" : " on LM"));
      const training::TrainMetrics m = training::train_program(lang::parse(d.text, d.name), quick_config(task, 12));
      CHECK(m.ok);
      CHECK(m.failure.empty());
      CHECK(m.steps == 12);
      CHECK(std::isfinite(m.loss));
    }
  }
}

TEST_CASE("training: a program with every added operator trains, bit-identically", "[training]") {
  const lang::Program program = lang::parse(read_file(source("tests/programs/every_addition.arch")), "every_addition");
  for (const training::Task task : {training::Task::Mqar, training::Task::Lm}) {
    const training::TrainMetrics first = training::train_program(program, quick_config(task, 12));
    INFO(first.failure);
    CHECK(first.ok);
    CHECK(first.steps == 12);
    CHECK(std::isfinite(first.loss));
    CHECK(training::train_program(program, quick_config(task, 12)).loss == first.loss);
  }
  // Its penalty term is the auxiliary loss training adds; a program without one has none.
  model::LanguageModel net(program, model::ModelConfig{64, 32, 2, 3, false});
  net->forward(torch::zeros({2, 8}, torch::kInt64));
  REQUIRE(net->auxiliary_loss().defined());
  CHECK(net->auxiliary_loss().item<double>() > 0.0);
  model::LanguageModel plain(baseline("deltanet"), model::ModelConfig{64, 32, 2, 3, false});
  plain->forward(torch::zeros({2, 8}, torch::kInt64));
  CHECK_FALSE(plain->auxiliary_loss().defined());
}

TEST_CASE("training: the same config gives bit-identical metrics", "[training]") {
  for (const auto task : {training::Task::Mqar, training::Task::Lm}) {
    const training::TrainConfig config = quick_config(task, 12);
    std::vector<std::pair<int64_t, double>> losses[2];
    training::TrainMetrics runs[2];
    for (int i = 0; i < 2; ++i) {
      runs[i] = training::train_program(baseline("gated_deltanet"), config, [&](int64_t step, int64_t, double loss) { losses[i].emplace_back(step, loss); });
    }
    REQUIRE(runs[0].ok);
    CHECK(runs[0].steps == 12);
    CHECK(losses[0] == losses[1]);
    CHECK(runs[0].loss == runs[1].loss);
    CHECK(runs[0].accuracy == runs[1].accuracy);
    CHECK(runs[0].bits_per_byte == runs[1].bits_per_byte);
    CHECK(runs[0].peak_memory_bytes == runs[1].peak_memory_bytes);
    CHECK(runs[0].peak_memory_bytes > 0);
    CHECK(runs[0].tokens_per_second > 0);
    if (task == training::Task::Lm) CHECK(runs[0].bits_per_byte == Approx(runs[0].loss / std::log(2.0)));
  }
}

TEST_CASE("cli: asiarch train is bit-identical across runs and exits 0, 1 or 2", "[training][cli]") {
  const auto first = sh(cli("train deltanet --task mqar --steps 8 --seed 3 --json"));
  const auto second = sh(cli("train deltanet --task mqar --steps 8 --seed 3 --json"));
  REQUIRE(first.code == 0);
  REQUIRE(second.code == 0);
  const std::string a = last_line(first.output), b = last_line(second.output);
  CHECK(json_field(a, "status") == "\"ok\"");
  for (const char* key : {"loss", "accuracy", "peak_memory_bytes", "params", "steps"}) {
    INFO(key);
    CHECK(!json_field(a, key).empty());
    CHECK(json_field(a, key) == json_field(b, key));
  }
  CHECK(first.output.find("step 8/8 loss") != std::string::npos);

  const auto lm = sh(cli("train linear_attention --task lm --steps 3 --json"));
  CHECK(lm.code == 0);
  CHECK(!json_field(last_line(lm.output), "bits_per_byte").empty());

  const auto failed = sh(cli("train " + write_program("overflow", kOverflowingBody) + " --task mqar --steps 3 --json"));
  CHECK(failed.code == 1);
  CHECK(json_field(last_line(failed.output), "status") == "\"failed\"");
  CHECK(json_field(last_line(failed.output), "failure") == "\"nan_loss: step 1\"");

  CHECK(sh(cli("train no_such_program --task mqar")).code == 2);
  CHECK(sh(cli("train deltanet --task translation")).code == 2);
  CHECK(sh(cli("train deltanet")).code == 2);
  const auto bad_type = sh(cli("train " + write_program("bad_heads", "  h = split_heads(x, h=3)\n  y = merge_heads(h)\n  return y\n") + " --task mqar"));
  CHECK(bad_type.code == 2);
  CHECK(bad_type.output.find("bad_heads.arch:2:") != std::string::npos);
  const auto no_corpus = sh(cli("train deltanet --task lm --corpus /nonexistent/corpus.txt"));
  CHECK(no_corpus.code == 2);
  CHECK(no_corpus.output.find("/nonexistent/corpus.txt") != std::string::npos);
}

TEST_CASE("cli: arch check --measure runs the measured checks and names a failure", "[training][cli]") {
  const auto good = sh(cli("arch check retnet --measure"));
  CHECK(good.code == 0);
  CHECK(good.output.find("complexity  passed") != std::string::npos);
  const auto quadratic = sh(cli("arch check softmax_attention --measure"));
  CHECK(quadratic.code == 1);
  CHECK(quadratic.output.find("failed check: complexity") != std::string::npos);
}

TEST_CASE("training: at the explore setting the literature's MQAR ordering holds over 3 seeds", "[training][slow]") {
  // The mean over seeds 1-3 of the ladder's accuracy: one seed decides nothing (README, "Recall
  // that measures capacity"), and a mean of three holds only if no seed stays on the plateau.
  auto mean_accuracy = [](const std::string& name) {
    std::vector<training::TrainRun> runs;
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      training::TrainConfig config = training::explore_config(training::Task::Mqar);
      config.seed = seed;
      runs.push_back({baseline(name), config});
    }
    double sum = 0;
    for (const training::TrainMetrics& m : training::train_programs(runs, 3)) {
      INFO(name << ": " << m.failure);
      REQUIRE(m.ok);
      sum += m.accuracy;
    }
    return sum / 3;
  };
  const double softmax = mean_accuracy("softmax_attention"), deltanet = mean_accuracy("deltanet"), linear = mean_accuracy("linear_attention");
  INFO("softmax " << softmax << ", deltanet " << deltanet << ", linear_attention " << linear);
  CHECK(softmax >= 0.9);
  CHECK(deltanet >= 0.9);
  CHECK(linear < deltanet - 0.1);
}

TEST_CASE("training: an explore experiment runs checks, LM and MQAR", "[training][slow]") {
  std::vector<std::string> stages;
  const training::ExperimentMetrics m = training::run_experiment(baseline("gated_deltanet"), {}, [&](const std::string& s) { stages.push_back(s); });
  INFO(m.failure);
  CHECK(m.ok);
  CHECK(stages == std::vector<std::string>({"checks", "lm", "mqar"}));
  CHECK(m.loss > 0);
  CHECK(m.loss < 8);
  CHECK(m.accuracy > 0);
  const training::ExperimentMetrics quadratic = training::run_experiment(baseline("softmax_attention"), {});
  CHECK_FALSE(quadratic.ok);
  CHECK(quadratic.failure.rfind("check complexity: ", 0) == 0);
  CHECK(quadratic.failure_kind == msg::FailureKind::COMPLEXITY);
}
