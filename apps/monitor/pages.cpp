#include "pages.hpp"

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "messages/clock.hpp"

namespace kryten::monitor {

namespace {

const instance_state all_states[] = {instance_state::up, instance_state::degraded,
                                     instance_state::stale, instance_state::down};

std::map<std::string, int> count_states(const std::vector<instance_view>& instances) {
  std::map<std::string, int> counts;
  for (auto s : all_states)
    counts[to_string(s)] = 0;
  for (auto& v : instances)
    ++counts[to_string(v.state)];
  return counts;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string health_cell(const instance_view& v) {
  if (!v.record.health)
    return "no endpoint";
  if (!v.record.last_health)
    return "not polled yet";
  const auto& h = *v.record.last_health;
  if (h.status_code == 0)
    return "unreachable (" + h.error + ")";
  std::string text = std::to_string(h.status_code);
  if (!h.status.empty())
    text += " " + h.status;
  return text + " in " + fixed(h.latency_ms, 1) + " ms";
}

const char* page_style =
  "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}"
  "h1{font-size:1.4rem;margin:0 0 .3rem}p.sub{color:#666;margin:0 0 1rem}"
  "table{border-collapse:collapse;width:100%;background:#fff}"
  "th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left;font-size:.9rem}"
  "th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}"
  "code{font-size:.8rem;color:#555}"
  ".state{display:inline-block;padding:.1rem .5rem;border-radius:.7rem;font-weight:600}"
  ".state-up{background:#d4f4dd;color:#14632e}.state-degraded{background:#fff1c2;color:#7a5a00}"
  ".state-stale{background:#ffe0c2;color:#8a3b00}.state-down{background:#f6d0d0;color:#8a1010}"
  ".summary span{margin-right:1rem}";

void write_row(std::ostringstream& out, const instance_view& v) {
  const auto& r = v.record;
  auto state = to_string(v.state);
  out << "<tr class=\"instance\" data-key=\"" << html_escape(r.key()) << "\" data-state=\"" << state
      << "\">"
      << "<td class=\"service\">" << html_escape(r.service) << "</td>"
      << "<td class=\"instance-id\"><code>"
      << html_escape(r.instance_id.empty() ? "(host " + r.hostname + ")" : r.instance_id)
      << "</code></td>"
      << "<td><span class=\"state state-" << state << "\">" << state << "</span>";
  if (v.state == instance_state::down && !r.shutdown_reason.empty())
    out << " <small class=\"reason\">" << html_escape(r.shutdown_reason) << "</small>";
  out << "</td>"
      << "<td>" << html_escape(r.version) << "</td>"
      << "<td>" << html_escape(r.hostname) << "</td>"
      << "<td class=\"num\">" << human_duration(v.uptime_now ? *v.uptime_now : -1) << "</td>"
      << "<td class=\"num\">" << human_duration(v.seconds_since_heartbeat) << "</td>"
      << "<td class=\"health\">" << html_escape(health_cell(v)) << "</td>"
      << "<td class=\"num\">" << r.events_received << "</td>"
      << "</tr>\n";
}

/// A Prometheus label value: backslash, double quote and newline escaped.
std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

std::string instance_labels(const instance_view& v) {
  const auto& r = v.record;
  return "service=\"" + label_value(r.service) + "\",instance_id=\""
         + label_value(r.instance_id.empty() ? "host-" + r.hostname : r.instance_id)
         + "\",hostname=\"" + label_value(r.hostname) + "\"";
}

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

std::string number(double v) {
  if (!std::isfinite(v))
    return "0";
  std::ostringstream s;
  s.precision(15);
  s << v;
  return s.str();
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string human_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds))
    return "-";
  auto total = static_cast<long long>(seconds);
  long long d = total / 86400, h = total % 86400 / 3600, m = total % 3600 / 60, sec = total % 60;
  if (d > 0)
    return std::to_string(d) + "d " + std::to_string(h) + "h";
  if (h > 0)
    return std::to_string(h) + "h " + std::to_string(m) + "m";
  if (m > 0)
    return std::to_string(m) + "m " + std::to_string(sec) + "s";
  return fixed(seconds, 1) + "s";
}

std::string render_dashboard(const std::vector<instance_view>& instances, const page_context& ctx) {
  std::ostringstream out;
  auto counts = count_states(instances);
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      << "<meta http-equiv=\"refresh\" content=\"" << ctx.refresh_seconds << "\">"
      << "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      << "<title>Kryten services</title><style>" << page_style << "</style></head><body>\n"
      << "<h1>Kryten services</h1>\n<p class=\"sub\">" << instances.size()
      << " instances, seen by " << html_escape(ctx.monitor_name) << " at "
      << detail::iso8601(ctx.now_ns) << "; this page reloads every " << ctx.refresh_seconds
      << " s. JSON: <a href=\"/api/services\">/api/services</a>, metrics: "
      << "<a href=\"/metrics\">/metrics</a>.</p>\n<p class=\"summary\">";
  for (auto s : all_states)
    out << "<span id=\"count-" << to_string(s) << "\">" << to_string(s) << ": "
        << counts[to_string(s)] << "</span>";
  out << "</p>\n<table id=\"services\"><thead><tr><th>Service</th><th>Instance</th><th>State</th>"
      << "<th>Version</th><th>Host</th><th>Uptime</th><th>Heartbeat age</th>"
      << "<th>Last health</th><th>Events</th></tr></thead><tbody>\n";
  for (auto& v : instances)
    write_row(out, v);
  if (instances.empty())
    out << "<tr><td colspan=\"9\">No service has announced itself yet.</td></tr>\n";
  out << "</tbody></table>\n</body></html>\n";
  return out.str();
}

nlohmann::json render_api(const std::vector<instance_view>& instances, const page_context& ctx) {
  auto services = nlohmann::json::array();
  for (auto& v : instances)
    services.push_back(to_json(v));
  return {{"generated_at", detail::iso8601(ctx.now_ns)},
          {"monitor", {{"service", ctx.monitor_name}, {"instance_id", ctx.monitor_instance_id}}},
          {"count", instances.size()},
          {"states", count_states(instances)},
          {"malformed_payloads", ctx.malformed},
          {"services", services}};
}

std::string render_metrics(const std::vector<instance_view>& instances, const page_context& ctx) {
  std::ostringstream out;
  family(out, "kryten_monitor_instance_up", "gauge",
         "1 when the instance is up or degraded, 0 when stale or down.");
  for (auto& v : instances)
    out << "kryten_monitor_instance_up{" << instance_labels(v) << "} "
        << (v.state == instance_state::up || v.state == instance_state::degraded ? 1 : 0) << '\n';
  family(out, "kryten_monitor_instance_heartbeat_age_seconds", "gauge",
         "Seconds since the instance's last lifecycle event.");
  for (auto& v : instances)
    out << "kryten_monitor_instance_heartbeat_age_seconds{" << instance_labels(v) << "} "
        << number(v.seconds_since_heartbeat) << '\n';
  family(out, "kryten_monitor_instance_health_status_code", "gauge",
         "HTTP status of the last /health poll (0: unreachable or not polled).");
  for (auto& v : instances)
    out << "kryten_monitor_instance_health_status_code{" << instance_labels(v) << "} "
        << (v.record.last_health ? v.record.last_health->status_code : 0) << '\n';
  family(out, "kryten_monitor_instance_health_latency_seconds", "gauge",
         "Round trip of the last /health poll.");
  for (auto& v : instances)
    out << "kryten_monitor_instance_health_latency_seconds{" << instance_labels(v) << "} "
        << number(v.record.last_health ? v.record.last_health->latency_ms / 1000 : 0) << '\n';
  family(out, "kryten_monitor_instance_events_received_total", "counter",
         "Lifecycle events received from the instance.");
  for (auto& v : instances)
    out << "kryten_monitor_instance_events_received_total{" << instance_labels(v) << "} "
        << v.record.events_received << '\n';
  family(out, "kryten_monitor_instances", "gauge", "Instances in the registry, by state.");
  for (auto& [state, n] : count_states(instances))
    out << "kryten_monitor_instances{state=\"" << state << "\"} " << n << '\n';
  family(out, "kryten_monitor_malformed_payloads_total", "counter",
         "Lifecycle and Service API payloads that could not be used.");
  out << "kryten_monitor_malformed_payloads_total " << ctx.malformed << '\n';
  return out.str();
}

}  // namespace kryten::monitor
