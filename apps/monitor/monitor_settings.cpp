#include "monitor_settings.hpp"

#include <sstream>

#include "kryten/config.hpp"

namespace kryten::monitor {

namespace {

const char* known_keys[] = {"http_host",        "http_port",       "health_poll_interval",
                            "health_timeout",   "health_concurrency", "service_api_interval",
                            "default_heartbeat_interval", "stale_after_intervals", "sweep_after",
                            "kv_bucket",        "page_refresh"};

std::string field(const char* key) { return std::string{"monitor."} + key; }

std::string text_of(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

double number_in(const nlohmann::json& m, const char* key, double fallback, double lo, double hi) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null())
    return fallback;
  if (!it->is_number())
    throw config_error(field(key), "must be a number");
  double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    throw config_error(field(key), "must be between " + text_of(lo) + " and " + text_of(hi)
                                     + " (got " + text_of(v) + ")");
  return v;
}

int integer_in(const nlohmann::json& m, const char* key, int fallback, int lo, int hi) {
  auto it = m.find(key);
  if (it != m.end() && !it->is_null() && !it->is_number_integer())
    throw config_error(field(key), "must be an integer");
  return static_cast<int>(number_in(m, key, fallback, lo, hi));
}

std::string string_in(const nlohmann::json& m, const char* key, const std::string& fallback) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null())
    return fallback;
  if (!it->is_string())
    throw config_error(field(key), "must be a string");
  return it->get<std::string>();
}

void check_bucket_name(const std::string& name) {
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
              || c == '_';
    if (!ok)
      throw config_error("monitor.kv_bucket", "may hold only letters, digits, '-' and '_'");
  }
}

}  // namespace

monitor_settings parse_monitor_settings(std::string_view config_text) {
  auto root = nlohmann::json::parse(substitute_env(config_text), nullptr, false);
  if (!root.is_object())
    throw config_error("config", "not a JSON object");
  monitor_settings s;
  auto it = root.find("monitor");
  if (it == root.end() || it->is_null())
    return s;
  if (!it->is_object())
    throw config_error("monitor", "must be an object");
  const auto& m = *it;
  for (auto& [key, value] : m.items()) {
    bool known = false;
    for (auto k : known_keys)
      known = known || key == k;
    if (!known)
      throw config_error("monitor." + key, "unknown key");
  }
  s.http_host = string_in(m, "http_host", s.http_host);
  s.http_port = integer_in(m, "http_port", s.http_port, 1, 65535);
  s.health_poll_interval = number_in(m, "health_poll_interval", s.health_poll_interval, 1, 3600);
  s.health_timeout = number_in(m, "health_timeout", s.health_timeout, 0.1, 60);
  s.health_concurrency = integer_in(m, "health_concurrency", s.health_concurrency, 1, 256);
  s.kv_bucket = string_in(m, "kv_bucket", s.kv_bucket);
  check_bucket_name(s.kv_bucket);
  s.page_refresh = integer_in(m, "page_refresh", s.page_refresh, 1, 3600);
  auto& r = s.registry;
  r.service_api_interval = number_in(m, "service_api_interval", r.service_api_interval, 1, 3600);
  r.default_heartbeat_interval =
    number_in(m, "default_heartbeat_interval", r.default_heartbeat_interval, 1, 3600);
  r.stale_after_intervals = number_in(m, "stale_after_intervals", r.stale_after_intervals, 1, 100);
  r.sweep_after = number_in(m, "sweep_after", r.sweep_after, 1, 30 * 86400);
  return s;
}

}  // namespace kryten::monitor
