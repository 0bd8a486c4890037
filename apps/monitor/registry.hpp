// kryten-monitor's registry of service instances: pure logic, no I/O. It is
// fed lifecycle events (PROTOCOL.md §3), /health results and NATS Service API
// ping answers, and says what state each instance is in at a given time.
//
// Instances are keyed by (service, instance_id); a peer whose events carry no
// instance id is keyed by (service, hostname). Times are Unix nanoseconds
// (wall clock), so that an entry read back from the KV store by a restarted
// monitor keeps its ages.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kryten::monitor {

enum class instance_state { up, stale, down, degraded };

const char* to_string(instance_state s);

/// The last /health poll of an instance.
struct health_check {
  int status_code = 0;       // HTTP status; 0 when nothing answered
  double latency_ms = 0;
  std::string status;        // the document's "status" ("healthy", "degraded", ...) or ""
  std::string error;         // why nothing usable answered ("" otherwise)
  std::int64_t checked_ns = 0;

  /// The instance says it is not healthy (503, or "status" other than healthy).
  bool degraded() const;
};

/// Where an instance serves an HTTP endpoint, from metadata.endpoints.
struct http_endpoint {
  std::string host;  // endpoints.X.host when it names one, else the hostname
  int port = 0;
  std::string path;
  std::string url() const;  // "http://host:port/path"
};

struct instance_record {
  std::string service;
  std::string instance_id;  // "" for peers that send none
  std::string hostname;
  std::string version;
  std::int64_t first_seen_ns = 0;
  std::int64_t last_startup_ns = 0;
  std::int64_t last_seen_ns = 0;       // the last lifecycle event or Service API answer
  std::int64_t last_heartbeat_ns = 0;  // the last lifecycle event (Kryten-Robot's meaning)
  std::uint64_t heartbeat_count = 0;
  std::uint64_t events_received = 0;   // lifecycle events from this instance
  double heartbeat_interval = 0;       // seconds; 0: not advertised (the default applies)
  std::optional<double> uptime_seconds;
  std::int64_t uptime_at_ns = 0;       // when uptime_seconds was reported
  std::optional<http_endpoint> health;
  std::optional<http_endpoint> metrics;
  nlohmann::json metadata = nlohmann::json::object();
  bool lifecycle = false;              // seen through lifecycle events
  bool service_api = false;            // answers $SRV.PING
  bool shut_down = false;
  std::string shutdown_reason;
  std::int64_t shutdown_ns = 0;
  std::optional<health_check> last_health;

  /// The registry key: "service.instance_id", or "service.host-HOSTNAME"; only
  /// characters a NATS KV key allows.
  std::string key() const;
};

struct registry_options {
  double default_heartbeat_interval = 30;  // seconds, for peers that do not say
  double stale_after_intervals = 3;        // missed intervals before `stale`
  double service_api_interval = 30;        // seconds between $SRV.PING polls
  double sweep_after = 600;                // seconds a stale or down entry is kept
};

/// An instance as seen at one moment.
struct instance_view {
  instance_record record;
  instance_state state = instance_state::up;
  double seconds_since_heartbeat = 0;
  double liveness_interval = 0;  // the interval the state was judged by
  std::optional<double> uptime_now;  // the reported uptime plus the time since
};

class registry {
public:
  explicit registry(registry_options options = {});

  /// A lifecycle event: `kind` is the subject's last token (startup,
  /// heartbeat, shutdown, connected, disconnected). Returns the instance's key,
  /// or nothing when the payload is malformed (counted in malformed()) or the
  /// kind is not one a registry tracks.
  std::optional<std::string> apply_lifecycle(std::string_view kind, std::string_view payload,
                                             std::int64_t now_ns);

  /// An answer to $SRV.PING (io.nats.micro.v1.ping_response). Returns the key,
  /// or nothing when it is malformed (counted).
  std::optional<std::string> apply_service_api_ping(std::string_view payload, std::int64_t now_ns);

  /// A /health poll's result for the instance under `key` (ignored when gone).
  void record_health(const std::string& key, const health_check& check);

  /// Removes the entries that have been stale or down for longer than
  /// sweep_after; returns their keys.
  std::vector<std::string> sweep(std::int64_t now_ns);

  /// Every instance, ordered by service then key.
  std::vector<instance_view> snapshot(std::int64_t now_ns) const;
  std::optional<instance_view> find(const std::string& key, std::int64_t now_ns) const;
  std::size_t size() const { return records_.size(); }

  /// Payloads that could not be used (not JSON, not an object, no service, a
  /// field of the wrong type).
  std::uint64_t malformed() const { return malformed_; }

  /// Takes back an entry from its to_json() document (a KV value); false,
  /// counted as malformed, when it cannot be read. An instance already heard
  /// from live is kept as it is.
  bool restore(const nlohmann::json& stored);

  const registry_options& options() const { return options_; }

private:
  instance_view view_of(const instance_record& r, std::int64_t now_ns) const;
  instance_record& entry_for(const std::string& service, const std::string& instance_id,
                             const std::string& hostname, std::int64_t now_ns);

  registry_options options_;
  std::map<std::string, instance_record> records_;
  std::uint64_t malformed_ = 0;
};

/// The /api/services and KV document of one instance: the stored fields plus
/// state, seconds_since_heartbeat, uptime and health.
nlohmann::json to_json(const instance_view& v);

/// Kryten-Robot's ServiceInfo.to_dict() shape (name, version, hostname,
/// first_seen, last_heartbeat, last_startup, heartbeat_count,
/// seconds_since_heartbeat, is_stale, metadata, health_url, metrics_url)
/// plus instance_id and state.
nlohmann::json to_service_info(const instance_view& v);

}  // namespace kryten::monitor
