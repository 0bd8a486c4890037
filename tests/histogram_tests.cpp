// latency_histogram: bounded memory, percentile accuracy, exact Prometheus buckets.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <thread>

#include "actors/latency_histogram.hpp"

using kryten::detail::histogram_snapshot;
using kryten::detail::latency_histogram;

namespace {

constexpr std::uint64_t us = 1000;

// Relative error of an estimate.
double rel(double estimate, double truth) {
  return std::abs(estimate - truth) / truth;
}

}  // namespace

TEST_CASE("an empty histogram reports zeros", "[histogram]") {
  latency_histogram h;
  auto s = h.snapshot();
  CHECK(s.count() == 0);
  CHECK(s.sum_ns == 0);
  CHECK(s.max_ns == 0);
  CHECK(s.mean_ns() == 0);
  CHECK(s.percentile_ns(0.5) == 0);
  CHECK(s.percentile_ns(1.0) == 0);
  auto sum = s.to_summary();
  CHECK(sum.count == 0);
  CHECK(sum.mean_ms == 0);
  CHECK(sum.p50_ms == 0);
  CHECK(sum.p999_ms == 0);
  CHECK(sum.max_ms == 0);
  auto prom = s.prometheus_counts();
  CHECK(prom.size() == histogram_snapshot::prometheus_bounds_seconds().size() + 1);
  for (auto c : prom)
    CHECK(c == 0);
}

TEST_CASE("a single value is reported exactly", "[histogram]") {
  latency_histogram h;
  h.record(std::chrono::microseconds(1234));
  auto s = h.snapshot();
  CHECK(s.count() == 1);
  CHECK(s.sum_ns == 1'234'000);
  CHECK(s.mean_ns() == 1'234'000.0);
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0})
    CHECK(s.percentile_ns(q) == 1'234'000.0);
  auto sum = s.to_summary();
  CHECK(sum.count == 1);
  CHECK(sum.mean_ms == Approx(1.234));
  CHECK(sum.p50_ms == Approx(1.234));
  CHECK(sum.p99_ms == Approx(1.234));
  CHECK(sum.max_ms == Approx(1.234));
}

TEST_CASE("uniform 1..1000 us gives percentiles within 3% and an exact mean and max",
          "[histogram]") {
  latency_histogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v)
    h.record(v * us);
  auto s = h.snapshot();
  CHECK(s.count() == 1000);
  CHECK(s.max_ns == 1000 * us);
  CHECK(s.min_ns == 1 * us);
  CHECK(s.mean_ns() == 500'500.0);  // exact: kept as a sum
  CHECK(rel(s.percentile_ns(0.5), 500 * us) < 0.03);
  CHECK(rel(s.percentile_ns(0.9), 900 * us) < 0.03);
  CHECK(rel(s.percentile_ns(0.99), 990 * us) < 0.03);
  CHECK(rel(s.percentile_ns(0.999), 999 * us) < 0.03);
  CHECK(s.percentile_ns(1.0) == 1000.0 * us);
  auto sum = s.to_summary();
  CHECK(sum.count == 1000);
  CHECK(sum.mean_ms == Approx(0.5005));
  CHECK(sum.p50_ms == Approx(0.5).epsilon(0.03));
  CHECK(sum.p90_ms == Approx(0.9).epsilon(0.03));
  CHECK(sum.p99_ms == Approx(0.99).epsilon(0.03));
  CHECK(sum.p999_ms == Approx(0.999).epsilon(0.03));
  CHECK(sum.max_ms == 1.0);
  // Percentiles never decrease with q.
  double last = 0;
  for (double q = 0; q <= 1.0; q += 0.01) {
    double p = s.percentile_ns(q);
    CHECK(p >= last);
    last = p;
  }
}

TEST_CASE("percentiles of a wide random distribution are within 3%", "[histogram]") {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(2e6), 1.5);  // median 2 ms
  std::vector<std::uint64_t> values;
  latency_histogram h;
  for (int i = 0; i < 100'000; ++i) {
    auto v = static_cast<std::uint64_t>(dist(rng)) + 1;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  auto s = h.snapshot();
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double truth = static_cast<double>(values[static_cast<std::size_t>(q * values.size()) - 1]);
    INFO("q=" << q << " truth=" << truth << " estimate=" << s.percentile_ns(q));
    CHECK(rel(s.percentile_ns(q), truth) < 0.03);
  }
  CHECK(s.max_ns == values.back());
}

TEST_CASE("snapshots merge", "[histogram]") {
  latency_histogram a, b;
  for (std::uint64_t v = 1; v <= 500; ++v)
    a.record(v * us);
  for (std::uint64_t v = 501; v <= 1000; ++v)
    b.record(v * us);
  histogram_snapshot all;  // empty
  all.merge(a.snapshot());
  all.merge(b.snapshot());
  all.merge(histogram_snapshot{});  // merging nothing changes nothing
  CHECK(all.count() == 1000);
  CHECK(all.sum_ns == 500'500 * us);
  CHECK(all.min_ns == 1 * us);
  CHECK(all.max_ns == 1000 * us);
  CHECK(rel(all.percentile_ns(0.5), 500 * us) < 0.03);
  CHECK(rel(all.percentile_ns(0.99), 990 * us) < 0.03);

  latency_histogram c;
  for (std::uint64_t v = 1; v <= 1000; ++v)
    c.record(v * us);
  CHECK(c.snapshot().counts == all.counts);

  // Merging into a non-empty snapshot keeps the smaller minimum.
  auto bs = b.snapshot();
  bs.merge(a.snapshot());
  CHECK(bs.min_ns == 1 * us);
}

TEST_CASE("huge values land in the last bucket and max stays exact", "[histogram]") {
  latency_histogram h;
  const std::uint64_t huge = std::uint64_t{1} << 50;  // ~13 days
  h.record(huge);
  h.record(std::numeric_limits<std::uint64_t>::max() / 4);
  h.record(std::chrono::nanoseconds(-5));  // clamped to 0
  auto s = h.snapshot();
  CHECK(s.count() == 3);
  CHECK(s.counts.back() == 2);
  CHECK(s.counts.front() == 1);
  CHECK(s.max_ns == std::numeric_limits<std::uint64_t>::max() / 4);
  CHECK(s.min_ns == 0);
  CHECK(histogram_snapshot::bucket_index(huge) == histogram_snapshot::bucket_count() - 1);
  // The 50th percentile lies in the last bucket and is finite.
  double p = s.percentile_ns(0.5);
  CHECK(std::isfinite(p));
  CHECK(p >= static_cast<double>(histogram_snapshot::bucket_lower_ns(s.counts.size() - 1)));
  CHECK(s.percentile_ns(1.0) == static_cast<double>(s.max_ns));
  // Above every Prometheus bound.
  auto prom = s.prometheus_counts();
  CHECK(prom.back() == 2);
  CHECK(prom.front() == 1);
}

TEST_CASE("memory does not grow with samples", "[histogram]") {
  const auto size = sizeof(latency_histogram);
  CHECK(size < 16 * 1024);
  latency_histogram h;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1'000'000; ++i)
    h.record(rng() % 100'000'000'000ull);
  CHECK(sizeof(h) == size);
  auto s = h.snapshot();
  CHECK(s.count() == 1'000'000);
  CHECK(s.counts.size() == histogram_snapshot::bucket_count());
  CHECK(s.counts.size() == latency_histogram::buckets);
}

TEST_CASE("the bucket layout is contiguous and at most 1/32 wide", "[histogram]") {
  auto n = histogram_snapshot::bucket_count();
  CHECK(histogram_snapshot::bucket_lower_ns(0) == 0);
  for (std::size_t i = 0; i < n; ++i) {
    auto lo = histogram_snapshot::bucket_lower_ns(i);
    auto hi = histogram_snapshot::bucket_upper_ns(i);
    REQUIRE(hi > lo);
    if (i + 1 < n)
      REQUIRE(histogram_snapshot::bucket_lower_ns(i + 1) == hi);
    if (lo >= 32)
      REQUIRE(static_cast<double>(hi - lo) / static_cast<double>(lo) <= 1.0 / 32);
    REQUIRE(histogram_snapshot::bucket_index(lo) == i);
    REQUIRE(histogram_snapshot::bucket_index(hi - 1) == i);
  }
  CHECK(histogram_snapshot::bucket_upper_ns(n - 1) == histogram_snapshot::max_tracked_ns() + 1);
}

TEST_CASE("Prometheus bucket counts are exact at each bound", "[histogram]") {
  const auto& bounds = histogram_snapshot::prometheus_bounds_seconds();
  REQUIRE(bounds.size() == 19);
  CHECK(bounds.front() == 0.00001);
  CHECK(bounds.back() == 10.0);
  latency_histogram h;
  std::vector<std::uint64_t> values;
  for (double b : bounds) {
    auto ns = static_cast<std::uint64_t>(std::llround(b * 1e9));
    // On the bound (counts for le=b), one above it (does not), one below it.
    for (auto v : {ns - 1, ns, ns + 1}) {
      values.push_back(v);
      h.record(v);
    }
  }
  values.push_back(0);
  h.record(std::uint64_t{0});
  auto s = h.snapshot();
  auto prom = s.prometheus_counts();
  REQUIRE(prom.size() == bounds.size() + 1);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += prom[i];
    auto le = static_cast<std::uint64_t>(std::llround(bounds[i] * 1e9));
    std::uint64_t expected = 0;
    for (auto v : values)
      expected += v <= le ? 1 : 0;
    INFO("le=" << bounds[i]);
    CHECK(cumulative == expected);
  }
  CHECK(cumulative + prom.back() == values.size());
  CHECK(prom.back() == 1);  // 10 s + 1 ns
  CHECK(s.sum_seconds() == Approx(static_cast<double>(s.sum_ns) / 1e9));
}

TEST_CASE("a reader may snapshot while the writer records", "[histogram]") {
  latency_histogram h;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < 200'000; ++i)
      h.record(1000 + i % 5000);
    done = true;
  });
  std::uint64_t last = 0;
  int snapshots = 0;
  bool monotonic = true;  // counts only grow under a single writer
  while (!done.load() || snapshots == 0) {
    auto n = h.snapshot().count();
    monotonic = monotonic && n >= last;
    last = n;
    ++snapshots;
  }
  writer.join();
  CHECK(monotonic);
  CHECK(h.snapshot().count() == 200'000);
}
