#include "registry.hpp"

#include <algorithm>
#include <cmath>

#include "messages/clock.hpp"

namespace kryten::monitor {

namespace {

constexpr std::int64_t ns_per_second = 1000000000;
// Untrusted text is cut to this length: a peer cannot grow the registry, the
// KV values or the dashboard without bound.
constexpr std::size_t max_text = 256;
// Instances kept at most: further new ones are refused and counted with the
// malformed payloads (a flood of made-up instance ids is bad input too).
constexpr std::size_t max_instances = 10000;

double seconds_between(std::int64_t from_ns, std::int64_t to_ns) {
  return std::max<double>(0, static_cast<double>(to_ns - from_ns) / ns_per_second);
}

/// At most max_text bytes, cut at a character boundary: the text came from
/// valid UTF-8 (the JSON parser checks) and must stay so for every dump().
std::string clipped(std::string s) {
  if (s.size() <= max_text)
    return s;
  std::size_t cut = max_text;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;  // s[cut] continues a multi-byte character: cut before it starts
  s.resize(cut);
  return s;
}

/// A NATS KV key allows [-/_=.a-zA-Z0-9]; anything else becomes '_'.
std::string key_safe(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c == '=';
    out.push_back(ok ? c : '_');
  }
  return out.empty() ? "_" : out;
}

/// An optional string field: nullopt when absent or null, false in `ok` when
/// present with another type.
std::optional<std::string> string_field(const nlohmann::json& j, const char* name, bool& ok) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null())
    return std::nullopt;
  if (!it->is_string()) {
    ok = false;
    return std::nullopt;
  }
  return clipped(it->get<std::string>());
}

std::optional<double> number_field(const nlohmann::json& j, const char* name, bool& ok) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null())
    return std::nullopt;
  if (!it->is_number()) {
    ok = false;
    return std::nullopt;
  }
  double v = it->get<double>();
  if (!std::isfinite(v)) {
    ok = false;
    return std::nullopt;
  }
  return v;
}

/// metadata.endpoints.{name}: {"port": 1..65535, "path": "/...", "host": optional}.
/// Anything else there is ignored (the event itself is still good).
std::optional<http_endpoint> endpoint_from(const nlohmann::json& metadata, const char* name,
                                           const std::string& hostname) {
  auto endpoints = metadata.find("endpoints");
  if (endpoints == metadata.end() || !endpoints->is_object())
    return std::nullopt;
  auto ep = endpoints->find(name);
  if (ep == endpoints->end() || !ep->is_object())
    return std::nullopt;
  auto port = ep->find("port");
  if (port == ep->end() || !port->is_number_integer())
    return std::nullopt;
  auto p = port->get<std::int64_t>();
  if (p < 1 || p > 65535)
    return std::nullopt;
  http_endpoint out;
  out.port = static_cast<int>(p);
  out.path = "/";
  if (auto path = ep->find("path"); path != ep->end() && path->is_string()
                                     && path->get<std::string>().rfind('/', 0) == 0)
    out.path = clipped(path->get<std::string>());
  out.host = hostname;
  // A service bound to a wildcard address is reached by its hostname.
  if (auto host = ep->find("host"); host != ep->end() && host->is_string()) {
    auto h = host->get<std::string>();
    if (!h.empty() && h != "0.0.0.0" && h != "::")
      out.host = clipped(h);
  }
  return out;
}

/// metadata.heartbeat_interval (kryten-cpp's), clamped to what a config allows
/// and a little more; 0 when absent or not a number.
double advertised_interval(const nlohmann::json& metadata) {
  auto it = metadata.find("heartbeat_interval");
  if (it == metadata.end() || !it->is_number())
    return 0;
  double v = it->get<double>();
  if (!std::isfinite(v))
    return 0;
  return std::clamp(v, 1.0, 3600.0);
}

std::string iso_or_null_text(std::int64_t ns) {
  return ns > 0 ? detail::iso8601(ns) : std::string{};
}

nlohmann::json iso_or_null(std::int64_t ns) {
  return ns > 0 ? nlohmann::json(detail::iso8601(ns)) : nlohmann::json(nullptr);
}

nlohmann::json endpoint_json(const std::optional<http_endpoint>& ep) {
  if (!ep)
    return nullptr;
  return {{"host", ep->host}, {"port", ep->port}, {"path", ep->path}, {"url", ep->url()}};
}

std::optional<http_endpoint> endpoint_from_stored(const nlohmann::json& j) {
  if (!j.is_object() || !j.value("port", nlohmann::json()).is_number_integer())
    return std::nullopt;
  http_endpoint ep;
  ep.port = static_cast<int>(std::clamp<std::int64_t>(j["port"].get<std::int64_t>(), 1, 65535));
  ep.host = clipped(j.value("host", std::string{}));
  ep.path = clipped(j.value("path", std::string{"/"}));
  return ep;
}

std::int64_t ns_field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_number_integer() ? std::max<std::int64_t>(0, it->get<std::int64_t>())
                                                  : 0;
}

}  // namespace

const char* to_string(instance_state s) {
  switch (s) {
    case instance_state::up: return "up";
    case instance_state::stale: return "stale";
    case instance_state::down: return "down";
    case instance_state::degraded: return "degraded";
  }
  return "unknown";
}

bool health_check::degraded() const {
  if (status_code == 503)
    return true;
  return status_code == 200 && !status.empty() && status != "healthy";
}

std::string http_endpoint::url() const {
  bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + path;
}

std::string instance_record::key() const {
  if (!instance_id.empty())
    return key_safe(service) + "." + key_safe(instance_id);
  return key_safe(service) + ".host-" + key_safe(hostname);
}

registry::registry(registry_options options) : options_(options) {}

instance_record& registry::entry_for(const std::string& service, const std::string& instance_id,
                                     const std::string& hostname, std::int64_t now_ns) {
  instance_record probe;
  probe.service = service;
  probe.instance_id = instance_id;
  probe.hostname = hostname;
  auto [it, added] = records_.try_emplace(probe.key(), std::move(probe));
  if (added)
    it->second.first_seen_ns = now_ns;
  return it->second;
}

std::optional<std::string> registry::apply_lifecycle(std::string_view kind,
                                                     std::string_view payload,
                                                     std::int64_t now_ns) {
  if (kind != "startup" && kind != "heartbeat" && kind != "shutdown" && kind != "connected"
      && kind != "disconnected")
    return std::nullopt;
  auto j = nlohmann::json::parse(payload, nullptr, false);
  bool ok = j.is_object();
  std::optional<std::string> service, version, hostname, instance_id, reason;
  std::optional<double> uptime;
  if (ok) {
    service = string_field(j, "service", ok);
    version = string_field(j, "version", ok);
    hostname = string_field(j, "hostname", ok);
    instance_id = string_field(j, "instance_id", ok);
    reason = string_field(j, "reason", ok);
    uptime = number_field(j, "uptime_seconds", ok);
    if (auto md = j.find("metadata"); md != j.end() && !md->is_null() && !md->is_object())
      ok = false;
  }
  if (!ok || !service || service->empty()) {
    ++malformed_;
    return std::nullopt;
  }
  std::string host = hostname.value_or("unknown");
  std::string id = instance_id.value_or("");
  std::string key;
  {
    instance_record probe;
    probe.service = *service;
    probe.instance_id = id;
    probe.hostname = host;
    key = probe.key();
  }
  if (!records_.count(key) && records_.size() >= max_instances) {
    ++malformed_;
    return std::nullopt;
  }
  auto& r = entry_for(*service, id, host, now_ns);
  r.hostname = host;
  if (version)
    r.version = *version;
  else if (r.version.empty())
    r.version = "unknown";
  r.lifecycle = true;
  r.last_seen_ns = std::max(r.last_seen_ns, now_ns);
  r.last_heartbeat_ns = now_ns;
  ++r.events_received;
  if (uptime) {
    r.uptime_seconds = std::clamp(*uptime, 0.0, 1e10);
    r.uptime_at_ns = now_ns;
  }
  if (auto md = j.find("metadata"); md != j.end() && md->is_object()) {
    r.metadata = *md;
    r.heartbeat_interval = advertised_interval(*md);
    r.health = endpoint_from(*md, "health", host);
    r.metrics = endpoint_from(*md, "metrics", host);
  }
  if (kind == "startup") {
    r.last_startup_ns = now_ns;
    r.shut_down = false;
    r.shutdown_reason.clear();
  } else if (kind == "heartbeat") {
    ++r.heartbeat_count;
    r.shut_down = false;
  } else if (kind == "shutdown") {
    r.shut_down = true;
    r.shutdown_reason = reason.value_or("Normal shutdown");
    r.shutdown_ns = now_ns;
  }
  return key;
}

std::optional<std::string> registry::apply_service_api_ping(std::string_view payload,
                                                            std::int64_t now_ns) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  bool ok = j.is_object();
  std::optional<std::string> name, id, version;
  if (ok) {
    name = string_field(j, "name", ok);
    id = string_field(j, "id", ok);
    version = string_field(j, "version", ok);
  }
  if (!ok || !name || name->empty() || !id || id->empty()) {
    ++malformed_;
    return std::nullopt;
  }
  // A service whose Service API id is not its lifecycle instance id (nats.js
  // makes its own) names the latter in metadata.instance_id: one entry.
  if (auto md = j.find("metadata"); md != j.end() && md->is_object()) {
    bool md_ok = true;
    if (auto lifecycle_id = string_field(*md, "instance_id", md_ok); lifecycle_id && !lifecycle_id->empty())
      id = lifecycle_id;
  }
  instance_record probe;
  probe.service = *name;
  probe.instance_id = *id;
  auto key = probe.key();
  if (!records_.count(key) && records_.size() >= max_instances) {
    ++malformed_;
    return std::nullopt;
  }
  auto& r = entry_for(*name, *id, "", now_ns);
  if (version && (r.version.empty() || r.version == "unknown"))
    r.version = *version;
  r.service_api = true;
  r.last_seen_ns = std::max(r.last_seen_ns, now_ns);
  return key;
}

void registry::record_health(const std::string& key, const health_check& check) {
  if (auto it = records_.find(key); it != records_.end())
    it->second.last_health = check;
}

instance_view registry::view_of(const instance_record& r, std::int64_t now_ns) const {
  instance_view v;
  v.record = r;
  v.liveness_interval = r.lifecycle ? (r.heartbeat_interval > 0 ? r.heartbeat_interval
                                                               : options_.default_heartbeat_interval)
                                    : options_.service_api_interval;
  v.seconds_since_heartbeat =
    seconds_between(r.last_heartbeat_ns > 0 ? r.last_heartbeat_ns : r.last_seen_ns, now_ns);
  double silent = seconds_between(r.last_seen_ns, now_ns);
  if (r.shut_down)
    v.state = instance_state::down;
  else if (silent > options_.stale_after_intervals * v.liveness_interval)
    v.state = instance_state::stale;
  else if (r.last_health && r.last_health->degraded())
    v.state = instance_state::degraded;
  else
    v.state = instance_state::up;
  if (r.uptime_seconds && !r.shut_down && v.state != instance_state::stale)
    v.uptime_now = *r.uptime_seconds + seconds_between(r.uptime_at_ns, now_ns);
  else if (r.uptime_seconds)
    v.uptime_now = r.uptime_seconds;
  return v;
}

std::vector<std::string> registry::sweep(std::int64_t now_ns) {
  std::vector<std::string> removed;
  for (auto it = records_.begin(); it != records_.end();) {
    auto v = view_of(it->second, now_ns);
    bool gone = v.state == instance_state::stale || v.state == instance_state::down;
    std::int64_t since = it->second.shut_down ? it->second.shutdown_ns : it->second.last_seen_ns;
    if (gone && seconds_between(since, now_ns) > options_.sweep_after) {
      removed.push_back(it->first);
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
  return removed;
}

std::vector<instance_view> registry::snapshot(std::int64_t now_ns) const {
  std::vector<instance_view> out;
  out.reserve(records_.size());
  for (auto& [key, r] : records_)
    out.push_back(view_of(r, now_ns));
  std::stable_sort(out.begin(), out.end(), [](const instance_view& a, const instance_view& b) {
    return a.record.service < b.record.service;
  });
  return out;
}

std::optional<instance_view> registry::find(const std::string& key, std::int64_t now_ns) const {
  auto it = records_.find(key);
  if (it == records_.end())
    return std::nullopt;
  return view_of(it->second, now_ns);
}

bool registry::restore(const nlohmann::json& stored) {
  bool ok = stored.is_object();
  std::optional<std::string> service, id, hostname, version, reason;
  if (ok) {
    service = string_field(stored, "service", ok);
    id = string_field(stored, "instance_id", ok);
    hostname = string_field(stored, "hostname", ok);
    version = string_field(stored, "version", ok);
    reason = string_field(stored, "shutdown_reason", ok);
  }
  if (!ok || !service || service->empty() || records_.size() >= max_instances) {
    ++malformed_;
    return false;
  }
  auto first_seen = ns_field(stored, "first_seen_ns");
  auto& r = entry_for(*service, id.value_or(""), hostname.value_or(""), first_seen);
  if (r.events_received > 0 || r.service_api)
    return true;  // something live came first: it is newer than the store
  r.hostname = hostname.value_or("");
  r.version = version.value_or("unknown");
  r.first_seen_ns = first_seen;
  r.last_startup_ns = ns_field(stored, "last_startup_ns");
  r.last_seen_ns = ns_field(stored, "last_seen_ns");
  r.last_heartbeat_ns = ns_field(stored, "last_heartbeat_ns");
  r.heartbeat_count = static_cast<std::uint64_t>(std::max<std::int64_t>(0, stored.value("heartbeat_count", std::int64_t{0})));
  r.heartbeat_interval = std::clamp(stored.value("heartbeat_interval", 0.0), 0.0, 3600.0);
  r.lifecycle = stored.value("lifecycle", true);
  r.service_api = stored.value("service_api", false);
  if (auto up = stored.find("uptime_seconds"); up != stored.end() && up->is_number()) {
    r.uptime_seconds = std::clamp(up->get<double>(), 0.0, 1e10);
    r.uptime_at_ns = ns_field(stored, "uptime_at_ns");
  }
  r.health = endpoint_from_stored(stored.value("health", nlohmann::json()));
  r.metrics = endpoint_from_stored(stored.value("metrics", nlohmann::json()));
  if (auto md = stored.find("metadata"); md != stored.end() && md->is_object())
    r.metadata = *md;
  r.shut_down = stored.value("state", std::string{}) == "down";
  r.shutdown_reason = reason.value_or("");
  r.shutdown_ns = ns_field(stored, "shutdown_ns");
  return true;
}

nlohmann::json to_json(const instance_view& v) {
  const auto& r = v.record;
  nlohmann::json j{
    {"key", r.key()},
    {"service", r.service},
    {"instance_id", r.instance_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.instance_id)},
    {"hostname", r.hostname},
    {"version", r.version},
    {"state", to_string(v.state)},
    {"first_seen", iso_or_null(r.first_seen_ns)},
    {"last_startup", iso_or_null(r.last_startup_ns)},
    {"last_heartbeat", iso_or_null(r.last_heartbeat_ns)},
    {"last_seen", iso_or_null(r.last_seen_ns)},
    {"first_seen_ns", r.first_seen_ns},
    {"last_startup_ns", r.last_startup_ns},
    {"last_heartbeat_ns", r.last_heartbeat_ns},
    {"last_seen_ns", r.last_seen_ns},
    {"seconds_since_heartbeat", v.seconds_since_heartbeat},
    {"heartbeat_interval", r.heartbeat_interval},
    {"liveness_interval", v.liveness_interval},
    {"heartbeat_count", r.heartbeat_count},
    {"events_received", r.events_received},
    {"uptime_seconds", v.uptime_now ? nlohmann::json(*v.uptime_now) : nlohmann::json(nullptr)},
    {"uptime_at_ns", r.uptime_at_ns},
    {"health", endpoint_json(r.health)},
    {"metrics", endpoint_json(r.metrics)},
    {"lifecycle", r.lifecycle},
    {"service_api", r.service_api},
    {"metadata", r.metadata},
  };
  if (r.shut_down) {
    j["shutdown_reason"] = r.shutdown_reason;
    j["shutdown_at"] = iso_or_null_text(r.shutdown_ns);
    j["shutdown_ns"] = r.shutdown_ns;
  }
  if (r.last_health) {
    const auto& h = *r.last_health;
    j["last_health"] = {{"status_code", h.status_code},
                        {"latency_ms", h.latency_ms},
                        {"status", h.status},
                        {"error", h.error},
                        {"checked_at", iso_or_null(h.checked_ns)}};
  } else {
    j["last_health"] = nullptr;
  }
  return j;
}

nlohmann::json to_service_info(const instance_view& v) {
  const auto& r = v.record;
  return {
    {"name", r.service},
    {"version", r.version},
    {"hostname", r.hostname},
    {"first_seen", iso_or_null(r.first_seen_ns)},
    {"last_heartbeat", iso_or_null(r.last_heartbeat_ns > 0 ? r.last_heartbeat_ns : r.last_seen_ns)},
    {"last_startup", iso_or_null(r.last_startup_ns)},
    {"heartbeat_count", r.heartbeat_count},
    {"seconds_since_heartbeat", v.seconds_since_heartbeat},
    {"is_stale", v.state == instance_state::stale || v.state == instance_state::down},
    {"metadata", r.metadata},
    {"health_url", r.health ? nlohmann::json(r.health->url()) : nlohmann::json(nullptr)},
    {"metrics_url", r.metrics ? nlohmann::json(r.metrics->url()) : nlohmann::json(nullptr)},
    {"instance_id", r.instance_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.instance_id)},
    {"state", to_string(v.state)},
  };
}

}  // namespace kryten::monitor
