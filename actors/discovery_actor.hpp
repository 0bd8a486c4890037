// The discovery actor: answers kryten.service.discovery.poll by having the
// lifecycle actor publish startup again (PROTOCOL.md §4), and answers the NATS
// Service API's PING, INFO and STATS requests (§8).
//
// Protocol:
//   bus_message      a poll or a $SRV.* request (from the connection actor)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "actors/runtime_stats.hpp"

namespace kryten::detail {

struct discovery_spec {
  std::string name;         // the service name (micro's `name`)
  std::string version;
  std::string instance_id;  // micro's `id`
  std::string description;
  std::string started;      // RFC 3339 UTC with a literal Z
  std::string command_subject;
  caf::actor lifecycle;     // null: discovery polls are not answered
  caf::actor connection;
  std::shared_ptr<handler_stats> inbox;          // its queue counter
  std::shared_ptr<handler_stats> command_stats;  // the command endpoint's figures
  caf::actor commands;                           // asked for the last error
  std::shared_ptr<spdlog::logger> log;
};

caf::actor spawn_discovery_actor(caf::actor_system& sys, discovery_spec spec);

/// The nine $SRV subjects an instance answers.
std::vector<std::string> micro_subjects(const std::string& name, const std::string& id);

/// Whether `name` and `version` are acceptable to the NATS Service API; when
/// not, `why` says which and why.
bool micro_identity_ok(const std::string& name, const std::string& version, std::string& why);

/// PING, INFO and STATS replies (exposed for schema tests).
nlohmann::json micro_ping(const discovery_spec& spec);
nlohmann::json micro_info(const discovery_spec& spec);
nlohmann::json micro_stats(const discovery_spec& spec, const std::string& last_error);

/// "2026-01-02T03:04:05.123456789Z"
std::string rfc3339_utc(std::int64_t unix_nanos);

}  // namespace kryten::detail
