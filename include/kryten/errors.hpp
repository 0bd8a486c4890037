// What goes wrong, as actors see it: caf::error values of kryten's own error
// category. An actor asking the runtime (runtime_protocol.hpp) gets one of
// these in its error handler, never an exception.
//
//   self->request(runtime, 5s, kryten::request_atom::value, subject, body, 2s)
//     .then([](const std::string& reply) { ... },
//           [](const caf::error& e) {
//             if (kryten::code_of(e) == kryten::error_code::timeout) ...
//           });
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>

namespace kryten {

enum class error_code : std::uint8_t {
  timeout = 1,      // no reply within the deadline
  no_responders,    // nobody listens on the subject
  not_connected,    // not (or no longer) connected to NATS
  bad_input,        // a malformed request: an empty subject, a reply that is not JSON, ...
  unknown_handler,  // no handler or subscription has that label
  command_failed,   // a command's handler answered with an error
  shutting_down,    // the runtime is stopping and takes no new work
  no_jetstream,     // the NATS server has JetStream off (the key-value store needs it)
  no_such_bucket,   // the key-value bucket does not exist
  store_failed,     // the key-value store refused the operation (the context says why)
};

/// kryten's error category (caf::error::category()).
constexpr caf::atom_value error_category = caf::atom("kryten");

/// "timeout", "no_responders", ...
const char* to_string(error_code code);

/// An error of kryten's category; `context` says what it was about.
caf::error make_error(error_code code, std::string context = {});

/// The kryten error code of `e`, or nothing when `e` is of another category.
std::optional<error_code> code_of(const caf::error& e);

/// "timeout: no reply from kryten.x.command within 2000 ms", for logs.
std::string describe(const caf::error& e);

}  // namespace kryten
