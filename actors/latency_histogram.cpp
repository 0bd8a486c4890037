#include "actors/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace kryten::detail {

namespace {

// HDR-style buckets: values below 32 ns get one bucket each; above, each power
// of two [2^m, 2^(m+1)) is cut into 32 equal buckets.
constexpr unsigned sub_bits = 5;
constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;  // 32
constexpr unsigned top_bit = 36;  // values up to 2^37 - 1
constexpr std::size_t hdr_buckets = sub_count + (top_bit - sub_bits + 1) * sub_count;  // 1056

// Prometheus bounds, in ns; every one is also a fine bucket boundary ("<= b"
// is exactly the union of the buckets below b + 1).
constexpr std::size_t bound_count = 19;
constexpr std::array<std::uint64_t, bound_count> bounds_ns = {
  10'000,        25'000,        50'000,        100'000,       250'000,
  500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
  25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
  1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

constexpr unsigned highest_bit(std::uint64_t x) {
  unsigned m = 0;
  while (x >>= 1)
    ++m;
  return m;
}

constexpr std::size_t hdr_index(std::uint64_t x) {
  if (x < sub_count)
    return static_cast<std::size_t>(x);
  unsigned m = highest_bit(x);
  unsigned shift = m - sub_bits;
  return static_cast<std::size_t>(sub_count + shift * sub_count + ((x >> shift) - sub_count));
}

constexpr std::uint64_t hdr_lower(std::size_t i) {
  if (i < sub_count)
    return i;
  std::size_t k = i - sub_count;
  return (sub_count + k % sub_count) << (k / sub_count);
}

constexpr std::uint64_t hdr_upper(std::size_t i) {
  return i + 1 < hdr_buckets ? hdr_lower(i + 1) : (std::uint64_t{1} << (top_bit + 1));
}

constexpr std::size_t count_splits() {
  std::size_t n = 0;
  for (std::size_t i = 0; i < hdr_buckets; ++i)
    for (auto b : bounds_ns)
      if (hdr_lower(i) < b + 1 && b + 1 < hdr_upper(i))
        ++n;
  return n;
}

static_assert(count_splits() == bound_count, "each Prometheus bound splits one bucket");
static_assert(latency_histogram::buckets == hdr_buckets + bound_count);

struct layout_t {
  // Fine bucket of the first part of each HDR bucket, and where that bucket
  // is split (0: not split; values >= split go to base + 1).
  std::array<std::uint16_t, hdr_buckets> base{};
  std::array<std::uint64_t, hdr_buckets> split{};
  // Lower bound of each fine bucket, and the upper bound of the last.
  std::array<std::uint64_t, latency_histogram::buckets + 1> lower{};
  // For each fine bucket, the Prometheus bucket it falls in (bound_count = +Inf).
  std::array<std::uint8_t, latency_histogram::buckets> prom{};
};

constexpr layout_t make_layout() {
  layout_t l{};
  std::size_t j = 0;
  for (std::size_t i = 0; i < hdr_buckets; ++i) {
    l.base[i] = static_cast<std::uint16_t>(j);
    l.lower[j++] = hdr_lower(i);
    for (auto b : bounds_ns) {
      if (hdr_lower(i) < b + 1 && b + 1 < hdr_upper(i)) {
        l.split[i] = b + 1;
        l.lower[j++] = b + 1;
      }
    }
  }
  l.lower[j] = hdr_upper(hdr_buckets - 1);
  for (std::size_t k = 0; k < latency_histogram::buckets; ++k) {
    // Values in bucket k are <= lower[k + 1] - 1.
    std::size_t p = 0;
    while (p < bound_count && l.lower[k + 1] - 1 > bounds_ns[p])
      ++p;
    l.prom[k] = static_cast<std::uint8_t>(p);
  }
  return l;
}

constexpr layout_t layout = make_layout();

static_assert(hdr_index(31) == 31 && hdr_index(32) == 32 && hdr_index(63) == 63 &&
              hdr_index(64) == 64 && hdr_index(65) == 64 && hdr_index(66) == 65);
static_assert(hdr_index(histogram_snapshot::max_tracked_ns()) == hdr_buckets - 1);
static_assert(hdr_upper(hdr_buckets - 1) == histogram_snapshot::max_tracked_ns() + 1);

constexpr std::size_t fine_index(std::uint64_t ns) {
  std::uint64_t x = std::min(ns, histogram_snapshot::max_tracked_ns());
  std::size_t h = hdr_index(x);
  std::uint64_t s = layout.split[h];
  return layout.base[h] + ((s != 0 && x >= s) ? 1 : 0);
}

static_assert(fine_index(10'000) + 1 == fine_index(10'001));
static_assert(fine_index(histogram_snapshot::max_tracked_ns() + 5) ==
              latency_histogram::buckets - 1);

}  // namespace

// -- latency_histogram ----------------------------------------------------------

void latency_histogram::record(std::uint64_t ns) noexcept {
  constexpr auto r = std::memory_order_relaxed;
  auto& c = counts_[fine_index(ns)];
  c.store(c.load(r) + 1, r);
  sum_ns_.store(sum_ns_.load(r) + ns, r);
  if (ns > max_ns_.load(r))
    max_ns_.store(ns, r);
  if (ns < min_ns_.load(r))
    min_ns_.store(ns, r);
}

histogram_snapshot latency_histogram::snapshot() const {
  constexpr auto r = std::memory_order_relaxed;
  histogram_snapshot s;
  for (std::size_t i = 0; i < buckets; ++i)
    s.counts[i] = counts_[i].load(r);
  s.sum_ns = sum_ns_.load(r);
  s.max_ns = max_ns_.load(r);
  s.min_ns = s.count() == 0 ? 0 : std::min(min_ns_.load(r), s.max_ns);
  return s;
}

// -- histogram_snapshot -----------------------------------------------------------

histogram_snapshot::histogram_snapshot() : counts(latency_histogram::buckets, 0) {}

void histogram_snapshot::merge(const histogram_snapshot& other) {
  auto n = other.count();
  if (n == 0)
    return;
  bool was_empty = count() == 0;
  counts.resize(latency_histogram::buckets, 0);
  for (std::size_t i = 0; i < latency_histogram::buckets && i < other.counts.size(); ++i)
    counts[i] += other.counts[i];
  sum_ns += other.sum_ns;
  min_ns = was_empty ? other.min_ns : std::min(min_ns, other.min_ns);
  max_ns = std::max(max_ns, other.max_ns);
}

std::uint64_t histogram_snapshot::count() const {
  std::uint64_t n = 0;
  for (auto c : counts)
    n += c;
  return n;
}

double histogram_snapshot::mean_ns() const {
  auto n = count();
  return n == 0 ? 0.0 : static_cast<double>(sum_ns) / static_cast<double>(n);
}

double histogram_snapshot::percentile_ns(double q) const {
  auto n = count();
  if (n == 0)
    return 0.0;
  if (!(q > 0))  // also NaN
    return static_cast<double>(min_ns);
  if (q >= 1)
    return static_cast<double>(max_ns);
  double rank = q * static_cast<double>(n);
  double cum = 0;
  double value = static_cast<double>(max_ns);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0)
      continue;
    double c = static_cast<double>(counts[i]);
    if (cum + c >= rank) {
      double lo = static_cast<double>(layout.lower[i]);
      double hi = static_cast<double>(layout.lower[i + 1]);
      value = lo + (rank - cum) / c * (hi - lo);
      break;
    }
    cum += c;
  }
  return std::clamp(value, static_cast<double>(min_ns), static_cast<double>(max_ns));
}

kryten::latency_summary histogram_snapshot::to_summary() const {
  kryten::latency_summary s;
  s.count = count();
  if (s.count == 0)
    return s;
  constexpr double ms = 1e6;
  s.mean_ms = mean_ns() / ms;
  s.p50_ms = percentile_ns(0.5) / ms;
  s.p90_ms = percentile_ns(0.9) / ms;
  s.p99_ms = percentile_ns(0.99) / ms;
  s.p999_ms = percentile_ns(0.999) / ms;
  s.max_ms = static_cast<double>(max_ns) / ms;
  return s;
}

std::vector<std::uint64_t> histogram_snapshot::prometheus_counts() const {
  std::vector<std::uint64_t> out(bound_count + 1, 0);
  for (std::size_t i = 0; i < counts.size() && i < latency_histogram::buckets; ++i)
    out[layout.prom[i]] += counts[i];
  return out;
}

const std::vector<double>& histogram_snapshot::prometheus_bounds_seconds() {
  static const std::vector<double> bounds = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,     0.1,     0.25,   0.5,     1.0,    2.5,   5.0,    10.0};
  return bounds;
}

std::size_t histogram_snapshot::bucket_count() {
  return latency_histogram::buckets;
}

std::uint64_t histogram_snapshot::bucket_lower_ns(std::size_t i) {
  return layout.lower.at(i);
}

std::uint64_t histogram_snapshot::bucket_upper_ns(std::size_t i) {
  return layout.lower.at(i + 1);
}

std::size_t histogram_snapshot::bucket_index(std::uint64_t ns) {
  return fine_index(ns);
}

}  // namespace kryten::detail
