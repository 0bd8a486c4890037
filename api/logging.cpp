#include "kryten/logging.hpp"

#include <algorithm>
#include <cctype>

#include <spdlog/sinks/stdout_sinks.h>

namespace kryten {

spdlog::level::level_enum parse_log_level(std::string_view level) {
  std::string l{level};
  std::transform(l.begin(), l.end(), l.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (l == "debug")
    return spdlog::level::debug;
  if (l == "warning" || l == "warn")
    return spdlog::level::warn;
  if (l == "error")
    return spdlog::level::err;
  if (l == "critical")
    return spdlog::level::critical;
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> make_stderr_logger(const std::string& name,
                                                   std::string_view level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto log = std::make_shared<spdlog::logger>(name, std::move(sink));
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %n: %v", spdlog::pattern_time_type::utc);
  log->set_level(parse_log_level(level));
  log->flush_on(spdlog::level::warn);
  return log;
}

std::string redact_url(std::string_view url) {
  auto scheme = url.find("://");
  auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
  auto at = url.find('@', start);
  auto slash = url.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at))
    return std::string{url};
  return std::string{url.substr(0, start)} + "***@" + std::string{url.substr(at + 1)};
}

}  // namespace kryten
