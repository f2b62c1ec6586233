// `asiarch replay`: recompute a recorded campaign and compare it with its log, event by event.
#include <sstream>

#include "campaign/campaign.h"
#include "campaign/run_recorder.h"

namespace asiarch {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Line-by-line difference of two pretty-printed events: the lines that differ, in place.
std::string diff_lines(const std::string& recorded, const std::string& replayed) {
  const auto a = lines_of(recorded), b = lines_of(replayed);
  std::string out;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string* x = i < a.size() ? &a[i] : nullptr;
    const std::string* y = i < b.size() ? &b[i] : nullptr;
    if (x && y && *x == *y) continue;
    if (x) out += "  - recorded: " + *x + "\n";
    if (y) out += "  + replayed: " + *y + "\n";
  }
  return out;
}

std::string kind_of(std::string_view canonical) {
  try {
    msg::CanonicalView<msg::Event> view(canonical);
    return msg::kind_name(view.root().getPayload().which());
  } catch (const kj::Exception&) {
    return "(undecodable)";
  }
}

// Compares each recomputed event, and the chain link it makes, with the recorded log; stops
// the campaign at the first difference.
class ReplayComparer : public ChainSink {
 public:
  explicit ReplayComparer(const storage::RunStore& recorded) : recorded_(recorded) {}

  void begin(const std::string& header_bytes) override {
    ChainSink::begin(header_bytes);
    auto stored = recorded_.chain_link(0);
    if (!stored || *stored != head_) {
      report_.note = "the recorded chain's header hash (h_0) differs from the header's: the header or chain table was changed";
    }
  }

  bool append(uint64_t seq, const std::string& canonical, msg::Event::Reader event) override {
    ChainSink::append(seq, canonical, event);
    report_.events = seq;
    switch (compare_with_recorded(recorded_, seq, canonical, head_)) {
      case RecordedMatch::Same:
        return true;
      case RecordedMatch::Missing:
        return diverge(seq, "(no event: the recorded log ends at seq " + std::to_string(seq - 1) + ")", "", canonical);
      case RecordedMatch::LinkDiffers:
        report_.note += "the event bytes match but the recorded chain link h_" + std::to_string(seq) + " does not; the chain table was changed";
        break;
      case RecordedMatch::EventDiffers:
        break;
    }
    const std::string stored = *recorded_.event(seq);
    return diverge(seq, msg::pretty_event_bytes(stored), kind_of(stored), canonical);
  }

  std::optional<std::string> recorded_event(uint64_t seq) const override { return recorded_.event(seq); }

  ReplayReport finish(const CampaignSummary& summary) {
    report_.digest = summary.digest;
    if (report_.divergence_seq == 0 && recorded_.last_seq() > summary.events) {
      const uint64_t seq = summary.events + 1;
      const std::string stored = *recorded_.event(seq);
      report_.divergence_seq = seq;
      report_.recorded_kind = kind_of(stored);
      report_.replayed_kind = "(none: the replay stopped at seq " + std::to_string(summary.events) + ")";
      report_.diff = diff_lines(msg::pretty_event_bytes(stored), "");
    }
    if (report_.divergence_seq == 0 && finished_summary_differs(summary)) {
      report_.note = "the run's summary (meta \"summary\") differs from the recomputed one: " + summary_text(summary);
    }
    report_.identical = report_.divergence_seq == 0 && report_.note.empty();
    return report_;
  }

 private:
  // A finished run's stored summary is the recomputed one, byte for byte (an undecodable one differs).
  bool finished_summary_differs(const CampaignSummary& summary) const {
    const auto stored = recorded_.meta(meta_key::kSummary);
    if (!stored) return false;
    try {
      if (!msg::CanonicalView<msg::RunSummary>(*stored).root().getFinished()) return false;
    } catch (const kj::Exception&) {
      return true;
    }
    return *stored != summary_bytes(summary);
  }

  static std::string summary_text(const CampaignSummary& s) {
    return "recomputed " + std::to_string(s.events) + " events, " + std::to_string(s.experiments) + " experiments, " +
           std::to_string(s.breakthroughs) + " breakthroughs, stop: " + s.stop_reason;
  }

  bool diverge(uint64_t seq, const std::string& recorded_text, const std::string& recorded_kind, const std::string& replayed) {
    report_.divergence_seq = seq;
    report_.recorded_kind = recorded_kind.empty() ? "(none)" : recorded_kind;
    report_.replayed_kind = kind_of(replayed);
    report_.diff = diff_lines(recorded_text, msg::pretty_event_bytes(replayed));
    return false;
  }

  const storage::RunStore& recorded_;
  ReplayReport report_;
};

}  // namespace

ReplayReport replay_campaign(const std::filesystem::path& dir) {
  auto recorded = storage::RunStore::open(dir, storage::RunStore::Mode::ReadOnly);
  const RecordedRun run = read_recorded_run(*recorded);
  ReplayComparer comparer(*recorded);
  const CampaignSummary summary = run_loop(run.scenario, run.seed, run.header_bytes, comparer, {});
  ReplayReport report = comparer.finish(summary);
  const std::string this_build = std::string(ASIARCH_VERSION) + ", " + ASIARCH_BUILD_FLAGS;
  if (run.build != this_build) {
    report.note += (report.note.empty() ? "" : "; ") + std::string("recorded by asiarch ") + run.build +
                   ", replayed by " + this_build + ": a different binary may decide differently";
  }
  return report;
}

}  // namespace asiarch
