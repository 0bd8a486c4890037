// kryten-monitor's own settings: the "monitor" object of its configuration
// file (the rest of the file is the usual service configuration).
//
//   "monitor": {"http_host": "0.0.0.0", "http_port": 28290,
//               "health_poll_interval": 15, "health_timeout": 2,
//               "health_concurrency": 8, "service_api_interval": 30,
//               "default_heartbeat_interval": 30, "stale_after_intervals": 3,
//               "sweep_after": 3600, "kv_bucket": "kryten_services",
//               "page_refresh": 5}
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "registry.hpp"

namespace kryten::monitor {

struct monitor_settings {
  std::string http_host = "0.0.0.0";
  int http_port = 28290;               // 1..65535
  double health_poll_interval = 15;    // seconds, 1..3600
  double health_timeout = 2;           // seconds per request, 0.1..60
  int health_concurrency = 8;          // requests at once, 1..256
  std::string kv_bucket = "kryten_services";  // "" : no persistence
  int page_refresh = 5;                // seconds, 1..3600
  registry_options registry;
};

/// The "monitor" object of the configuration text (${VAR} substituted);
/// defaults when there is none. Throws kryten::config_error naming the field
/// ("monitor.http_port: must be between 1 and 65535 (got 0)").
monitor_settings parse_monitor_settings(std::string_view config_text);

}  // namespace kryten::monitor
