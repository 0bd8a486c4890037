// Test support: checks and conversions of the identifiers and timestamps
// that kryten payloads carry.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kryten::test {

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// Lowercase RFC 4122 version 4: xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx.
inline bool is_uuid4(const std::string& s) {
  if (s.size() != 36)
    return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
    } else if (!is_digit(c) && !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return s[14] == '4' && std::string_view{"89ab"}.find(s[19]) != std::string_view::npos;
}

/// YYYY-MM-DDTHH:MM:SS, then an optional fraction (with `fraction_required`,
/// a mandatory one), then Z, or (unless `z_only`) +HH:MM / -HH:MM.
/// (Hand-written: std::regex draws false -Wmaybe-uninitialized warnings from
/// GCC 12 in optimised and sanitizer builds.)
inline bool is_timestamp(const std::string& s, bool fraction_required, bool z_only) {
  auto digits_at = [&](std::size_t pos, std::size_t n) {
    if (pos + n > s.size())
      return false;
    for (std::size_t i = pos; i < pos + n; ++i)
      if (!is_digit(s[i]))
        return false;
    return true;
  };
  auto char_at = [&](std::size_t pos, char c) { return pos < s.size() && s[pos] == c; };
  if (!(digits_at(0, 4) && char_at(4, '-') && digits_at(5, 2) && char_at(7, '-')
        && digits_at(8, 2) && char_at(10, 'T') && digits_at(11, 2) && char_at(13, ':')
        && digits_at(14, 2) && char_at(16, ':') && digits_at(17, 2)))
    return false;
  std::size_t pos = 19;
  if (char_at(pos, '.')) {
    std::size_t start = ++pos;
    while (pos < s.size() && is_digit(s[pos]))
      ++pos;
    if (pos == start || pos - start > 9)
      return false;
  } else if (fraction_required) {
    return false;
  }
  if (char_at(pos, 'Z'))
    return pos + 1 == s.size();
  if (z_only)
    return false;
  return (char_at(pos, '+') || char_at(pos, '-')) && digits_at(pos + 1, 2)
         && char_at(pos + 3, ':') && digits_at(pos + 4, 2) && pos + 6 == s.size();
}

/// ISO 8601 as lifecycle events carry it.
inline bool is_iso8601(const std::string& s) {
  return is_timestamp(s, false, false);
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
inline long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

/// An is_iso8601 timestamp as microseconds since the Unix epoch (fractions
/// past the microsecond are dropped); nullopt if it is not one.
inline std::optional<long long> iso8601_us(const std::string& s) {
  if (!is_iso8601(s))
    return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t n) { return std::stoll(s.substr(pos, n)); };
  long long secs = days_from_civil(num(0, 4), static_cast<unsigned>(num(5, 2)),
                                   static_cast<unsigned>(num(8, 2)))
                     * 86400
                   + num(11, 2) * 3600 + num(14, 2) * 60 + num(17, 2);
  long long us = 0;
  std::size_t pos = 19;
  if (s[pos] == '.') {
    long long scale = 100000;
    for (++pos; pos < s.size() && is_digit(s[pos]); ++pos, scale /= 10)
      us += (s[pos] - '0') * scale;
  }
  if (s[pos] != 'Z') {
    long long offset = num(pos + 1, 2) * 3600 + num(pos + 4, 2) * 60;
    secs -= s[pos] == '+' ? offset : -offset;
  }
  return secs * 1000000 + us;
}

}  // namespace kryten::test
