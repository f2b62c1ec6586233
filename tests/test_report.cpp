// `asiarch report`, `lineage` and `top` on small runs: the page is self-contained, holds the
// lineage graph and the plots, and renders to a screenshot that is not blank in headless
// Chromium; lineage and top answer with the right exit codes, also while a campaign runs.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "campaign/campaign.h"
#include "tests/test_helpers.h"

namespace fs = std::filesystem;
using namespace asiarch;
using namespace asiarch::testing;

namespace {

size_t count_of(const std::string& text, const std::string& word) {
  size_t count = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++count;
  return count;
}

// Runs the smoke campaign into `dir` and once more elsewhere; both must end with one digest.
void run_smoke_twice(const fs::path& dir) {
  const fs::path twin = dir.string() + "-twin";
  const Result a = sh(cli("run " + source("scenarios/sim-smoke.toml") + " --out " + dir.string()));
  const Result b = sh(cli("run " + source("scenarios/sim-smoke.toml") + " --out " + twin.string()));
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  REQUIRE(last_line(a.output) == last_line(b.output));
  fs::remove_all(twin);
}

// Decodes an 8-bit RGB or RGBA PNG with python3's standard library and prints
// "<distinct colours> <share of pixels that are not white>".
constexpr const char* kPngStats = R"(
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    size, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + size]
    pos += 12 + size
    if kind == b'IHDR':
        width, height, depth, colour_type = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
assert depth == 8 and colour_type in (2, 6), 'unexpected PNG format'
bpp = 3 if colour_type == 2 else 4
stride = width * bpp
raw = zlib.decompress(idat)
prev = bytearray(stride)
colours, coloured = set(), 0
for y in range(height):
    start = y * (stride + 1)
    kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
    if kind == 1:
        for i in range(bpp, stride): row[i] = (row[i] + row[i - bpp]) & 255
    elif kind == 2:
        row = bytearray((a + b) & 255 for a, b in zip(row, prev))
    elif kind == 3:
        for i in range(stride): row[i] = (row[i] + ((row[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
    elif kind == 4:
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    pixels = [bytes(row[i:i + 3]) for i in range(0, stride, bpp)]
    colours.update(pixels)
    coloured += sum(1 for p in pixels if p != b'\xff\xff\xff')
    prev = row
print(len(colours), coloured / (width * height))
)";

}  // namespace

TEST_CASE("report writes one self-contained page with the lineage graph and the plots", "[report][cli]") {
  const fs::path dir = fresh_dir("report");
  run_smoke_twice(dir);
  const Result r = sh(cli("report " + dir.string()));
  INFO(r.output);
  REQUIRE(r.code == 0);
  const fs::path index = dir / "report" / "index.html";
  const std::string html = read_file(index);
  // The lineage graph is inline SVG from Graphviz, with the breakthroughs marked.
  const size_t graph = html.find("<div class=\"graph\" id=\"lineage\"><svg");
  CHECK(graph != std::string::npos);
  CHECK(html.find("class=\"node\"", graph) != std::string::npos);
  CHECK(html.find("class=\"edge\"", graph) != std::string::npos);  // parent -> child links
  // Three plots, embedded as SVG data; their sources are kept beside the page.
  CHECK(count_of(html, "src=\"data:image/svg+xml;base64,") == 3);
  for (const char* plot : {"fitness", "pool_best", "pareto"}) {
    INFO(plot);
    CHECK(fs::file_size(dir / "report" / (std::string(plot) + ".png")) > 1000);
    CHECK(fs::exists(dir / "report" / (std::string(plot) + ".gp")));
  }
  for (const char* part : {"Best architectures", "Baselines", "deltanet", "Motivation.", "<pre>", "digest"}) {
    INFO(part);
    CHECK(html.find(part) != std::string::npos);
  }
  // Nothing is fetched from elsewhere.
  for (const char* external : {"<script", "<link", "src=\"http", "href=\"http", "url(http", "@import"}) {
    INFO(external);
    CHECK(html.find(external) == std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("the report renders in headless Chromium to a screenshot that is not blank", "[report][cli][chromium]") {
  const Result which = sh("command -v chromium || command -v chromium-browser");
  if (which.code != 0) FAIL("chromium is not installed: install Debian's chromium (`make deps` does) to check the report renders");
  const std::string chromium = which.output.substr(0, which.output.find('\n'));
  const fs::path dir = fresh_dir("screenshot");
  run_smoke_twice(dir);
  REQUIRE(sh(cli("report " + dir.string())).code == 0);
  const fs::path png = dir / "screenshot.png", profile = dir / "chromium-profile";
  const Result shot = sh("timeout 180 " + chromium +
                         " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
                         " --disable-component-update --disable-sync --user-data-dir=" + profile.string() + " --screenshot=" + png.string() +
                         " --window-size=1280,2000 file://" + fs::absolute(dir / "report" / "index.html").string());
  INFO(shot.output);
  REQUIRE(fs::exists(png));
  const std::string script = write_file(dir / "png_stats.py", kPngStats);
  const Result stats = sh("python3 " + script + " " + png.string());
  INFO(stats.output);
  REQUIRE(stats.code == 0);
  std::istringstream numbers(stats.output);
  size_t colours = 0;
  double coloured = 0;
  numbers >> colours >> coloured;
  // Text, tables, the graph and the plots: hundreds of colours, and much of the page not white.
  CHECK(colours > 200);
  CHECK(coloured > 0.03);
  fs::remove_all(dir);
}

TEST_CASE("top lists the best architectures and lineage walks one back to the baselines", "[report][cli]") {
  const fs::path dir = fresh_dir("lineage");
  run_smoke_twice(dir);
  const Result top = sh(cli("top " + dir.string() + " -n 5"));
  INFO(top.output);
  REQUIRE(top.code == 0);
  CHECK(top.output.rfind("rank", 0) == 0);
  CHECK(count_of(top.output, "\n") == 6);

  const Result json = sh(cli("top " + dir.string() + " -n 3 --json"));
  REQUIRE(json.code == 0);
  CHECK(count_of(json.output, "\"rank\": ") == 3);
  for (const char* key : {"\"id\": ", "\"fitness\": ", "\"loss\": ", "\"accuracy\": ", "\"fidelity\": ", "\"operator\": ", "\"breakthrough\": "}) {
    INFO(key);
    CHECK(count_of(json.output, key) == 3);
  }
  std::smatch best;
  REQUIRE(std::regex_search(json.output, best, std::regex("\"rank\": 1, \"id\": (\\d+)")));
  const std::string best_id = best[1].str();

  const Result lineage = sh(cli("lineage " + dir.string() + " --arch " + best_id));
  INFO(lineage.output);
  REQUIRE(lineage.code == 0);
  CHECK(lineage.output.find("ancestry of ") == 0);
  CHECK(lineage.output.find("(start program)") != std::string::npos);  // it goes back to a baseline
  CHECK(lineage.output.find("\n#" + best_id + "  ") != std::string::npos);
  CHECK(lineage.output.find("motivation: ") != std::string::npos);
  CHECK(std::regex_search(lineage.output, std::regex("fitness [+-]0\\.\\d{4}")));

  const Result unknown = sh(cli("lineage " + dir.string() + " --arch 999999"));
  CHECK(unknown.code == 2);
  CHECK(unknown.output.find("has no architecture 999999; its ids run from 1 to ") != std::string::npos);
  for (const char* command : {"lineage /nonexistent/run --arch 1", "top /nonexistent/run", "report /nonexistent/run"}) {
    const Result missing = sh(cli(command));
    INFO(command << "\n" << missing.output);
    CHECK(missing.code == 2);
    CHECK(missing.output.find("not a run directory") != std::string::npos);
  }
  CHECK(sh(cli("lineage " + dir.string())).code == 2);  // --arch is required
  for (const char* help : {"lineage --help", "top --help", "report --help"}) CHECK(sh(cli(help)).code == 0);
  fs::remove_all(dir);
}

TEST_CASE("top and lineage read a campaign while it is still running", "[report][cli]") {
  const fs::path dir = fresh_dir("top-live");
  fs::create_directories(dir);
  const std::string scenario_file = source("scenarios/paper-scale.toml");
  const fs::path run = dir / "run";
  // The run pauses before event 6000 (after its first commit, at 4096) until `release`
  // exists: the reads below happen while it certainly runs, however fast the machine
  // (storage/crash_point.h).
  const fs::path release = dir / "release";
  const pid_t campaign = start_paused("event:6000", release, "run " + scenario_file + " --out " + run.string());
  REQUIRE(campaign > 0);
  std::vector<std::string> failures;
  for (const std::string& command : {"top " + run.string() + " --json", "lineage " + run.string() + " --arch 1", "inspect " + run.string()}) {
    const Result r = sh(cli(command));
    if (r.code != 0) failures.push_back(command + ": " + r.output);
  }
  const Result inspected = sh(cli("inspect " + run.string()));
  const int status = finish_paused(campaign, release);
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  INFO(inspected.output);
  CHECK(failures.empty());
  CHECK(inspected.output.find("running") != std::string::npos);
  // The run that was read from outside is the campaign nobody watched.
  CHECK(read_summary(run).digest == simulate_campaign(load_scenario(scenario_file), 1).digest);
  fs::remove_all(dir);
}
