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
    slotAnswer @13 :SlotAnswer;
    slotCrash @14 :SlotCrash;
    jobTimeout @15 :JobTimeout;
    slotRestart @16 :SlotRestart;
    slotFault @17 :SlotFault;
    trainFailure @18 :TrainFailure;
    duplicate @19 :Duplicate;
    ablationRequest @20 :AblationRequest;
    llmRequest @21 :LlmRequest;
    llmReply @22 :LlmReply;
    unrepaired @23 :Unrepaired;
    ablationPlan @24 :AblationPlan;
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
  repairOf @6 :UInt64;     # the engineer's repair of this architecture (0: none); operator "repair:RULE"
  ablationOf @7 :UInt64;   # the analyst's ablation of this breakthrough (0: none); operator "ablation:COMPONENT"
  lrScale @8 :Float64;     # learning-rate multiplier of a retry (0: 1, the fidelity's own rate)
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
  repairOf @13 :UInt64;       # a repaired program: the architecture it repairs (0: none)
  ablationOf @14 :UInt64;     # an ablation job: the breakthrough it removes a component of (0: none)
  lrScale @15 :Float64;       # learning-rate multiplier (0: 1)
  functionalHash @16 :Text;   # the engineer's functional hash (training::functional_hash)
  program @17 :Text;          # the program's text, only when the LLM judge reads it ([llm] judge)
  replicate @18 :UInt32;      # which training of the architecture at this fidelity: 0 at explore; at
                              # verify 0 .. seeds-1 select, the next ones replicate (fresh seeds)
}

struct TrainJob {
  ref @0 :JobRef;
  program @1 :Text;
}

struct Dispatch {
  slot @0 :UInt32;
  job @1 :TrainJob;
  attempt @2 :UInt32;     # 0, then 1, 2, ... when the job is re-queued after a crash or timeout
  timeoutNs @3 :UInt64;   # the coordinator times the job out after this; 0: no timeout (no faults)
}

enum TrainStatus {
  ok @0;
  failed @1;
}

# Why a job failed, set by whoever failed it: the engineer and the analyst act on this, and the
# result's `failure` text keeps the details for people.
enum FailureKind {
  none @0;         # the job did not fail
  numerical @1;    # a loss, gradient or output that is NaN, infinite or diverging
  causality @2;    # a check by measurement (training/measured_checks.cpp) failed
  complexity @3;
  parameters @4;
  model @5;        # the model or its task could not be built or run
  cancelled @6;    # the campaign stopped waiting for the job
  crash @7;        # with [faults]: the slot died with the job, no retries left
  timeout @8;      # with [faults]: no answer in time, no retries left
  garbage @9;      # with [faults]: the slot's answer was no valid result
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
  failureKind @9 :FailureKind;
  failedStep @10 :UInt32;  # the training step a numerical failure was seen at; 0 when unknown
  device @11 :Text;        # live: where it trained, "cpu" or the GPU's model; empty in simulation
  torchVersion @12 :Text;  # live: the libtorch that trained it
}

struct SlotIdle {
  slot @0 :UInt32;
}

# ---- faults (simulation, [faults] in the scenario) ----
# With faults, a gpu-slot answers the coordinator with the bytes of its result, which it checks
# before the analyst sees them; jobs are timed out, re-queued, or failed.

# A slot's answer to the dispatch (jobId, attempt): `result` should be a canonical TrainResult.
struct SlotAnswer {
  slot @0 :UInt32;
  jobId @1 :UInt64;
  attempt @2 :UInt32;
  result @3 :Data;
}

# The slot's process died while it ran (jobId, attempt): what a supervisor's down message says.
struct SlotCrash {
  slot @0 :UInt32;
  jobId @1 :UInt64;
  attempt @2 :UInt32;
}

# The coordinator's own timer for the dispatch (jobId, attempt) on `slot`.
struct JobTimeout {
  slot @0 :UInt32;
  jobId @1 :UInt64;
  attempt @2 :UInt32;
}

# The coordinator's own timer: a crashed or killed slot is back.
struct SlotRestart {
  slot @0 :UInt32;
}

enum FaultKind {
  crash @0;     # the slot died with the job
  timeout @1;   # no answer in time (a hung or late slot): the slot is killed and restarted
  late @2;      # an answer for a dispatch that was already timed out: ignored
  garbage @3;   # an answer that does not decode or holds invalid values: the job fails
}

enum FaultAction {
  requeued @0;  # the job waits for a slot again, as attempt + 1
  failed @1;    # the job ends with a failed trainResult (retries used up, or garbage)
  ignored @2;   # nothing changes (a late answer)
}

# What the coordinator saw and did; logged for `asiarch check` and counted in the summary.
struct SlotFault {
  kind @0 :FaultKind;
  action @1 :FaultAction;
  slot @2 :UInt32;
  jobId @3 :UInt64;
  attempt @4 :UInt32;
  detail @5 :Text;
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
  reusedFrom @10 :UInt64;     # the result is that of this earlier architecture (same function); 0: own result
  repairOf @11 :UInt64;       # the architecture is the engineer's repair of this one (0: not a repair)
  evidence @12 :Evidence;     # at verify: the seeds and the tests behind `breakthrough`
}

# The statistics of a verified architecture against the best baselines (stats/evidence.h).
enum Verdict {
  none @0;           # a baseline, or not compared (too few seeds)
  notBetter @1;      # screening failed: no loss gain beyond the noise, or recall worse than the margin
  notConfirmed @2;   # screening passed, the replication on fresh seeds did not
  confirmed @3;      # both passed: a breakthrough
}

# Mean and sample standard deviation of one metric over seeds.
struct SeedStats {
  n @0 :UInt32;
  mean @1 :Float64;
  sd @2 :Float64;
}

# One stage of the rule: the candidate's seeds against the comparators' (Welch).
struct EvidenceTest {
  loss @0 :SeedStats;
  accuracy @1 :SeedStats;
  baselineLoss @2 :SeedStats;       # the best-loss baseline's seeds of this stage
  baselineAccuracy @3 :SeedStats;   # the best-recall baseline's
  lossLow @4 :Float64;              # 95% interval of (candidate - baseline) loss
  lossHigh @5 :Float64;
  accuracyLow @6 :Float64;          # 95% interval of (candidate - baseline) accuracy
  accuracyHigh @7 :Float64;
  pLoss @8 :Float64;                # one-sided p of the loss gain
  level @9 :Float64;                # the level it was tested at
  recallBound @10 :Float64;         # one-sided lower bound of the accuracy difference
  passed @11 :Bool;
}

struct Evidence {
  verdict @0 :Verdict;
  lossBaseline @1 :UInt64;     # arch id of the baseline with the lowest mean verify loss
  recallBaseline @2 :UInt64;   # arch id of the baseline with the highest mean verify accuracy
  screening @3 :EvidenceTest;
  replication @4 :EvidenceTest;  # set when screening passed
  verified @5 :UInt64;         # candidates the campaign had verified, this one included (the m of alpha / m)
  seeds @6 :UInt32;            # selection seeds per architecture ([fidelity.verify] seeds); replicates follow
}

# The analyst asks the engineer to train an explore winner at the verify fidelity.
struct Promotion {
  archId @0 :UInt64;
  fitness @1 :Float64;
  firstReplicate @2 :UInt32;  # train replicates [firstReplicate, firstReplicate + replicates) at verify
  replicates @3 :UInt32;
}

# A failed explore result on its way to repair: the analyst sends it to the engineer, which
# proposes a repaired program, or answers with Unrepaired when no repair rule fits (then it is
# recorded as a failure).
struct TrainFailure {
  result @0 :TrainResult;
}

# The engineer's answer to a TrainFailure it has no repair for.
struct Unrepaired {
  result @0 :TrainResult;
}

# The engineer found that a proposal computes the same function as an earlier architecture: its
# result is reused, nothing is trained. `ref` describes the duplicate as a job would.
struct Duplicate {
  archId @0 :UInt64;
  sameAs @1 :UInt64;
  kind @2 :Text;       # "structural" (same canonical form) or "functional" (same probe outputs)
  ref @3 :JobRef;
}

# The analyst asks the engineer to train one ablation per component of a breakthrough.
struct AblationRequest {
  archId @0 :UInt64;
}

# The engineer's answer: how many ablation jobs it submitted for the breakthrough.
struct AblationPlan {
  archId @0 :UInt64;
  jobs @1 :UInt32;     # 0: nothing to ablate
}

# ---- the LLM researcher and judge ([researcher] backend = "llm", [llm] judge) ----
# An actor asks the language model through the pseudo-actor `llm`; the coordinator holds the
# request, obtains the reply (from the model, or in replay from the log) and logs it as an input
# event from `llm` to the requester before anything else happens (actors/llm.h).

struct ChatMessage {
  role @0 :Text;     # system, user or assistant (OpenAI chat-completions roles)
  content @1 :Text;
}

struct LlmRequest {
  requestId @0 :UInt64;   # the requester's own numbering
  purpose @1 :Text;       # "propose" (researcher) or "judge" (analyst)
  archId @2 :UInt64;      # the architecture it is about: the parent of a proposal, the judged one
  model @3 :Text;
  temperature @4 :Float64;
  maxTokens @5 :UInt32;
  messages @6 :List(ChatMessage);
  attempt @7 :UInt32;     # 0, then 1, 2, ... for revisions of a proposal that did not check
}

struct LlmReply {
  requestId @0 :UInt64;
  requestHash @1 :Text;       # hex SHA-256 of the canonical LlmRequest it answers
  ok @2 :Bool;
  content @3 :Text;           # the model's message, when ok
  error @4 :Text;             # why not, readable: "timeout after 2 s (2 tries)", "HTTP 500: ...", ...
  errorKind @5 :Text;         # timeout, connection, http, malformed, too_large (empty when ok)
  httpStatus @6 :UInt32;      # of the last try; 0 when no HTTP answer came
  tries @7 :UInt32;           # HTTP attempts, retries included
  promptTokens @8 :UInt64;    # the server's usage figures (0 when it gives none)
  completionTokens @9 :UInt64;
  latencyMs @10 :Float64;     # wall-clock time of the whole call, retries and pauses included
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
  faults @14 :List(FaultCount);   # slot faults seen, by kind (crash, timeout, late, garbage); log-write failures: meta "log_write_failures"
}

struct FaultCount {
  kind @0 :Text;
  count @1 :UInt64;
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
  seeds @10 :List(SeedResult);  # every training at this fidelity, in the order results came in
  evidence @11 :Evidence;       # at verify, once judged
  failureKind @12 :FailureKind; # of the first failed training, as its result said
}

struct SeedResult {
  replicate @0 :UInt32;
  ok @1 :Bool;
  loss @2 :Float64;
  accuracy @3 :Float64;
}

struct InsightRecord {
  id @0 :UInt64;
  archId @1 :UInt64;
  text @2 :Text;
}
