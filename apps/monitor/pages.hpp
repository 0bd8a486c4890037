// What kryten-monitor serves over HTTP, rendered from a registry snapshot:
// the dashboard page, /api/services and /metrics. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry.hpp"

namespace kryten::monitor {

struct page_context {
  std::string monitor_name = "monitor";
  std::string monitor_instance_id;
  std::int64_t now_ns = 0;
  int refresh_seconds = 5;  // the page reloads itself this often
  std::uint64_t malformed = 0;
};

/// Server-rendered HTML: one table row per instance (service, instance,
/// state, version, host, uptime, heartbeat age, last health status and
/// latency, events received). No scripts; a meta refresh reloads it.
std::string render_dashboard(const std::vector<instance_view>& instances, const page_context& ctx);

/// {"generated_at", "monitor", "count", "states": {up, stale, down, degraded}, "services": [to_json...]}.
nlohmann::json render_api(const std::vector<instance_view>& instances, const page_context& ctx);

/// Prometheus text format 0.0.4: per instance up, heartbeat age, health
/// status code and latency, events received; instances per state; malformed
/// payloads.
std::string render_metrics(const std::vector<instance_view>& instances, const page_context& ctx);

/// "3d 4h", "5m 2s", "-" for none.
std::string human_duration(double seconds);

/// Text made safe for HTML element content and attribute values.
std::string html_escape(const std::string& s);

}  // namespace kryten::monitor
