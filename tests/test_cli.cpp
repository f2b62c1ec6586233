// The `asiarch` command line as a user drives it: exit codes, the digest line, replay after a
// one-byte change made with the standard LMDB tools, and errors that name file and line.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "campaign/campaign.h"
#include "lang/program.h"
#include "tests/test_helpers.h"

namespace fs = std::filesystem;

using namespace asiarch::testing;

TEST_CASE("run ends with the digest, the same seed repeats it, inspect reads it", "[cli]") {
  const fs::path a = fresh_dir("run-a"), b = fresh_dir("run-b"), c = fresh_dir("run-c");
  const Result first = sh(cli("run " + source("scenarios/sim-smoke.toml") + " --out " + a.string()));
  REQUIRE(first.code == 0);
  const std::regex digest_line("digest: [0-9a-f]{64}");
  REQUIRE(std::regex_match(last_line(first.output), digest_line));
  const Result second = sh(cli("run " + source("scenarios/sim-smoke.toml") + " --out " + b.string()));
  CHECK(last_line(second.output) == last_line(first.output));
  const Result other = sh(cli("run " + source("scenarios/sim-smoke.toml") + " --seed 2 --out " + c.string()));
  CHECK(last_line(other.output) != last_line(first.output));

  const Result inspect = sh(cli("inspect " + a.string() + " --json"));
  CHECK(inspect.code == 0);
  CHECK(inspect.output.find("\"experiments\": 100") != std::string::npos);
  CHECK(inspect.output.find(last_line(first.output).substr(8)) != std::string::npos);
  CHECK(sh("mdb_stat -a " + a.string()).code == 0);
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

TEST_CASE("inspect reads a run while the campaign is still writing it", "[cli]") {
  const fs::path dir = fresh_dir("live");
  // The run pauses before event 6000 until `release` exists (storage/crash_point.h), so the
  // reads below happen while it runs however fast the machine is.
  const fs::path release = fresh_dir("live-release");
  const pid_t campaign = start_paused("event:6000", release, "run " + source("scenarios/paper-scale.toml") + " --out " + dir.string());
  REQUIRE(campaign > 0);
  const Result running = sh(cli("inspect " + dir.string() + " --json"));
  const int status = finish_paused(campaign, release);
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  INFO(running.output);
  CHECK(running.code == 0);
  CHECK(running.output.find("\"finished\": false") != std::string::npos);
  // The run that was read from outside is the same run as one nobody watched.
  const asiarch::Scenario scenario = asiarch::load_scenario(source("scenarios/paper-scale.toml"));
  CHECK(asiarch::read_summary(dir).digest == asiarch::simulate_campaign(scenario, scenario.seed).digest);
  const Result finished = sh(cli("inspect " + dir.string() + " --json"));
  CHECK(finished.output.find("\"finished\": true") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("bench cli times every command that does not train, against /bin/true", "[cli][bench]") {
  // A benchmark, not a timed test: only that every command ran and got a figure.
  const Result r = sh(cli("bench cli --repeat 1 --json --scenario " + source("scenarios/sim-smoke.toml")));
  INFO(r.output);
  CHECK(r.code == 0);
  for (const char* command : {"/bin/true (reference)", "--help", "arch list", "arch check deltanet", "cognition list", "inspect RUN",
                              "top RUN", "lineage RUN --arch 1"}) {
    CHECK(r.output.find(std::string("{\"command\": \"") + command + "\", \"ms\": ") != std::string::npos);
  }
  CHECK(r.output.find("null") == std::string::npos);
}

TEST_CASE("bench train measures every baseline at both fidelities against softmax attention", "[cli][bench][slow]") {
  // A benchmark, not a timed test: only that every baseline trained and got a figure.
  const Result r = sh(cli("bench train --steps 10 --json"));
  INFO(r.output);
  REQUIRE(r.code == 0);
  for (const char* fidelity : {"explore", "verify"}) {
    for (const auto& baseline : asiarch::lang::baselines()) {
      CHECK(r.output.find(std::string("{\"fidelity\": \"") + fidelity + "\", \"program\": \"" + baseline.name + "\", \"tokens_per_second\": ") !=
            std::string::npos);
    }
  }
  CHECK(r.output.find("\"experiment_seconds_ratio\": ") != std::string::npos);
  CHECK(r.output.find("\"device\": \"cpu\"") != std::string::npos);
  CHECK(sh(cli("bench train --steps 0")).code == 2);

  // At a scenario's sizes (quickstart's explore trains on 64-byte windows), with short experiments.
  const Result sized = sh(cli("bench train --scenario " + source("scenarios/quickstart.toml") + " --steps 10 --experiment-steps 10"));
  INFO(sized.output);
  REQUIRE(sized.code == 0);
  CHECK(sized.output.find("explore: 10 LM steps of 8 x 64 bytes") != std::string::npos);
  CHECK(sh(cli("bench train --scenario /nonexistent.toml")).code == 2);
}

TEST_CASE("bench kernels measures the fused, chunkwise and op-by-op forms of every kernel", "[cli][bench][slow]") {
  // A benchmark, not a timed test: only that every form of every kernel got a figure.
  const Result r = sh(cli("bench kernels --length 40 --batch 1 --heads 1 --json"));
  INFO(r.output);
  REQUIRE(r.code == 0);
  for (const char* kernel : {"linear_attn", "decay_attn_scalar", "decay_attn_vector", "delta_rule", "gated_delta_rule", "swa"}) {
    for (const char* head : {"32", "64"}) {
      const std::regex row(std::string("\\{\"name\": \"") + kernel + "\", \"head_size\": " + head +
                           ", \"tokens_per_second\": [0-9.]+, \"chunkwise_tokens_per_second\": [0-9.]+, \"reference_tokens_per_second\": [0-9.]+");
      CHECK(std::regex_search(r.output, row));
    }
  }
}

TEST_CASE("replay is identical until one byte of one event changes, then names that seq", "[cli][replay]") {
  const fs::path dir = fresh_dir("tamper");
  REQUIRE(sh(cli("run " + source("scenarios/sim-smoke.toml") + " --out " + dir.string())).code == 0);
  const Result clean = sh(cli("replay " + dir.string()));
  CHECK(clean.code == 0);
  CHECK(clean.output.find("replay identical") != std::string::npos);

  // Change one byte of event 40 with the standard tools: dump, edit the value's hex, load.
  const fs::path dump = dir / "events.dump";
  REQUIRE(sh("mdb_dump -s events " + dir.string() + " > " + dump.string()).code == 0);
  std::ifstream in(dump);
  std::stringstream edited;
  const std::string key_40 = " 0000000000000028";
  bool changed = false;
  for (std::string line; std::getline(in, line);) {
    edited << line << "\n";
    if (line == key_40 && std::getline(in, line)) {
      const size_t at = line.size() - 20;  // inside the payload's text, away from the header
      line[at] = line[at] == '0' ? '1' : '0';
      edited << line << "\n";
      changed = true;
    }
  }
  REQUIRE(changed);
  write_file(dump, edited.str());
  REQUIRE(sh("mdb_load -s events -f " + dump.string() + " " + dir.string()).code == 0);

  const Result tampered = sh(cli("replay " + dir.string()));
  CHECK(tampered.code == 1);
  CHECK(tampered.output.find("first divergence at seq 40") != std::string::npos);
  CHECK(tampered.output.find("recorded kind:") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a malformed scenario exits 2 naming file, line and fix, and creates no run", "[cli][scenario]") {
  const fs::path scratch = fresh_dir("scenarios");
  fs::create_directories(scratch);
  const fs::path out = scratch / "never";
  std::ifstream smoke(source("scenarios/sim-smoke.toml"));
  std::stringstream text;
  text << smoke.rdbuf();
  const std::string good = text.str();

  struct Case {
    std::string name, contents, expect;
  };
  std::string typo = good;
  typo.replace(typo.find("gpu_slots"), 9, "gpu_slot");
  std::string wrong_type = good;
  wrong_type.replace(wrong_type.find("gpu_slots = 4"), 13, "gpu_slots = \"four\"");
  const auto replaced = [&good](const std::string& from, const std::string& to) {
    std::string edited = good;
    return edited.replace(edited.find(from), from.size(), to);
  };
  // Each passed validation once and failed only after the run directory existed.
  std::string padded = good;
  padded.append(size_t{2} << 20, '#');
  const std::vector<Case> cases = {
      {"typo.toml", typo, "did you mean 'gpu_slots'"},
      {"type.toml", wrong_type, "must be an integer"},
      {"syntax.toml", "name = \"x\"\n[campaign\n", "not valid TOML"},
      {"twice.toml", replaced("\"retnet\", \"gla\"", "\"retnet\", \"retnet\""), "names 'retnet' twice"},
      {"slow-gpu.toml", replaced("gpu_flops_per_second = 1.0e14", "gpu_flops_per_second = 1e10"), "gpu_flops_per_second"},
      {"overhead.toml", replaced("overhead_gpu_hours = 0.5", "overhead_gpu_hours = 1e6"), "overhead_gpu_hours"},
      {"escape.toml", replaced("name = \"sim-smoke\"", "name = \"../../../x\""), "names the run directory"},
      {"huge.toml", padded, "larger than 1024 KiB"},
  };
  for (const auto& c : cases) {
    const std::string file = write_file(scratch / c.name, c.contents);
    const Result r = sh(cli("run " + file + " --out " + out.string()));
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find(file + ":") != std::string::npos);
    CHECK(r.output.find(c.expect) != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  const Result missing = sh(cli("run " + (scratch / "absent.toml").string() + " --out " + out.string()));
  CHECK(missing.code == 2);
  CHECK_FALSE(fs::exists(out));
  const Result device = sh(cli("run /dev/zero --out " + out.string()));
  CHECK(device.code == 2);
  CHECK(device.output.find("not a regular file") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  fs::remove_all(scratch);
}

TEST_CASE("out-of-range numbers, odd paths and a limited address space give clear errors, not signals or wrong runs", "[cli]") {
  const fs::path scratch = fresh_dir("bad-input");
  fs::create_directories(scratch);
  struct Case {
    std::string args, expect;
  };
  const std::string fifo = (scratch / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string file = write_file(scratch / "a-file", "not a directory");
  const std::vector<Case> cases = {
      {"arch list --d-model 1099511627776", "not in range"},
      {"run " + source("scenarios/sim-smoke.toml") + " --seed -1", "a seed is a whole number"},
      {"run " + source("scenarios/sim-smoke.toml") + " --seed 18446744073709551616", "a seed is a whole number"},
      {"train deltanet --task mqar --seed -1", "a seed is a whole number"},
      {"train deltanet --task mqar --threads 4096", "not in range"},
      {"train deltanet --task mqar --steps 2 --save-weights " + fifo, "is not a regular file"},
      {"run " + source("scenarios/sim-smoke.toml") + " --out " + file, "cannot create the run directory"},
  };
  for (const auto& c : cases) {
    const Result r = sh(cli(c.args));
    INFO(c.args << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find(c.expect) != std::string::npos);
  }
  CHECK(fs::status(fifo).type() == fs::file_type::fifo);
  CHECK(read_file(file) == "not a directory");

  // The largest seed is a seed like any other.
  const fs::path run = scratch / "run";
  const Result largest = sh(cli("run " + source("scenarios/sim-smoke.toml") + " --seed 18446744073709551615 --out " + run.string()));
  CHECK(largest.code == 0);
  CHECK(largest.output.find("(seed 18446744073709551615)") != std::string::npos);
  // Under an address-space limit smaller than the store's usual 8 GiB map, runs can still be read.
  const Result limited = sh("ulimit -v 6000000 && " + cli("inspect " + run.string()));
  INFO(limited.output);
  CHECK(limited.code == 0);
  CHECK(limited.output.find("finished") != std::string::npos);
  fs::remove_all(scratch);
}

TEST_CASE("arch list, show and check", "[cli][arch]") {
  const Result list = sh(cli("arch list"));
  REQUIRE(list.code == 0);
  for (const char* name : {"linear_attention", "retnet", "gla", "mamba2", "deltanet", "gated_deltanet", "softmax_attention"}) {
    CHECK(list.output.find(name) != std::string::npos);
  }
  CHECK(sh(cli("arch show gated_deltanet")).code == 0);
  CHECK(sh(cli("arch check deltanet")).code == 0);

  const fs::path scratch = fresh_dir("programs");
  fs::create_directories(scratch);
  const std::string bad = write_file(scratch / "bad.arch", "program bad\n  q = linear(x, out=D)\n  y = silu(k)\n  return y\n");
  const Result r = sh(cli("arch check " + bad));
  CHECK(r.code == 2);
  CHECK(r.output.find(bad + ":3:") != std::string::npos);
  CHECK(sh(cli("arch check no_such_program")).code == 2);
  CHECK(sh(cli("arch")).code == 2);  // a subcommand is required
  fs::remove_all(scratch);
}
