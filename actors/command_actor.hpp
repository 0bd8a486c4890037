// The command actor: answers requests on kryten.{service}.command with the
// reply shape of PROTOCOL.md §2, one request at a time.
//
// Protocol:
//   bus_message                               a request (from the connection actor)
//   (subscribe_atom, name, command_handler)   adds or replaces a command
#pragma once

#include <map>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <spdlog/logger.h>

#include "actors/runtime_stats.hpp"
#include "kryten/client.hpp"

namespace kryten::detail {

struct command_spec {
  std::string service;
  caf::actor connection;
  std::shared_ptr<handler_stats> stats;  // its queue counter and run times
  std::shared_ptr<spdlog::logger> log;
};

caf::actor spawn_command_actor(caf::actor_system& sys, command_spec spec);

/// The reply to a request body (exposed for tests of the reply shape).
nlohmann::json answer_command(const std::string& service,
                              const std::map<std::string, command_handler>& commands,
                              const std::string& body, spdlog::logger& log);

}  // namespace kryten::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::command_handler)
