// Small pieces shared by the benchmark tools: clocks, a bounded log-bucket
// latency histogram, the "sent_ns" reader, option parsing helpers.
//
// Clock convention: every send timestamp is CLOCK_MONOTONIC nanoseconds
// (std::chrono::steady_clock on Linux/libstdc++ reads the same clock), so a
// receiver on the same machine subtracts it from its own steady_clock reading.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/clock.hpp"
#include "messages/uuid.hpp"

namespace kbench {

inline std::int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

inline std::int64_t unix_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

/// "2026-01-02T03:04:05.123456+00:00" (32 characters), as Python's
/// datetime.isoformat() writes UTC and as the runtime does.
inline constexpr std::size_t iso_len = 32;

inline void write_iso(char* out, std::int64_t unix_nanos) {
  std::memcpy(out, kryten::detail::iso8601(unix_nanos).data(), iso_len);
}

inline std::string iso_now() {
  char buf[iso_len];
  write_iso(buf, unix_ns());
  return std::string{buf, iso_len};
}

/// Parses an ISO 8601 UTC time as written above (or with "Z"), to unix ns; 0 on failure.
inline std::int64_t parse_iso(std::string_view s) {
  std::tm tm{};
  int y, mo, d, h, mi;
  double sec;
  std::string text{s};
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6)
    return 0;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = 0;
  auto t = timegm(&tm);
  return static_cast<std::int64_t>(t) * 1000000000LL + static_cast<std::int64_t>(sec * 1e9);
}

/// Reads the number after `"sent_ns":` in a JSON text; 0 when absent. A cheap
/// scan, not a parse: the load generator writes the field in a fixed form.
inline std::int64_t find_sent_ns(std::string_view json) {
  static constexpr std::string_view key = "\"sent_ns\":";
  auto pos = json.find(key);
  if (pos == std::string_view::npos)
    return 0;
  pos += key.size();
  while (pos < json.size() && json[pos] == ' ')
    ++pos;
  std::int64_t v = 0;
  for (; pos < json.size() && json[pos] >= '0' && json[pos] <= '9'; ++pos)
    v = v * 10 + (json[pos] - '0');
  return v;
}

/// The digits after "Pong! p" in a say command body (the load generator's
/// ping usernames are "p" + 20-digit sent_ns); 0 when absent.
inline std::int64_t find_pong_sent_ns(std::string_view body) {
  static constexpr std::string_view key = "Pong! p";
  auto pos = body.find(key);
  if (pos == std::string_view::npos)
    return 0;
  pos += key.size();
  std::int64_t v = 0;
  for (int i = 0; i < 20 && pos < body.size() && body[pos] >= '0' && body[pos] <= '9'; ++i, ++pos)
    v = v * 10 + (body[pos] - '0');
  return v;
}

/// The string value of `"key":"..."` (no escapes inside), or "" when absent.
inline std::string_view find_string_field(std::string_view json, std::string_view key) {
  std::string pat = "\"" + std::string{key} + "\":\"";
  auto pos = json.find(pat);
  if (pos == std::string_view::npos)
    return {};
  pos += pat.size();
  auto end = json.find('"', pos);
  if (end == std::string_view::npos)
    return {};
  return json.substr(pos, end - pos);
}

/// A fixed-size log-linear histogram of non-negative nanosecond values:
/// 16 sub-buckets per power of two (relative error under 6.25 %), values up to
/// 2^44 ns (about 4.9 hours) and beyond clamped into the last bucket. Lock-free;
/// concurrent recorders are fine; reset() while recording is approximate.
/// Memory: 672 counters, whatever the number of values.
class log_histogram {
public:
  static constexpr int sub_bits = 4;
  static constexpr int sub = 1 << sub_bits;
  static constexpr int max_exp = 44;
  static constexpr int buckets = sub + (max_exp - sub_bits + 1) * sub;

  log_histogram() { reset(); }

  static int index_of(std::uint64_t v) {
    if (v < static_cast<std::uint64_t>(sub))
      return static_cast<int>(v);
    int e = 63 - __builtin_clzll(v);
    if (e > max_exp)
      return buckets - 1;
    auto s = static_cast<int>((v >> (e - sub_bits)) - sub);
    return sub + (e - sub_bits) * sub + s;
  }

  /// The middle of bucket i, in ns.
  static double value_of(int i) {
    if (i < sub)
      return i;
    int e = (i - sub) / sub + sub_bits;
    int s = (i - sub) % sub;
    double lo = static_cast<double>(static_cast<std::uint64_t>(sub + s) << (e - sub_bits));
    double width = static_cast<double>(1ULL << (e - sub_bits));
    return lo + width / 2;
  }

  void record(std::int64_t ns) {
    auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
    counts_[static_cast<std::size_t>(index_of(v))].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
    auto m = max_.load(std::memory_order_relaxed);
    while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
  }

  void reset() {
    for (auto& c : counts_)
      c.store(0, std::memory_order_relaxed);
    count_.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  /// The q-quantile (0..1) in ns; 0 when empty. Never above the recorded max.
  double quantile(double q) const {
    std::uint64_t total = 0;
    std::array<std::uint64_t, buckets> snap{};
    for (int i = 0; i < buckets; ++i) {
      snap[static_cast<std::size_t>(i)] = counts_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
      total += snap[static_cast<std::size_t>(i)];
    }
    if (total == 0)
      return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1)) + 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < buckets; ++i) {
      seen += snap[static_cast<std::size_t>(i)];
      if (seen >= rank)
        return std::min(value_of(i), static_cast<double>(max_.load(std::memory_order_relaxed)));
    }
    return static_cast<double>(max_.load(std::memory_order_relaxed));
  }

  /// {"count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"}
  nlohmann::json to_json() const {
    auto n = count();
    auto ms = [](double ns) { return std::round(ns / 1e3) / 1e3; };  // µs precision
    return {{"count", n},
            {"mean_ms", n ? ms(static_cast<double>(sum_.load(std::memory_order_relaxed)) / n) : 0.0},
            {"p50_ms", ms(quantile(0.50))},
            {"p90_ms", ms(quantile(0.90))},
            {"p99_ms", ms(quantile(0.99))},
            {"p999_ms", ms(quantile(0.999))},
            {"max_ms", ms(static_cast<double>(max_.load(std::memory_order_relaxed)))}};
  }

private:
  std::array<std::atomic<std::uint64_t>, buckets> counts_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> max_{0};
};

/// Spins for `us` microseconds of thread CPU time, or sleeps for `us`: the
/// simulated handler work.
inline void do_work(std::int64_t us, bool spin) {
  if (us <= 0)
    return;
  if (!spin) {
    timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return;
  }
  // CPU time of this thread, not wall time: the work is a fixed amount of
  // computation whether or not the thread is preempted meanwhile.
  auto cpu_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
  };
  auto end = cpu_ns() + us * 1000;
  volatile std::uint64_t x = 0;
  while (cpu_ns() < end)
    for (int i = 0; i < 64; ++i)
      x = x + static_cast<std::uint64_t>(i);
}

// -- command line --------------------------------------------------------------

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Walks argv: supports "--name value" and "--name=value".
class arg_reader {
public:
  arg_reader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  bool next() {
    ++i_;
    if (i_ >= argc_)
      return false;
    std::string a = argv_[i_];
    inline_value_.reset();
    auto eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name_ = a.substr(0, eq);
      inline_value_ = a.substr(eq + 1);
    } else {
      name_ = a;
    }
    return true;
  }
  const std::string& name() const { return name_; }
  bool is(std::string_view n) const { return name_ == n; }

  std::string value() {
    if (inline_value_)
      return *inline_value_;
    if (i_ + 1 >= argc_)
      throw usage_error(name_ + " needs a value");
    return argv_[++i_];
  }
  double number() {
    auto v = value();
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0)
      throw usage_error(name_ + ": not a number: " + v);
    return d;
  }
  std::int64_t integer() {
    auto d = number();
    if (d != static_cast<double>(static_cast<std::int64_t>(d)))
      throw usage_error(name_ + ": not a whole number");
    return static_cast<std::int64_t>(d);
  }

private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string name_;
  std::optional<std::string> inline_value_;
};

inline std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(sep, start);
    if (end == std::string_view::npos)
      end = s.size();
    auto part = s.substr(start, end - start);
    if (!part.empty())
      out.emplace_back(part);
    start = end + 1;
  }
  return out;
}

/// A UUID v4 from the caller's generator: seeded runs make the same ids.
/// (Formatted by the runtime's one UUID implementation.)
template <class Rng>
std::string uuid4(Rng& rng) {
  unsigned char bytes[16];
  for (int i = 0; i < 16; i += 8) {
    std::uint64_t r = rng();
    std::memcpy(bytes + i, &r, 8);
  }
  return kryten::detail::uuid4_from(bytes);
}

}  // namespace kbench
