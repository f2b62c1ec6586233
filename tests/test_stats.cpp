// The statistics behind every claim of "better" (stats/): Student's t against values computed
// with mpmath at 30 digits, Welch's interval on a worked example, and the measured false-positive
// rate of the breakthrough rule on null comparisons.
#include <catch2/catch.hpp>

#include <cmath>

#include "stats/evidence.h"
#include "stats/stats.h"

using namespace asiarch::stats;
using Catch::Detail::Approx;

TEST_CASE("summaries use the sample standard deviation") {
  const Summary s = summarize({1, 2, 3, 4, 5});
  CHECK(s.n == 5);
  CHECK(s.mean == 3);
  CHECK(s.sd == Approx(std::sqrt(2.5)).epsilon(1e-15));
  CHECK(summarize({7}).sd == 0);
  CHECK(summarize({}).n == 0);
}

TEST_CASE("Student's t matches reference values") {
  CHECK(student_t_cdf(1, 1) == Approx(0.75).epsilon(1e-12));  // Cauchy
  CHECK(student_t_cdf(0, 3) == Approx(0.5).epsilon(1e-15));
  CHECK(student_t_quantile(0.975, 4) == Approx(2.77644510519779349).epsilon(1e-12));
  CHECK(student_t_quantile(0.95, 10) == Approx(1.81246112281167587).epsilon(1e-12));
  CHECK(student_t_quantile(0.975, 1e6) == Approx(1.95996635681410666).epsilon(1e-9));
  CHECK(student_t_quantile(0.025, 4) == Approx(-2.77644510519779349).epsilon(1e-12));
  CHECK(student_t_cdf(student_t_quantile(0.3, 2.5), 2.5) == Approx(0.3).epsilon(1e-12));
}

TEST_CASE("Welch's interval of a worked example") {
  // a = 1..5, b = 2, 4, ..., 10: difference -3, se sqrt(2.5), df 5.882 (mpmath).
  const auto d = welch(summarize({1, 2, 3, 4, 5}), summarize({2, 4, 6, 8, 10}));
  REQUIRE(d);
  CHECK(d->estimate == Approx(-3).epsilon(1e-15));
  CHECK(d->df == Approx(5.88235294117647059).epsilon(1e-12));
  CHECK(d->low == Approx(-6.88774164373697514).epsilon(1e-10));
  CHECK(d->high == Approx(0.887741643736975141).epsilon(1e-10));
  CHECK(d->p_below() == Approx(0.0537655974653136184).epsilon(1e-10));
  CHECK(d->p_above() == Approx(1 - 0.0537655974653136184).epsilon(1e-10));
}

TEST_CASE("one seed gives no interval, constant sides give a point") {
  CHECK_FALSE(welch(summarize({1}), summarize({1, 2})));
  const auto same = welch(summarize({2, 2, 2}), summarize({2, 2, 2}));
  REQUIRE(same);
  CHECK(same->low == 0);
  CHECK(same->high == 0);
  CHECK(same->p_below() == 1);
  const auto lower = welch(summarize({1, 1}), summarize({2, 2}));
  REQUIRE(lower);
  CHECK(lower->p_below() == 0);
  CHECK(lower->high == -1);
}

TEST_CASE("the minimum detectable difference shrinks with seeds") {
  const double three = minimum_detectable_difference(0.013, 3), ten = minimum_detectable_difference(0.013, 10);
  CHECK(three > ten);
  CHECK(ten > 0);
  CHECK(std::isinf(minimum_detectable_difference(0.013, 1)));
}

TEST_CASE("the breakthrough rule: a real gain passes, recall beyond the margin fails") {
  const EvidenceRule rule;
  const Seeds baseline{{2.40, 2.42, 2.41}, {0.90, 0.91, 0.89}};
  const Seeds better{{2.30, 2.31, 2.29}, {0.90, 0.90, 0.91}};
  const auto pass = compare_to_baselines(better, baseline, baseline, rule.alpha, rule);
  REQUIRE(pass);
  CHECK(pass->passed());
  CHECK(pass->loss_difference.high < 0);
  const Seeds forgetful{{2.30, 2.31, 2.29}, {0.70, 0.71, 0.72}};
  const auto fail = compare_to_baselines(forgetful, baseline, baseline, rule.alpha, rule);
  REQUIRE(fail);
  CHECK(fail->loss_better);
  CHECK_FALSE(fail->recall_not_worse);
  CHECK(replication_level(rule, 10) == Approx(0.005));
}
