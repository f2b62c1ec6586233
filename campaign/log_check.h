#pragma once
// `asiarch check`: the invariants every campaign's event log keeps, checked from the run
// directory alone (no actor runs; recomputing the campaign is `asiarch replay`).
//
//   chain    h_0 = SHA-256(meta "header"); every link h_n = chain_next(h_{n-1}, n, event n); the
//            event keys are exactly 1..N; every event decodes and its seq field is its key.
//   routes   every event is one its sender's interface sends to its receiver, and one the
//            receiver accepts; only a live slot's result and the model's reply are input events
//            (actors/interfaces.h).
//   time     virtual time never runs backwards in the delivery order, which is reconstructed by
//            simulating the coordinator's queue (log_check.cpp says how).
//   jobs     a dispatch names a trainJob sent earlier, not ended, not running, as the next
//            attempt; a trainResult ends, exactly once, a job dispatched earlier to the slot that
//            sends it (or, with [faults], the slot the coordinator names); a slotFault that
//            re-queues or fails a job names its running dispatch, a failed job gets a failed
//            trainResult, an ignored late answer is of a dispatch no longer running; no more
//            jobs run than GPU slots.
//   pool     proposal arch ids are unique; a trainJob trains a proposed arch; a scored poolUpdate
//            follows an ok trainResult with finite metrics of that arch at that fidelity.
//   llm      an llmRequest is a derived event to `llm`; an llmReply is an input event from `llm`
//            to the requester that answers one of its open requests (same requestId, and
//            requestHash the SHA-256 of that request's canonical bytes), exactly once; in the
//            delivery order it answers the delivery of its request (time).
//   summary  the summary (meta "summary") names an event count and digest that are a prefix of
//            the chain (the whole log once the run finished); its counts of proposals, rejections
//            and slot faults are the log's up to there, and its experiments, breakthroughs, GPU
//            hours and virtual time what the deliveries before that event add up to; its name,
//            seed and target are the header's; a finished one ends with the coordinator's stop.
//   tables   archs, results and insights hold exactly the projection of the log
//            (campaign/lineage_projection.h), byte for byte: a changed, extra or missing record is
//            named with its table and key.
//   meta     only the keys a run writes, each in its format; while the store ends where
//            DIR/head says, the table hashes to the SHA-256 recorded there (this binds the values
//            the log does not determine: a failure's text, the count of starts).
//   head     the store holds the event and chain link that DIR/head recorded at the last commit
//            (storage/committed_head.h): a store set back to an older meta page is found.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace asiarch {

struct LogViolation {
  uint64_t seq = 0;         // the event where the log breaks the invariant; 0 is the header
  std::string invariant;    // chain, routes, time, jobs, pool, llm, summary, tables, meta or head
  std::string explanation;  // what is wrong, in words
};

struct LogCheckReport {
  uint64_t events = 0;                    // events read (up to the violation, if there is one)
  std::vector<std::string> invariants;    // the invariants checked, in the order above
  std::optional<LogViolation> violation;  // the first one found, walking the log in seq order
};

// Checks the run in `dir`. Throws storage::StorageError when `dir` holds no readable run (no
// run store, a damaged or foreign data.mdb, no run header).
LogCheckReport check_run_log(const std::filesystem::path& dir);

}  // namespace asiarch
