// The health aggregator: the one place where the runtime's statistics come
// together. Other actors send it facts as messages (connection state changes,
// handlers registered, health-details callbacks, the client's disconnect);
// the per-event counters are single-writer atomics that the event path bumps
// without a message (a message per event would cost more than the event) and
// that only this actor adds up. It runs on a thread of its own, so that a
// probe is answered even while every scheduler thread is busy with handlers.
//
// Protocol:
//   connection_status                             a connection state change (it
//                                                 listens to the connection actor)
//   (add_atom, label, shared_ptr<handler_stats>) a handler was registered
//   (remove_atom, label)                          a handler was removed
//   (add_atom, details_callback)                  merged into every health_status
//   (close_atom) / (connect_atom)                 the client disconnected on purpose /
//                                                 connected again
//   (get_atom)                                 -> health_status
//   (metrics_atom)                             -> std::string, Prometheus text
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "actors/runtime_stats.hpp"
#include "kryten/health.hpp"
#include "kryten/message_types.hpp"

namespace kryten::detail {

using metrics_atom = caf::atom_constant<caf::atom("kmetrics")>;

using details_callback = std::function<nlohmann::json()>;

struct health_spec {
  std::string service;
  std::string version;
  std::string instance_id;
  std::vector<std::string> channel_names;  // "domain/channel", as channel_stats
  std::vector<std::shared_ptr<subscription_stats>> channel_stats;
  std::shared_ptr<connection_stats> conn_stats;
  std::shared_ptr<runtime_flags> flags;
  std::shared_ptr<prometheus::Registry> custom_metrics;  // users' own series
  std::chrono::nanoseconds handler_timeout{std::chrono::seconds(30)};  // past it: stuck
};

struct health_state {
  health_spec spec;
  std::vector<std::pair<std::string, std::shared_ptr<handler_stats>>> handlers;
  std::vector<details_callback> details;
  connection_state state = connection_state::connecting;
  std::int64_t connected_since_ns = 0;  // steady clock; 0 = never connected
  bool lost_for_good = false;           // cnats gave up reconnecting
  bool disconnected = false;            // the client disconnected on purpose
  static inline const char* name = "kryten.health";
};

/// Spawn it detached (a thread of its own).
caf::behavior health_actor(caf::stateful_actor<health_state>* self, health_spec spec);

}  // namespace kryten::detail

// Local only, between the runtime's actors and the client.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::detail::details_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<kryten::detail::handler_stats>)
