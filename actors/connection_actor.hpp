// The connection actor: owns the cnats connection, every subscription and
// every publish. cnats callbacks run on cnats threads and only decode and
// forward typed messages; no user code runs there. Its parts: the event hot
// path (event_path.hpp), cnats options and connection callbacks
// (nats_options.hpp), request/reply (reply_router.hpp).
//
// Protocol (all replies are to requests):
//   (connect_atom)                               -> std::string error ("" = connected)
//   (publish_atom, subject, data)                   publish; failures counted and logged
//   (confirm_atom, subject, data)                -> bool; the same, for requests
//   (publish_atom, subject, data, reply)            publish with a reply subject
//   (command_atom, subject, data)                   publish, counted as a command
//   (request_atom, subject, data, timeout_ms)    -> std::string reply | kryten error
//                                                   (timeout, no_responders, not_connected)
//   (subscribe_atom, subject, queue, handler_route, confirm)
//                                                -> std::string error ("" = ok);
//                                                   delivers bus_message to the route;
//                                                   confirm: the server has it (and
//                                                   every earlier one) on return
//   (unsubscribe_atom)                           -> bool; drains event subscriptions:
//                                                   no new events, buffered ones delivered
//   (unsubscribe_atom, label)                    -> bool; ends that handler's plain subscription
//   (drain_atom)                                 -> drain_progress of that drain
//   (drain_atom, stop_atom)                      -> drain_progress; the drain deadline:
//                                                   no event enters the event path any
//                                                   more; pending: every event cnats got
//                                                   and will never hand on
//   (status_atom)                                -> connection_status
//   (status_atom, listener)                         listener gets the current
//                                                   connection_status, then every change
//   (close_atom, reason)                         -> bool; flushes and closes
//   kv_open_atom, kv_get_atom, kv_put_atom, kv_delete_atom, kv_keys_atom,
//   kv_watch_atom, and unsubscribe_atom of a watch label
//                                                   the key-value store: forwarded to
//                                                   the key-value actor (kv_actor.hpp)
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <spdlog/logger.h>

#include "actors/handler_registry.hpp"
#include "actors/publish_gate.hpp"
#include "actors/runtime_stats.hpp"
#include "kryten/config.hpp"
#include "kryten/kv.hpp"
#include "kryten/message_types.hpp"

namespace kryten {
using confirm_atom = caf::atom_constant<caf::atom("kconfirm")>;
}

namespace kryten::detail {

/// How far the shutdown drain of the event subscriptions has come.
struct drain_progress {
  bool complete = true;      // every event subscription delivered its last event
  std::int64_t pending = 0;  // events cnats still buffers for them
};

struct connection_spec {
  nats_config nats;
  std::vector<channel_config> channels;
  std::string client_name;  // shown by the NATS server for this connection
  std::shared_ptr<handler_registry> registry;
  std::shared_ptr<connection_stats> stats;
  std::vector<std::shared_ptr<subscription_stats>> channel_stats;  // one per channel
  /// Opened once connected, closed before the connection is (may be null).
  std::shared_ptr<publish_gate> gate;
  std::shared_ptr<spdlog::logger> log;
  /// Called on the actor's thread on every state change.
  std::function<void(const connection_status&)> on_status;
};

/// Spawns the connection actor on a thread of its own (connecting and
/// flushing block).
caf::actor spawn_connection_actor(caf::actor_system& sys, connection_spec spec);

}  // namespace kryten::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::detail::drain_progress)
