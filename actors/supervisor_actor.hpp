// The supervisor: starts the runtime's actors in order (health, http probe,
// connection, lifecycle, heartbeat, discovery, commands, handlers), monitors them,
// restarts crashed handlers within a restart intensity, fans out group
// restart notices, and runs the graceful shutdown in phases with deadlines.
//
// Protocol:
//   (get_atom)                          -> connection, commands, health
//   (http_probe_atom)                   -> std::string error ("" = listening or no ports)
//   (connect_atom)                      -> std::string error ("" = up, startup published)
//   (add_atom, handler_registration)    -> bool; spawns, monitors and routes a handler
//   (remove_atom, label)                -> bool | unknown_handler; unroutes and stops it
//   (restart_atom, restart_callback)       adds a group restart callback (an actor
//                                          of its own runs it)
//   (restart_atom, caf::actor)             the actor gets every restart_notice
//   (metadata_atom, key, json text)        lifecycle metadata
//   (shutdown_atom, reason)             -> bool; idempotent, later callers wait too
//   (stop_atom)                         -> std::vector<std::string> actors that did not stop
//   bus_message                            a group restart notice
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "actors/connection_actor.hpp"
#include "actors/handler_actor.hpp"
#include "actors/handler_registry.hpp"
#include "actors/health_actor.hpp"
#include "actors/http_probe_actor.hpp"
#include "actors/restart_callback_actor.hpp"
#include "actors/runtime_stats.hpp"
#include "kryten/config.hpp"
#include "kryten/lifecycle.hpp"
#include "kryten/message_types.hpp"

namespace kryten::detail {

/// Exit code of run() after a group restart notice with restart_on_notice:
/// EX_TEMPFAIL, non-zero so that systemd's Restart=on-failure and every
/// Kubernetes restart policy start the service again.
constexpr int restart_exit_code = 75;

struct handler_registration {
  std::string event_name;  // lowercased, "*" = every event
  handler_filter filter;
  handler_spec spec;   // spec.factory: a user's actor, made (and remade) by the runtime
  caf::actor target;   // a user's ready-made actor: events are forwarded to it; no restarts
  std::string subject; // non-empty: a plain subscription instead of an event route
};

/// Makes the connection actor (connection_actor.hpp's protocol).
using connection_factory = std::function<caf::actor(caf::actor_system&, connection_spec)>;

/// What carries the runtime's messages: NATS unless kryten::testing plugs in
/// its loopback connection.
struct transport {
  connection_factory make_connection;
};

struct supervisor_spec {
  kryten_config cfg;
  service_identity identity;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<handler_registry> registry;
  std::shared_ptr<connection_stats> conn_stats;
  std::shared_ptr<publish_gate> gate;  // for the connection actor
  std::vector<std::shared_ptr<subscription_stats>> channel_stats;
  std::shared_ptr<handler_stats> command_stats;
  std::shared_ptr<runtime_flags> flags;
  health_spec health;  // for the health actor, which it spawns first
  /// Connection state changes, on the connection actor's thread.
  std::function<void(const connection_status&)> on_status;
  /// Asks the client to stop run() with a reason and exit code.
  std::function<void(const std::string&, int)> request_stop;
  /// The graceful shutdown is over (shutdown published, NATS closed).
  std::function<void()> on_shut_down;
  /// Empty: the cnats connection actor.
  connection_factory make_connection;
};

/// The wait before restart number `n` (0-based) within the restart window:
/// min * 2^n, at most max, times `jitter` (1.0 to 1.2).
caf::timespan restart_backoff(const service_config& cfg, std::size_t n, double jitter);

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec);

}  // namespace kryten::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::detail::handler_registration)
