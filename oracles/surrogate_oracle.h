#pragma once
// The surrogate oracle (`[oracle] kind = "surrogate"`, `run = "DIR"`): simulation whose results
// come from a previous live run's recorded training results (its results and archs tables),
// generalised to new programs by nearest neighbours in faiss.
//
// A program is keyed by its algebraic normal form (lang::algebraic_normal_form), and embedded
// by the text of that form's structure: each operator with its attributes and each
// operator-to-operator edge as a word, through the cognition base's hashed n-gram embedding
// (retrieval::embed_text), so the embedding is deterministic. At one fidelity:
// - a program recorded at that fidelity gets its recorded result (the first recorded, by arch
//   id), without noise;
// - any other gets the distance-weighted mean (weights 1 / (distance + 0.05)) of its k nearest
//   recorded programs' loss and accuracy plus the job's seeded noise ([oracle] noise), and fails
//   with the weighted share of failed neighbours as its probability.
// A fidelity the run recorded nothing at borrows the other fidelity's records. Job durations
// come from the cost model, as with the synthetic oracle.
#include <memory>
#include <string>
#include <vector>

#include "oracles/synthetic_oracle.h"

namespace asiarch {

class SurrogateOracle : public Oracle {
 public:
  // Reads oracle.run. Throws ScenarioError (naming `scenario_file`) when the directory is not a
  // run, is not a live run, or holds no training result.
  SurrogateOracle(const OracleSection& oracle, const std::string& scenario_file);
  ~SurrogateOracle() override;

  OracleOutcome evaluate(const lang::Program& program, const lang::ModelShape& shape, msg::Fidelity fidelity, bool baseline,
                         Rng& noise) const override;

  size_t recorded(msg::Fidelity fidelity) const;  // training results it holds at a fidelity

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The deterministic embedding of a program's structure (unit length, retrieval::kEmbeddingDim).
std::vector<float> program_embedding(const lang::Program& program);

}  // namespace asiarch
