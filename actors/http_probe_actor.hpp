// The HTTP probe actor: owns the probe's HTTP servers (cpp-httplib, see
// http_server.hpp): /health, /livez and /readyz on service.health_port,
// /metrics on service.metrics_port (one server when the ports are the same).
// The servers' threads ask the health actor (/health, /metrics) and the
// supervisor (/livez) with a deadline; nothing waits behind the event stream.
// The servers stop when the actor does.
//
// Protocol:
//   (http_probe_atom)  -> std::string error ("" = listening, or nothing to serve)
#pragma once

#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/behavior.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/logger.h>

#include "actors/http_server.hpp"
#include "kryten/config.hpp"

namespace kryten::detail {

using http_probe_atom = caf::atom_constant<caf::atom("khttpprb")>;

struct http_probe_spec {
  service_config service;
  caf::actor_addr health;      // weak: the probe must not keep them alive
  caf::actor_addr supervisor;  // answers /livez
  std::shared_ptr<spdlog::logger> log;
};

struct http_probe_state {
  http_probe_spec spec;
  std::vector<std::unique_ptr<http_server>> servers;  // stopped on destruction
  static inline const char* name = "kryten.http_probe";
};

/// Spawn it detached: starting and stopping a server blocks briefly.
caf::behavior http_probe_actor(caf::stateful_actor<http_probe_state>* self, http_probe_spec spec);

}  // namespace kryten::detail
