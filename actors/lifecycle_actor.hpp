// The lifecycle actor: the service's voice on kryten.lifecycle.{service}.*
// (PROTOCOL.md §3). It owns the service identity and metadata and publishes
// every lifecycle event through the connection actor.
//
// Protocol:
//   connection_status                  connected / disconnected events; a loss
//                                      seen while offline is published once the
//                                      connection is back, before its connected
//   (startup_atom)                  -> bool   publish startup (also discovery's answer)
//   (heartbeat_atom, count)            publish a heartbeat; failures counted
//   (shutdown_atom, reason)         -> bool   publish shutdown
//   (metadata_atom, key, json text)    set a metadata entry (merged into every event)
#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <spdlog/logger.h>

#include "actors/runtime_stats.hpp"
#include "kryten/lifecycle.hpp"

namespace kryten::detail {

struct lifecycle_spec {
  service_identity identity;
  caf::actor connection;
  std::shared_ptr<connection_stats> stats;  // lifecycle_errors
  std::shared_ptr<spdlog::logger> log;
};

caf::actor spawn_lifecycle_actor(caf::actor_system& sys, lifecycle_spec spec);

}  // namespace kryten::detail
