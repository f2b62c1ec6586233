@0xb56e515c5bc2afd1;
# Every message the actors exchange, the event envelope of the log, the run header and the
# lineage records. Actors talk only in these types: an actor receives one canonical `Event` and
# answers with an `Outbox` of the messages it sends.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("asiarch::msg");

enum Fidelity {
  explore @0;   # tiny models, cheap
  verify @1;    # larger, longer: where breakthroughs are judged
}

# ---- envelope ----

# One entry of the event log. `payload`'s union tag is the event's kind.
struct Event {
  seq @0 :UInt64;      # 1, 2, 3, ... in the order messages were sent
  vtimeNs @1 :UInt64;  # virtual time of delivery
  from @2 :Text;       # actor name: coordinator, researcher, engineer, gpu-slot-N, analyst, cognition
  to @3 :Text;
  input @4 :Bool;      # an input event (measured from outside) rather than a derived one
  payload @5 :Payload;
}

# What an actor hands back to the coordinator after handling one event.
struct Outbox {
  messages @0 :List(Outgoing);
}

struct Outgoing {
  delayNs @0 :UInt64;  # delivered at (current virtual time + delayNs)
  to @1 :Text;
  payload @2 :Payload;
}

struct Payload {
  union {
    start @0 :CampaignStart;
    insightQuery @1 :InsightQuery;
    insightReply @2 :InsightReply;
    proposal @3 :Proposal;
    rejection @4 :Rejection;
    trainJob @5 :TrainJob;
    dispatch @6 :Dispatch;
    trainResult @7 :TrainResult;
    slotIdle @8 :SlotIdle;
    poolUpdate @9 :PoolUpdate;
    insight @10 :Insight;
    stop @11 :CampaignStop;
    promotion @12 :Promotion;
  }
}

# ---- the loop ----

struct CampaignStart {
  startPrograms @0 :List(Text);  # names of the shipped programs the campaign starts from
  gpuSlots @1 :UInt32;
}

struct InsightQuery {
  requestId @0 :UInt64;
  text @1 :Text;
  k @2 :UInt32;
}

struct InsightHit {
  entryId @0 :Text;
  title @1 :Text;
  insight @2 :Text;
  score @3 :Float32;
  rewrites @4 :List(Text);
}

struct InsightReply {
  requestId @0 :UInt64;
  hits @1 :List(InsightHit);
}

struct Proposal {
  archId @0 :UInt64;
  parentIds @1 :List(UInt64);
  program @2 :Text;      # text form of the architecture language
  operator @3 :Text;     # the mutation that made it, or "baseline"
  motivation @4 :Text;   # why: the insight or observation it follows
  insightIds @5 :List(Text);
}

struct Rejection {
  archId @0 :UInt64;
  check @1 :Text;    # parse, type, causality, complexity, parameters, duplicate
  reason @2 :Text;
}

# What identifies a training job and travels with its result.
struct JobRef {
  jobId @0 :UInt64;
  archId @1 :UInt64;
  fidelity @2 :Fidelity;
  baseline @3 :Bool;
  parentIds @4 :List(UInt64);
  structuralHash @5 :Text;
  params @6 :Int64;           # mixer parameters per layer
  flopsPerToken @7 :Float64;  # mixer FLOPs per token per layer
  stateSize @8 :Int64;
  novelty @9 :Float64;        # engineer's judge input, in [0, 1]
  statements @10 :UInt32;
  operator @11 :Text;         # the mutation that made the program, or "baseline"
  baselineName @12 :Text;     # for baselines: the shipped program's name
}

struct TrainJob {
  ref @0 :JobRef;
  program @1 :Text;
}

struct Dispatch {
  slot @0 :UInt32;
  job @1 :TrainJob;
}

enum TrainStatus {
  ok @0;
  failed @1;
}

struct TrainResult {
  ref @0 :JobRef;
  slot @1 :UInt32;
  status @2 :TrainStatus;
  failure @3 :Text;        # why, when failed
  loss @4 :Float64;        # held-out loss
  accuracy @5 :Float64;    # benchmark (MQAR) accuracy in [0, 1]
  gpuHours @6 :Float64;
  tokensPerSecond @7 :Float64;
  peakMemoryBytes @8 :UInt64;
}

struct SlotIdle {
  slot @0 :UInt32;
}

enum Outcome {
  scored @0;
  rejected @1;
  failed @2;
}

struct PoolUpdate {
  archId @0 :UInt64;
  fidelity @1 :Fidelity;
  outcome @2 :Outcome;
  fitness @3 :Float64;
  loss @4 :Float64;
  accuracy @5 :Float64;
  breakthrough @6 :Bool;
  breakthroughs @7 :UInt32;   # cumulative count
  diagnosis @8 :Text;         # what the analyst observed; the next cognition query
  promoted @9 :Bool;          # sent on to the verify fidelity
}

# The analyst asks the engineer to train an explore winner at the verify fidelity.
struct Promotion {
  archId @0 :UInt64;
  fitness @1 :Float64;
}

struct Insight {
  insightId @0 :UInt64;
  archId @1 :UInt64;
  text @2 :Text;
  rewrites @3 :List(Text);
}

struct CampaignStop {
  reason @0 :Text;
  experiments @1 :UInt64;
  breakthroughs @2 :UInt32;
}

# ---- run store records ----

struct RunHeader {
  scenario @0 :Data;         # the scenario file's bytes, as given
  scenarioFile @1 :Text;     # its name when the run began
  seed @2 :UInt64;
  version @3 :Text;
  buildFlags @4 :Text;
}

struct RunSummary {
  scenarioName @0 :Text;
  seed @1 :UInt64;
  events @2 :UInt64;
  experiments @3 :UInt64;
  breakthroughs @4 :UInt32;
  gpuHours @5 :Float64;
  vtimeNs @6 :UInt64;
  digest @7 :Text;           # hex of the chain head at the last commit
  finished @8 :Bool;
  stopReason @9 :Text;
  proposals @10 :UInt64;
  rejections @11 :UInt64;
  rejectionsByCheck @12 :List(CheckCount);
  targetExperiments @13 :UInt64;  # the scenario's max_experiments
}

struct CheckCount {
  check @0 :Text;
  count @1 :UInt64;
}

struct ArchRecord {
  id @0 :UInt64;
  parentIds @1 :List(UInt64);
  program @2 :Text;
  operator @3 :Text;
  motivation @4 :Text;
  vtimeNs @5 :UInt64;
}

struct ResultRecord {
  archId @0 :UInt64;
  fidelity @1 :Fidelity;
  outcome @2 :Outcome;
  reason @3 :Text;          # rejection check and reason, or training failure
  loss @4 :Float64;
  accuracy @5 :Float64;
  gpuHours @6 :Float64;
  fitness @7 :Float64;
  breakthrough @8 :Bool;
  vtimeNs @9 :UInt64;
}

struct InsightRecord {
  id @0 :UInt64;
  archId @1 :UInt64;
  text @2 :Text;
}
