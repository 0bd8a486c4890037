// Service configuration: the JSON file of PROTOCOL.md §7, loaded, defaulted and validated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kryten {

/// A configuration that cannot be used. `field()` names the offending key
/// (e.g. "service.heartbeat_interval"); what() reads
/// "service.heartbeat_interval: must be between 5 and 300 (got 2)".
class config_error : public std::runtime_error {
public:
  config_error(std::string field, const std::string& rule);
  const std::string& field() const noexcept { return field_; }

private:
  std::string field_;
};

struct nats_config {
  std::vector<std::string> servers;  // at least one
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::optional<std::string> token;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_ca;
  double connect_timeout = 10.0;      // seconds, > 0
  double reconnect_time_wait = 2.0;   // seconds, >= 0
  int max_reconnect_attempts = -1;    // -1: forever
  double ping_interval = 120.0;       // seconds, > 0
  // (ours) cnats drops silently past 65,536 pending messages per subscription
  // by default; every subscription gets these limits instead: bounded by
  // memory, so that a burst the handlers cannot keep up with is held, not lost.
  std::int64_t pending_msgs_limit = -1;               // >= 1, or -1 for unlimited
  std::int64_t pending_bytes_limit = 1LL << 30;       // >= 1, or -1 for unlimited
  // (ours) bytes of publishes cnats holds while reconnecting, sent once it is
  // back; a publish that does not fit fails and is counted in publish_errors.
  std::int64_t reconnect_buffer_size = 8LL << 20;     // 1 .. 2^31-1
};

struct channel_config {
  std::string domain;   // trimmed, non-empty
  std::string channel;  // trimmed, non-empty
};

struct service_config {
  std::string name = "kryten-service";  // normalised: trimmed, lowercase, '.' -> '-'
  std::string version = "1.0.0";
  bool enable_lifecycle = true;
  bool enable_heartbeat = true;
  int heartbeat_interval = 30;  // seconds, 5..300
  bool enable_discovery = true;
  // (ours) re-publish the startup event when Kryten-Robot announces itself on
  // kryten.lifecycle.robot.startup, so its in-memory registry knows us again.
  bool reregister_on_robot_startup = true;
  std::string health_host = "0.0.0.0";  // (ours) bind address of the HTTP probe
  std::optional<int> health_port;       // 1..65535; falls back to metrics.port
  std::string health_path = "/health";
  std::optional<int> metrics_port;      // 1..65535; falls back to metrics.port, then health_port
  std::string metrics_path = "/metrics";
  bool restart_on_notice = false;       // (ours) see the README
  double shutdown_timeout = 10.0;       // (ours) seconds, > 0
  // (ours) a handler actor that dies is restarted at most this many times
  // within the window; past that it stays down and the service is degraded.
  int handler_restart_limit = 5;        // 0..1000
  double handler_restart_window = 10.0; // seconds, > 0
  // (ours) the wait before a restart: min * 2^(restarts in the window),
  // at most max, plus up to 20 % jitter.
  double handler_restart_backoff_min = 0.1;  // seconds, > 0
  double handler_restart_backoff_max = 5.0;  // seconds, >= backoff_min
};

struct metrics_config {
  std::optional<int> port;
  std::string health_path = "/health";
  std::string metrics_path = "/metrics";
};

struct kryten_config {
  nats_config nats;
  std::vector<channel_config> channels;  // at least one
  /// Present when the file has a "service" object (or a "metrics" object);
  /// lifecycle events, heartbeats and discovery need it.
  std::optional<service_config> service;
  std::optional<metrics_config> metrics;
  int retry_attempts = 3;          // >= 0
  double retry_delay = 1.0;        // seconds, >= 0
  double handler_timeout = 30.0;   // seconds, > 0
  // kryten-py's outbound chat throttle: between two chat/PM messages at least
  // chat_min_delay plus a random 0..chat_jitter seconds (robot.hpp).
  double chat_min_delay = 1.0;     // seconds, >= 0
  double chat_jitter = 0.5;        // seconds, >= 0
  int max_concurrent_handlers = 1000;  // >= 1
  // (ours) what a handler actor may have queued before further events are
  // dropped and counted: memory (the events' estimated size: the payload
  // plus 512 bytes each) and a count. A burst is queued, not dropped,
  // while it fits; the bounds cap memory under overload.
  std::int64_t handler_queue_bytes = 1LL << 30;  // >= 4096
  std::int64_t handler_queue_size = 10000000;    // >= 1
  std::string log_level = "INFO";  // DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL; case-insensitive

  /// Non-fatal findings, e.g. "unknown key 'nats.sever' ignored".
  std::vector<std::string> warnings;

  /// The service name, or "kryten-client" when no service is configured.
  std::string service_name() const;
};

/// Reads `path`, substitutes ${VAR}, parses and validates. Throws config_error
/// (field "config" for an unreadable file or invalid JSON).
kryten_config load_config(const std::filesystem::path& path);

/// Same as load_config for a JSON text (${VAR} substitution included).
kryten_config parse_config(std::string_view json_text);

/// Replaces every ${VAR} (VAR = [A-Za-z_][A-Za-z0-9_]*) with the environment
/// variable's value; an unset variable is left as written.
std::string substitute_env(std::string_view text);

/// The config file a service was started with: `--config FILE`, `-c FILE` or
/// `--config=FILE` on the command line, else $KRYTEN_CONFIG; nothing when
/// neither is given.
std::optional<std::string> config_path_from(int argc, const char* const* argv);

/// The configuration named on the command line, loaded. When none is named,
/// or the file is bad, it writes why to `err` ("usage: PROGRAM --config
/// FILE", or "config error: " and the field) and returns nothing: the
/// program then exits 2.
///
///   auto config = kryten::config_from_command_line(argc, argv, std::cerr);
///   if (!config) return 2;
std::optional<kryten_config> config_from_command_line(int argc, const char* const* argv,
                                                      std::ostream& err);

}  // namespace kryten
