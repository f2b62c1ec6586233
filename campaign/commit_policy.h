#pragma once
// When the campaign's loop makes its log durable (EventSink::commit). A process killed between
// two commits loses the events since the last one; `asiarch resume` recomputes derived events,
// so losing them costs only time, but an input (a live job's result, the model's reply) cannot
// be recomputed. So the loop commits:
//   - once the run header is written, before any actor starts (readers see the run at once);
//   - after every `every_events` events (derived events);
//   - after each input event is logged, before anything acts on it;
//   - once at the end, whether the campaign finished or failed.
// Commits do not enter the log, so the policy changes no digest.
#include <cstdint>

namespace asiarch {

struct CommitPolicy {
  // A commit costs an LMDB transaction and the summary's encoding; a crash loses at most this
  // many derived events.
  uint64_t every_events = 4096;
  bool due_after(uint64_t seq) const { return seq % every_events == 0; }
};

}  // namespace asiarch
