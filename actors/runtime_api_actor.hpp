// The runtime API actor: implements the typed protocol of
// kryten/runtime_protocol.hpp for users' actors, and the client's blocking
// facade is a thin layer over it. It translates each request into messages
// to the runtime's own actors (connection, supervisor, commands, health) and
// answers without blocking; it numbers handler labels. It runs on a thread
// of its own and quits with the supervisor. (The facade's publish() and
// send_command() do not come here: they publish through the publish gate,
// else send to the connection actor; a handler's reply takes no thread hop.)
//
// Protocol: runtime_actor, plus for the client
//   (add_atom, handler_registration)     -> std::string label (callbacks, factories)
//   (subscribe_atom, name, command_handler)  -> true once the command is served by the callback
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <spdlog/logger.h>

#include "actors/supervisor_actor.hpp"
#include "kryten/commands.hpp"
#include "kryten/config.hpp"
#include "kryten/runtime_protocol.hpp"

namespace kryten::detail {

using runtime_api_actor = runtime_actor::extend<
  caf::replies_to<add_atom, handler_registration>::with<std::string>,
  caf::replies_to<subscribe_atom, std::string, command_handler>::with<bool>>;

/// Where this service's commands come from, and where they go by default.
struct command_origin {
  std::string service;         // this service's name: `source` of its commands
  std::string default_domain;  // of the first configured channel
  std::string default_channel;
};

struct runtime_api_spec {
  command_origin origin;
  caf::actor supervisor, connection, commands, health;
  double chat_min_delay = 1.0;  // seconds (kryten_config's)
  double chat_jitter = 0.5;
  /// Asks the client to stop run() with a reason and exit code.
  std::function<void(const std::string&, int)> request_stop;
  std::shared_ptr<spdlog::logger> log;
};

runtime_api_actor spawn_runtime_api(caf::actor_system& sys, runtime_api_spec spec);

/// The PROTOCOL.md §2 request body of `cmd`, with `request_id`; domain and
/// channel default to the origin's.
nlohmann::json command_body(const command_origin& origin, const outgoing_command& cmd,
                            const std::string& request_id);

}  // namespace kryten::detail
