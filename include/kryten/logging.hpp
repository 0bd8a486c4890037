// Logging: spdlog. A caller may hand the client its own logger; otherwise the
// client makes one that writes to stderr at the configured log_level.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace kryten {

/// DEBUG, INFO, WARNING/WARN, ERROR, CRITICAL (any case) -> spdlog level; INFO otherwise.
spdlog::level::level_enum parse_log_level(std::string_view level);

/// A logger named `name` writing to stderr at `level` (a log_level string).
std::shared_ptr<spdlog::logger> make_stderr_logger(const std::string& name,
                                                   std::string_view level);

/// `url` without any user:password@ part, for logs and errors.
std::string redact_url(std::string_view url);

}  // namespace kryten
