#pragma once
// The statistics of `asiarch sweep`: least-squares lines, Student's t quantiles and t-intervals
// of a mean. Header-only, so that the tests check the maths without the command-line program.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace asiarch::tools {

struct LineFit {
  double slope = 0, intercept = 0;
  double r2 = 0;  // 1 when every point lies on the line (a constant y included)
  size_t points = 0;
};

// Ordinary least squares of y on x. Throws std::invalid_argument for fewer than two points, sizes
// that differ, or x all equal (no slope exists).
inline LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 2) throw std::invalid_argument("a line needs two or more (x, y) points");
  const double n = static_cast<double>(x.size());
  double mean_x = 0, mean_y = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mean_x += x[i];
    mean_y += y[i];
  }
  mean_x /= n;
  mean_y /= n;
  double sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxx += (x[i] - mean_x) * (x[i] - mean_x);
    sxy += (x[i] - mean_x) * (y[i] - mean_y);
    syy += (y[i] - mean_y) * (y[i] - mean_y);
  }
  if (sxx == 0) throw std::invalid_argument("every x is the same: no slope can be fitted");
  LineFit fit;
  fit.points = x.size();
  fit.slope = sxy / sxx;
  fit.intercept = mean_y - fit.slope * mean_x;
  double residual = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double r = y[i] - (fit.intercept + fit.slope * x[i]);
    residual += r * r;
  }
  // Relative to the spread of y, so that rounding in a perfect fit still gives exactly 1.
  fit.r2 = syy == 0 || residual <= 1e-24 * syy ? 1.0 : 1.0 - residual / syy;
  return fit;
}

// The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's method).
inline double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(b, a, 1 - x);
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x)) / a;
  constexpr double kTiny = 1e-300;
  double f = 1, c = 1, d = 0;
  for (int i = 0; i <= 400; ++i) {
    const int m = i / 2;
    double numerator;
    if (i == 0) numerator = 1;
    else if (i % 2 == 0) numerator = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    else numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + numerator * d;
    d = 1 / (std::fabs(d) < kTiny ? kTiny : d);
    c = 1 + numerator / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    f *= c * d;
    if (std::fabs(1 - c * d) < 1e-15) break;
  }
  return front * (f - 1);
}

// P(T <= t) for Student's t with `df` degrees of freedom. Both arguments of the incomplete beta
// are computed directly (not as 1 - the other), so that neither the centre nor the tails lose
// precision.
inline double student_t_cdf(double t, double df) {
  const double centre = t * t / (df + t * t), tail = df / (df + t * t);
  const double upper_half = centre < tail ? 0.5 - 0.5 * incomplete_beta(0.5, df / 2, centre) : 0.5 * incomplete_beta(df / 2, 0.5, tail);
  return t >= 0 ? 1 - upper_half : upper_half;
}

// The t with P(T <= t) = p, by bisection (p in (0, 1)).
inline double student_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1) || !(df > 0)) throw std::invalid_argument("a t quantile needs 0 < p < 1 and df > 0");
  double low = -1e6, high = 1e6;
  for (int i = 0; i < 200; ++i) {
    const double mid = (low + high) / 2;
    (student_t_cdf(mid, df) < p ? low : high) = mid;
  }
  return (low + high) / 2;
}

struct MeanInterval {
  double mean = 0, sd = 0;
  // mean -/+ t(1 - (1 - level) / 2, n - 1) * sd / sqrt(n); NaN with fewer than two values.
  double low = std::numeric_limits<double>::quiet_NaN(), high = std::numeric_limits<double>::quiet_NaN();
  size_t n = 0;
};

// The sample mean with its two-sided t-interval at `level` (0.95: a 95% interval).
inline MeanInterval mean_interval(const std::vector<double>& values, double level = 0.95) {
  MeanInterval m;
  m.n = values.size();
  if (values.empty()) return m;
  for (double v : values) m.mean += v;
  m.mean /= static_cast<double>(m.n);
  if (m.n < 2) return m;
  double ss = 0;
  for (double v : values) ss += (v - m.mean) * (v - m.mean);
  m.sd = std::sqrt(ss / static_cast<double>(m.n - 1));
  const double half = student_t_quantile(1 - (1 - level) / 2, static_cast<double>(m.n - 1)) * m.sd / std::sqrt(static_cast<double>(m.n));
  m.low = m.mean - half;
  m.high = m.mean + half;
  return m;
}

}  // namespace asiarch::tools
