// A latency histogram with bounded memory: fixed log-linear buckets over
// nanoseconds (32 per power of two, so a bucket is at most 1/32 = 3.1% wide;
// values from 0 to 2^37 ns ~ 137 s, larger ones land in the last bucket), plus
// the exact sum, minimum and maximum. Memory does not grow with the number of
// samples.
//
// The fine buckets are also split at the Prometheus `le` boundaries
// (prometheus_bounds_seconds()), so that the cumulative count for each `le`
// is exact, not estimated.
//
// Threading: one writer calls record(); any thread may call snapshot() at any
// time. The counters are relaxed atomics written with load+store (no locked
// instructions on the event path); a snapshot taken during a write may be one
// sample behind in some fields, never torn.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kryten/health.hpp"

namespace kryten::detail {

/// A plain copy of a latency_histogram's state: what readers work with.
struct histogram_snapshot {
  std::vector<std::uint64_t> counts;  // bucket_count() entries (see bucket_lower_ns)
  std::uint64_t sum_ns = 0;
  std::uint64_t min_ns = 0;  // meaningful only when count() > 0
  std::uint64_t max_ns = 0;

  /// An empty snapshot (all counts zero).
  histogram_snapshot();

  /// Adds another snapshot's samples to this one (e.g. per handler -> overall).
  void merge(const histogram_snapshot& other);

  std::uint64_t count() const;
  double mean_ns() const;  // 0 when empty
  /// The q-quantile (q in [0, 1]) in ns, linearly interpolated within its
  /// bucket and clamped to [min, max]; 0 when empty.
  double percentile_ns(double q) const;
  /// count, mean, p50, p90, p99, p99.9 and max, in milliseconds.
  kryten::latency_summary to_summary() const;

  /// Non-cumulative counts per Prometheus bucket: entry i counts samples in
  /// (bound[i-1], bound[i]] of prometheus_bounds_seconds(); the last entry
  /// (one more than the number of bounds) counts those above the last bound
  /// (+Inf). Exact. Suitable for prometheus::Histogram::ObserveMultiple.
  std::vector<std::uint64_t> prometheus_counts() const;
  double sum_seconds() const { return static_cast<double>(sum_ns) / 1e9; }

  /// The Prometheus `le` bounds in seconds (1e-5 .. 10), ascending, +Inf not included.
  static const std::vector<double>& prometheus_bounds_seconds();

  /// The fine bucket layout: bucket i holds integer ns values in
  /// [bucket_lower_ns(i), bucket_upper_ns(i)).
  static std::size_t bucket_count();
  static std::uint64_t bucket_lower_ns(std::size_t i);
  static std::uint64_t bucket_upper_ns(std::size_t i);
  /// Bucket index for a value (values >= max_tracked_ns() go to the last bucket).
  static std::size_t bucket_index(std::uint64_t ns);
  static constexpr std::uint64_t max_tracked_ns() { return (std::uint64_t{1} << 37) - 1; }
};

class latency_histogram {
public:
  /// The number of fine buckets (HDR-style buckets plus the splits at the
  /// Prometheus bounds).
  static constexpr std::size_t buckets = 1056 + 19;

  latency_histogram() = default;
  latency_histogram(const latency_histogram&) = delete;
  latency_histogram& operator=(const latency_histogram&) = delete;

  /// Records one sample. Single writer only.
  void record(std::uint64_t ns) noexcept;
  void record(std::chrono::nanoseconds d) noexcept {
    record(d.count() < 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(d.count()));
  }

  /// A copy of the current state; any thread.
  histogram_snapshot snapshot() const;

private:
  using counter = std::atomic<std::uint64_t>;
  std::array<counter, buckets> counts_{};
  counter sum_ns_{0};
  counter min_ns_{std::numeric_limits<std::uint64_t>::max()};
  counter max_ns_{0};
};

}  // namespace kryten::detail
