// Commands a service serves on kryten.{service}.command (PROTOCOL.md §2): by
// a callback (client::on_command) or by an actor (serve_atom of the runtime
// protocol), which receives a command_request and answers a command_result.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <nlohmann/json.hpp>

namespace kryten {

/// Thrown by a command handler: the caller gets this text as the reply's error.
/// Any other exception is answered with "Internal error".
class command_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A command sent to this service (PROTOCOL.md §2).
struct command_request {
  std::string command;
  nlohmann::json args;  // always an object
  nlohmann::json meta;  // source, timestamp, domain, channel, request_id (as sent)
};

/// Returns the reply's data; throw command_error to answer success: false.
using command_handler = std::function<nlohmann::json(const command_request&)>;

/// An actor's answer to a command_request: the reply's data, or an error text.
struct command_result {
  bool success = true;
  nlohmann::json data = nlohmann::json::object();
  std::string error;

  static command_result ok(nlohmann::json data) { return {true, std::move(data), {}}; }
  static command_result failure(std::string error) { return {false, nullptr, std::move(error)}; }
};

/// A command for another service (PROTOCOL.md §2), sent through the runtime.
struct outgoing_command {
  std::string service;  // goes to kryten.{service}.command
  std::string command;
  nlohmann::json args = nlohmann::json::object();  // a non-object is sent as {"value": args}
  std::string domain;   // "" = the first configured channel's
  std::string channel;  // "" = the first configured channel's
};

}  // namespace kryten

// Local messages between a user's actors and the runtime, never serialised.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::command_handler)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::command_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::command_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::outgoing_command)
