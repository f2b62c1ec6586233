#pragma once
// The simulated world (docs/ARCHITECTURE.md, "Simulation"): a seeded hidden landscape over program
// features that says what training a program would give, and a cost model that says how long it
// takes.
//
// Landscape. A program is reduced to motif features f_i (kernel kinds, short convolutions,
// normalisations, gates, multiple paths, feature maps). Each feature has an effect on loss and
// on recall (a logit). Effects the literature reports (the priors below, the same claims as the
// cognition base) are perturbed at random per world seed; motifs the literature says nothing
// about get random effects. Sparse pairwise interactions add to both. Improvements saturate
// (tanh caps: diminishing returns), every job adds noise, and risky motifs fail to train with
// some probability; the noise has the shape measured on live runs (`asiarch bench noise`: a
// loss sd relative to the loss, MQAR accuracy that is sometimes stuck on the plateau). Verify-fidelity effects are the explore effects times a per-world transfer
// factor, so explore results predict verify results imperfectly.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/rng.h"
#include "lang/program.h"
#include "messages/asiarch.capnp.h"
#include "scenario/scenario.h"
#include "stats/evidence.h"

namespace asiarch {

struct OracleOutcome {
  bool ok = true;
  std::string failure;  // when !ok
  msg::FailureKind failure_kind = msg::FailureKind::NONE;
  double loss = 0;
  double accuracy = 0;
};

// What a simulated gpu-slot asks for a job's result: the synthetic landscape below, or the
// surrogate of a live run (oracles/surrogate_oracle.h). Read-only once built, shared by all slots.
class Oracle {
 public:
  virtual ~Oracle() = default;
  // `noise` is the job's own stream, so a result does not depend on which slot runs it.
  virtual OracleOutcome evaluate(const lang::Program& program, const lang::ModelShape& shape, msg::Fidelity fidelity, bool baseline,
                                 Rng& noise) const = 0;
};

class SyntheticOracle : public Oracle {
 public:
  explicit SyntheticOracle(const OracleSection& oracle);

  OracleOutcome evaluate(const lang::Program& program, const lang::ModelShape& shape, msg::Fidelity fidelity, bool baseline,
                         Rng& noise) const override;

  static const std::vector<std::string>& feature_names();
  // The motif features of a program in canonical form (lang::canonical), in feature_names() order.
  static std::vector<double> features(const lang::Program& canonical, const lang::ModelShape& shape);

 private:
  struct Effects {
    std::vector<double> loss;    // per feature, negative is better
    std::vector<double> recall;  // per feature, logit change
    std::vector<double> loss_pairs, recall_pairs;  // i < j, row-major upper triangle
  };
  double quality(const Effects& effects, const std::vector<double>& f, bool recall) const;

  std::array<Effects, 2> effects_;  // indexed by msg::Fidelity
  double noise_;                 // relative sd of the loss
  stats::SeedNoise seed_noise_;  // the spread of MQAR accuracy (its loss_sd is unused: noise_ is relative)
  double failure_rate_;
  double effect_scale_;  // 0: the null world (no program differs from another but by noise)
};

struct JobCost {
  double gpu_hours = 0;
  double tokens_per_second = 0;
  uint64_t peak_memory_bytes = 0;
};

// The simulated cost model ([cost]) at the scenario's fidelities and context.
struct CostModel {
  CostSection cost;
  FidelitySection fidelity;
  int64_t context = 2048;
  static CostModel of(const Scenario& scenario);

  const FidelitySpec& spec(msg::Fidelity at) const { return at == msg::Fidelity::VERIFY ? fidelity.verify : fidelity.explore; }
  lang::ModelShape shape(msg::Fidelity at) const { return {spec(at).d_model, context}; }
  // Training cost of the whole model (embedding, `layers` blocks of mixer and SwiGLU MLP, tied
  // head) at one fidelity: 3x the forward FLOPs per token (forward and backward), at the GPU's
  // sustained rate, plus a fixed overhead per job.
  JobCost job(const lang::Program& program, msg::Fidelity at) const;
};

}  // namespace asiarch
