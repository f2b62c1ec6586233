#pragma once
// Statistics for claims of "better": summaries of a few seeds, Student's t distribution, and
// Welch's interval for the difference of two means. Seeds of a small model vary a lot (the
// README's noise table), so every comparison in asiarch goes through these functions.
//
// Why Welch: the two sides of a comparison are trained with seeds of their own, and programs
// with different parameter shapes draw different initial weights even from one seed, so a
// paired design buys little correlation; the two sides also differ in spread (a program that
// sometimes stays on the MQAR plateau has a far larger sd than one that never does), which
// Student's pooled test would ignore. References: Welch, Biometrika 34 (1947); Satterthwaite,
// Biometrics Bulletin 2 (1946) for the degrees of freedom.
#include <cstddef>
#include <optional>
#include <vector>

namespace asiarch::stats {

// Mean and sample standard deviation (n - 1 in the denominator; 0 when n < 2).
struct Summary {
  size_t n = 0;
  double mean = 0;
  double sd = 0;
};
Summary summarize(const std::vector<double>& values);

// Student's t distribution with `df` > 0 degrees of freedom (df may be fractional, as Welch's
// are): P(T <= t), and the t with P(T <= t) = p for p in (0, 1).
double student_t_cdf(double t, double df);
double student_t_quantile(double p, double df);

// mean(a) - mean(b) with Welch's standard error and degrees of freedom.
struct Difference {
  double estimate = 0;
  double se = 0;
  double df = 0;
  double low = 0, high = 0;  // the two-sided interval at the confidence it was made with
  // One-sided p-values: how likely an estimate this far below (above) zero is when the true
  // difference is zero. With se = 0 (both sides constant) they are 0 or 1.
  double p_below() const;
  double p_above() const;
  // The one-sided lower (upper) confidence bound at level 1 - alpha.
  double lower_bound(double alpha) const;
  double upper_bound(double alpha) const;
};

// nullopt when a side has fewer than 2 values: one seed gives no interval.
std::optional<Difference> welch(const Summary& a, const Summary& b, double confidence = 0.95);

// The smallest true difference that a one-sided Welch test at level alpha detects with
// probability `power`, for n seeds per side of spread sd each (normal approximation with
// t quantiles at 2n - 2 degrees of freedom). Infinity for n < 2.
double minimum_detectable_difference(double sd, size_t n, double alpha = 0.05, double power = 0.8);

}  // namespace asiarch::stats
