// Clock readings and ISO 8601 rendering used across the runtime.
#pragma once

#include <chrono>
#include <cstdint>
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

/// "2026-01-02T03:04:05.123456+00:00", as Python's datetime.isoformat() writes UTC.
inline std::string iso8601(std::int64_t unix_nanos) {
  std::time_t secs = static_cast<std::time_t>(unix_nanos / 1000000000);
  auto micros = static_cast<long>((unix_nanos % 1000000000) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06ld+00:00", micros);
  return buf;
}

inline std::string iso8601_now() {
  return iso8601(unix_ns());
}

}  // namespace kryten::detail
