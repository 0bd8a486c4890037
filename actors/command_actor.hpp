// The command actor: answers requests on kryten.{service}.command with the
// reply shape of PROTOCOL.md §2. The built-in commands
// (ping, health and the ecosystem's system.ping, system.health, system.stats) are
// answered here, without waiting for anything a user wrote; the user's
// commands run in the command worker (command_worker_actor.hpp), and one that
// takes longer than handler_timeout is answered with an error.
//
// Protocol:
//   bus_message                               a request (from the connection actor)
//   (subscribe_atom, name, command_handler)   adds or replaces a user's command
//                                             (a user's "ping" or "health" wins)
//   (serve_atom, name, actor)                 the same, served by a user's actor: it
//                                             gets command_request, answers command_result
//   (get_atom)                             -> std::string, the last error for STATS
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <spdlog/logger.h>

#include "actors/command_worker_actor.hpp"
#include "actors/runtime_stats.hpp"

namespace kryten::detail {

struct command_spec {
  std::string service;
  std::string instance_id;
  caf::actor connection;
  caf::actor health;                     // answers the built-in health command
  std::shared_ptr<handler_stats> stats;  // its queue counter and run times
  std::chrono::nanoseconds timeout{std::chrono::seconds(30)};  // handler_timeout
  std::shared_ptr<spdlog::logger> log;
};

caf::actor spawn_command_actor(caf::actor_system& sys, command_spec spec);

/// A request body as a command_request, or a failure reply (Invalid JSON,
/// Missing command) in `failure`.
std::optional<command_request> parse_command(const std::string& service,
                                             const std::string& body,
                                             nlohmann::json& failure);

}  // namespace kryten::detail
