// Clock readings and ISO 8601 rendering used across the runtime.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace kryten::detail {

inline std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

inline std::int64_t unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// The two UTC time formats of the wire, one formatter.
enum class utc_format {
  iso8601_micros,  // "2026-01-02T03:04:05.123456+00:00": Python's datetime.isoformat()
  rfc3339_nanos,   // "2026-01-02T03:04:05.123456789Z": the NATS Service API (Go)
};

inline std::string utc_time(std::int64_t unix_nanos, utc_format format) {
  std::time_t secs = static_cast<std::time_t>(unix_nanos / 1000000000);
  auto fraction = unix_nanos % 1000000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  if (format == utc_format::iso8601_micros)
    std::snprintf(buf + n, sizeof(buf) - n, ".%06ld+00:00", static_cast<long>(fraction / 1000));
  else
    std::snprintf(buf + n, sizeof(buf) - n, ".%09lldZ", static_cast<long long>(fraction));
  return buf;
}

/// "2026-01-02T03:04:05.123456+00:00", as Python's datetime.isoformat() writes UTC.
inline std::string iso8601(std::int64_t unix_nanos) {
  return utc_time(unix_nanos, utc_format::iso8601_micros);
}

inline std::string iso8601_now() {
  return iso8601(unix_ns());
}

}  // namespace kryten::detail
