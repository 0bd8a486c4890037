// The command worker: runs the user's command handlers, one request at a
// time, on a thread of its own, so that a slow or blocking handler holds up
// only later user commands, never the command actor's built-in ones (ping,
// health) or anything else of the runtime.
//
// Protocol:
//   (subscribe_atom, name, command_handler)   adds or replaces a command
//   command_request                        -> std::string, the reply's JSON
//                                             (PROTOCOL.md §2 shape)
#pragma once

#include <map>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "kryten/commands.hpp"
#include "kryten/message_types.hpp"

namespace kryten::detail {

caf::actor spawn_command_worker(caf::actor_system& sys, std::string service,
                                std::shared_ptr<spdlog::logger> log);

/// Runs `handler` for `req`: its data as a success reply, command_error's
/// message or "Internal error" (logged) as a failure.
nlohmann::json run_command(const std::string& service, const command_handler& handler,
                           const command_request& req, spdlog::logger& log);

/// A failure reply of PROTOCOL.md §2.
nlohmann::json command_failure(const std::string& service, const nlohmann::json& command,
                               const std::string& error);

}  // namespace kryten::detail

