#include "stats/stats.h"

#include <cmath>
#include <limits>

namespace asiarch::stats {
namespace {

// The continued fraction of the regularised incomplete beta function, evaluated by the modified
// Lentz method (Press et al., Numerical Recipes, 3rd ed., section 6.4).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1) < 1e-16) break;
  }
  return h;
}

// I_x(a, b), the regularised incomplete beta function.
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  // The fraction converges fast for x below (a + 1) / (a + b + 2); otherwise use the symmetry.
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

}  // namespace

Summary summarize(const std::vector<double>& values) {
  Summary s;
  s.n = values.size();
  if (s.n == 0) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(s.n);
  if (s.n < 2) return s;
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.sd = std::sqrt(squares / static_cast<double>(s.n - 1));
  return s;
}

double student_t_cdf(double t, double df) {
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  const double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t));  // P(T > |t|)
  return t >= 0 ? 1 - tail : tail;
}

double student_t_quantile(double p, double df) {
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  // Bisection: the cdf is monotone, and 200 halvings reach the resolution of a double.
  double low = -1, high = 1;
  while (student_t_cdf(low, df) > p) low *= 2;
  while (student_t_cdf(high, df) < p) high *= 2;
  for (int i = 0; i < 200 && high - low > 0; ++i) {
    const double mid = 0.5 * (low + high);
    if (mid == low || mid == high) break;
    (student_t_cdf(mid, df) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

double Difference::p_below() const {
  if (se == 0) return estimate < 0 ? 0.0 : 1.0;
  return student_t_cdf(estimate / se, df);
}

double Difference::p_above() const {
  if (se == 0) return estimate > 0 ? 0.0 : 1.0;
  return 1 - student_t_cdf(estimate / se, df);
}

double Difference::lower_bound(double alpha) const { return se == 0 ? estimate : estimate - student_t_quantile(1 - alpha, df) * se; }
double Difference::upper_bound(double alpha) const { return se == 0 ? estimate : estimate + student_t_quantile(1 - alpha, df) * se; }

std::optional<Difference> welch(const Summary& a, const Summary& b, double confidence) {
  if (a.n < 2 || b.n < 2) return std::nullopt;
  const double va = a.sd * a.sd / static_cast<double>(a.n), vb = b.sd * b.sd / static_cast<double>(b.n);
  Difference d;
  d.estimate = a.mean - b.mean;
  d.se = std::sqrt(va + vb);
  // Welch-Satterthwaite; with both variances zero any df serves, as the interval is a point.
  d.df = d.se == 0 ? static_cast<double>(a.n + b.n - 2)
                   : (va + vb) * (va + vb) / (va * va / static_cast<double>(a.n - 1) + vb * vb / static_cast<double>(b.n - 1));
  const double alpha = (1 - confidence) / 2;
  d.low = d.lower_bound(alpha);
  d.high = d.upper_bound(alpha);
  return d;
}

double minimum_detectable_difference(double sd, size_t n, double alpha, double power) {
  if (n < 2) return std::numeric_limits<double>::infinity();
  const double df = 2.0 * static_cast<double>(n) - 2;
  return (student_t_quantile(1 - alpha, df) + student_t_quantile(power, df)) * sd * std::sqrt(2.0 / static_cast<double>(n));
}

}  // namespace asiarch::stats
