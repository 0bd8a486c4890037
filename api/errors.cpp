#include "kryten/errors.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace kryten {

const char* to_string(error_code code) {
  switch (code) {
    case error_code::timeout: return "timeout";
    case error_code::no_responders: return "no_responders";
    case error_code::not_connected: return "not_connected";
    case error_code::bad_input: return "bad_input";
    case error_code::unknown_handler: return "unknown_handler";
    case error_code::command_failed: return "command_failed";
    case error_code::shutting_down: return "shutting_down";
    case error_code::no_jetstream: return "no_jetstream";
    case error_code::no_such_bucket: return "no_such_bucket";
    case error_code::store_failed: return "store_failed";
  }
  return "unknown";
}

caf::error make_error(error_code code, std::string context) {
  return {static_cast<std::uint8_t>(code), error_category, caf::make_message(std::move(context))};
}

std::optional<error_code> code_of(const caf::error& e) {
  if (!e || e.category() != error_category)
    return std::nullopt;
  return static_cast<error_code>(e.code());
}

std::string describe(const caf::error& e) {
  auto code = code_of(e);
  if (!code)
    return caf::to_string(e);
  std::string out = to_string(*code);
  if (e.context().match_elements<std::string>()) {
    auto& context = e.context().get_as<std::string>(0);
    if (!context.empty())
      out += ": " + context;
  }
  return out;
}

}  // namespace kryten
