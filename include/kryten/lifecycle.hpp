// Lifecycle events (PROTOCOL.md §3) and group restart notices (§5).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

namespace kryten {

/// Who a service is on the bus: the identity fields of every lifecycle event.
struct service_identity {
  std::string service;      // normalised name
  std::string version;
  std::string hostname;
  std::string instance_id;  // unique per process
  nlohmann::json metadata = nlohmann::json::object();  // endpoints and user metadata
};

/// The base payload of §3 (service, version, hostname, timestamp,
/// uptime_seconds — null when not yet started —, instance_id, metadata when
/// not empty), with `extra`'s fields merged in at the top level.
nlohmann::json lifecycle_payload(const service_identity& id,
                                 std::optional<double> uptime_seconds,
                                 const nlohmann::json& extra = nlohmann::json::object());

/// The longest delay a restart notice may ask for; longer ones are clamped.
inline constexpr double max_restart_delay_seconds = 3600;

/// A group restart notice as received, with §5's defaults filled in.
struct restart_notice {
  std::string initiator = "unknown";
  std::string reason = "No reason provided";
  double delay_seconds = 5;  // clamped to [0, max_restart_delay_seconds]
  std::string timestamp;  // "" when absent
  std::string body;       // the whole notice as JSON text (extra fields included)
  std::string clamped_from;  // the delay as sent, when it was clamped ("" otherwise)

  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, restart_notice& x) {
  return f(caf::meta::type_name("kryten::restart_notice"), x.initiator, x.reason,
           x.delay_seconds, x.timestamp, x.body, x.clamped_from);
}

/// Parses a notice; nullopt with `error` set when the body is not a JSON
/// object or a known field has the wrong type.
std::optional<restart_notice> parse_restart_notice(std::string_view body, std::string& error);

/// The notice an administrator publishes on kryten.lifecycle.group.restart.
nlohmann::json make_restart_notice(const std::string& initiator, const std::string& reason,
                                   double delay_seconds);

}  // namespace kryten
