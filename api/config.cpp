// Loading, defaulting and validation of the JSON configuration (PROTOCOL.md §7).
#include "kryten/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ostream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace kryten {

config_error::config_error(std::string field, const std::string& rule)
    : std::runtime_error(field + ": " + rule), field_(std::move(field)) {}

std::string kryten_config::service_name() const {
  return service ? service->name : "kryten-client";
}

namespace {

using json = nlohmann::json;

// Known keys per section; anything else is reported as a warning.
constexpr std::string_view top_keys[] = {
    "nats", "channels", "service", "metrics", "retry_attempts", "retry_delay",
    "handler_timeout", "max_concurrent_handlers", "handler_queue_size", "handler_queue_bytes",
    "log_level",
    "chat_min_delay", "chat_jitter"};
constexpr std::string_view nats_keys[] = {
    "servers", "user", "password", "token", "tls_cert", "tls_key", "tls_ca", "connect_timeout",
    "reconnect_time_wait", "max_reconnect_attempts", "ping_interval", "pending_msgs_limit",
    "reconnect_buffer_size",
    "pending_bytes_limit"};
constexpr std::string_view channel_keys[] = {"domain", "channel"};
constexpr std::string_view service_keys[] = {
    "name", "version", "enable_lifecycle", "enable_heartbeat", "heartbeat_interval",
    "enable_discovery", "reregister_on_robot_startup", "health_host", "health_port", "health_path", "metrics_port",
    "metrics_path", "restart_on_notice", "shutdown_timeout", "handler_restart_limit",
    "handler_restart_window", "handler_restart_backoff_min", "handler_restart_backoff_max"};
constexpr std::string_view metrics_keys[] = {"port", "health_path", "metrics_path"};
constexpr std::string_view log_levels[] = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"};

// -- messages -------------------------------------------------------------------

[[noreturn]] void fail(const std::string& field, const std::string& rule, const std::string& got) {
  throw config_error(field, rule + " (got " + got + ")");
}

// Type errors name the JSON type, never the value: the value may be a secret.
[[noreturn]] void fail_type(const std::string& field, const std::string& expected, const json& v) {
  fail(field, "must be " + expected, v.type_name());
}

// A value as the user wrote it, shortened so one bad entry cannot flood a log line.
std::string shown(const json& v) {
  constexpr std::size_t max_len = 80;
  auto text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() <= max_len ? text : text.substr(0, max_len) + "...";
}

std::string join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// -- strings ----------------------------------------------------------------------

std::string trim(std::string_view s) {
  constexpr std::string_view space = " \t\r\n\f\v";
  auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(space);
  return std::string(s.substr(first, last - first + 1));
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string normalise_name(std::string_view raw) {
  auto name = trim(raw);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == '.' ? '-' : static_cast<char>(std::tolower(c));
  });
  return name;
}

// -- object access -----------------------------------------------------------------

const json* find(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const json& require(const json& obj, std::string_view key, const std::string& field) {
  auto* v = find(obj, key);
  if (!v) throw config_error(field, "is required");
  return *v;
}

const json& require_object(const json& v, const std::string& field) {
  if (!v.is_object()) fail_type(field, "an object", v);
  return v;
}

template <std::size_t N>
bool contains(const std::string_view (&list)[N], std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

template <std::size_t N>
void warn_unknown(const json& obj, const std::string& prefix, const std::string_view (&known)[N],
                  std::vector<std::string>& warnings) {
  for (const auto& item : obj.items()) {
    if (!contains(known, item.key()))
      warnings.push_back("unknown key '" + join(prefix, item.key()) + "' ignored");
  }
}

// -- scalar readers ------------------------------------------------------------------

bool read_bool(const json& v, const std::string& field) {
  if (!v.is_boolean()) fail_type(field, "a boolean", v);
  return v.get<bool>();
}

std::string read_string(const json& v, const std::string& field) {
  if (!v.is_string()) fail_type(field, "a string", v);
  return v.get<std::string>();
}

std::optional<std::string> read_optional_string(const json& v, const std::string& field) {
  if (v.is_null()) return std::nullopt;
  return read_string(v, field);
}

std::string read_nonempty_trimmed(const json& v, const std::string& field) {
  auto s = trim(read_string(v, field));
  if (s.empty()) fail(field, "must not be empty", shown(v));
  return s;
}

std::string read_path(const json& v, const std::string& field) {
  auto s = read_string(v, field);
  if (s.empty() || s.front() != '/') fail(field, "must start with '/'", shown(v));
  return s;
}

// nlohmann's is_number() is false for booleans, so true/false never pass as numbers.
double read_number(const json& v, const std::string& field) {
  if (!v.is_number()) fail_type(field, "a number", v);
  return v.get<double>();
}

double read_positive(const json& v, const std::string& field) {
  auto d = read_number(v, field);
  if (!(d > 0)) fail(field, "must be > 0", shown(v));
  return d;
}

double read_non_negative(const json& v, const std::string& field) {
  auto d = read_number(v, field);
  if (!(d >= 0)) fail(field, "must be >= 0", shown(v));
  return d;
}

// Whole numbers written as floats (30.0) count as integers. Values beyond int64 are
// clamped: every caller's range check then rejects them with the original shown.
std::int64_t read_integer(const json& v, const std::string& field) {
  constexpr auto lo = std::numeric_limits<std::int64_t>::min();
  constexpr auto hi = std::numeric_limits<std::int64_t>::max();
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    return u > static_cast<std::uint64_t>(hi) ? hi : static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (!v.is_number_float()) fail_type(field, "an integer", v);
  auto d = v.get<double>();
  if (d != std::trunc(d)) fail(field, "must be an integer", shown(v));
  if (d <= static_cast<double>(lo)) return lo;
  if (d >= static_cast<double>(hi)) return hi;
  return static_cast<std::int64_t>(d);
}

// Bounds at or above INT_MAX are the storage type's limit, not a rule of the
// protocol, so they are only mentioned when exceeded.
std::int64_t read_int_range(const json& v, const std::string& field, std::int64_t lo,
                            std::int64_t hi) {
  auto n = read_integer(v, field);
  if (n >= lo && n <= hi) return n;
  bool open_top = hi >= std::numeric_limits<int>::max();
  std::string rule = !open_top
                         ? "must be between " + std::to_string(lo) + " and " + std::to_string(hi)
                     : n < lo ? "must be >= " + std::to_string(lo)
                              : "must be <= " + std::to_string(hi);
  fail(field, rule, shown(v));
}

int read_int(const json& v, const std::string& field, int lo,
             int hi = std::numeric_limits<int>::max()) {
  return static_cast<int>(read_int_range(v, field, lo, hi));
}

std::int64_t read_limit(const json& v, const std::string& field) {
  auto n = read_integer(v, field);
  if (n >= 1 || n == -1) return n;
  fail(field, "must be >= 1 or -1", shown(v));
}

std::optional<int> read_port(const json& v, const std::string& field) {
  if (v.is_null()) return std::nullopt;
  return read_int(v, field, 1, 65535);
}

std::string read_log_level(const json& v, const std::string& field) {
  auto level = upper(read_string(v, field));
  if (contains(log_levels, level)) return level;
  fail(field, "must be one of DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL", shown(v));
}

// Calls read(value, field) when `key` is present in `obj`.
template <class Read>
void optional_key(const json& obj, const std::string& prefix, std::string_view key, Read read) {
  if (auto* v = find(obj, key)) read(*v, join(prefix, key));
}

// -- sections --------------------------------------------------------------------------

std::vector<std::string> parse_servers(const json& v, const std::string& field) {
  if (!v.is_array()) fail_type(field, "an array of strings", v);
  if (v.empty()) fail(field, "must contain at least one server", "[]");
  std::vector<std::string> servers;
  for (std::size_t i = 0; i < v.size(); ++i)
    servers.push_back(read_nonempty_trimmed(v[i], field + "[" + std::to_string(i) + "]"));
  return servers;
}

void parse_nats_secrets(const json& o, nats_config& n) {
  const std::string p = "nats";
  std::pair<std::string_view, std::optional<std::string>*> fields[] = {
      {"user", &n.user},         {"password", &n.password}, {"token", &n.token},
      {"tls_cert", &n.tls_cert}, {"tls_key", &n.tls_key},   {"tls_ca", &n.tls_ca}};
  for (auto& [key, target] : fields) {
    auto* out = target;  // C++17 lambdas cannot capture structured bindings
    optional_key(o, p, key,
                 [out](const auto& v, const auto& f) { *out = read_optional_string(v, f); });
  }
}

// A certificate file that cannot be read is a configuration error now, not a
// TLS failure at connect time that reads like a network problem.
void check_readable(const std::optional<std::string>& path, const std::string& field) {
  if (!path) return;
  std::ifstream in(*path, std::ios::binary);
  if (!in || in.peek() == std::ifstream::traits_type::eof())
    fail(field, "file cannot be read or is empty", json(*path).dump());
}

void check_tls_files(const nats_config& n) {
  if (n.tls_key && !n.tls_cert) fail("nats.tls_key", "needs nats.tls_cert", json(*n.tls_key).dump());
  if (n.tls_cert && !n.tls_key) fail("nats.tls_cert", "needs nats.tls_key", json(*n.tls_cert).dump());
  check_readable(n.tls_ca, "nats.tls_ca");
  check_readable(n.tls_cert, "nats.tls_cert");
  check_readable(n.tls_key, "nats.tls_key");
}

nats_config parse_nats(const json& section, std::vector<std::string>& warnings) {
  const std::string p = "nats";
  const auto& o = require_object(section, p);
  warn_unknown(o, p, nats_keys, warnings);
  nats_config n;
  n.servers = parse_servers(require(o, "servers", "nats.servers"), "nats.servers");
  parse_nats_secrets(o, n);
  optional_key(o, p, "connect_timeout",
               [&](const auto& v, const auto& f) { n.connect_timeout = read_positive(v, f); });
  optional_key(o, p, "reconnect_time_wait", [&](const auto& v, const auto& f) {
    n.reconnect_time_wait = read_non_negative(v, f);
  });
  optional_key(o, p, "max_reconnect_attempts", [&](const auto& v, const auto& f) {
    n.max_reconnect_attempts = read_int(v, f, -1);
  });
  optional_key(o, p, "ping_interval",
               [&](const auto& v, const auto& f) { n.ping_interval = read_positive(v, f); });
  optional_key(o, p, "pending_msgs_limit",
               [&](const auto& v, const auto& f) { n.pending_msgs_limit = read_limit(v, f); });
  optional_key(o, p, "pending_bytes_limit",
               [&](const auto& v, const auto& f) { n.pending_bytes_limit = read_limit(v, f); });
  optional_key(o, p, "reconnect_buffer_size", [&](const auto& v, const auto& f) {
    n.reconnect_buffer_size = read_int(v, f, 1);
  });
  check_tls_files(n);
  return n;
}

channel_config parse_channel(const json& section, const std::string& p,
                             std::vector<std::string>& warnings) {
  const auto& o = require_object(section, p);
  warn_unknown(o, p, channel_keys, warnings);
  channel_config c;
  c.domain = read_nonempty_trimmed(require(o, "domain", join(p, "domain")), join(p, "domain"));
  c.channel = read_nonempty_trimmed(require(o, "channel", join(p, "channel")), join(p, "channel"));
  return c;
}

std::vector<channel_config> parse_channels(const json& v, std::vector<std::string>& warnings) {
  if (!v.is_array()) fail_type("channels", "an array", v);
  if (v.empty()) fail("channels", "must contain at least one channel", "[]");
  std::vector<channel_config> channels;
  for (std::size_t i = 0; i < v.size(); ++i)
    channels.push_back(parse_channel(v[i], "channels[" + std::to_string(i) + "]", warnings));
  return channels;
}

void parse_service_switches(const json& o, service_config& s) {
  const std::string p = "service";
  std::pair<std::string_view, bool*> fields[] = {{"enable_lifecycle", &s.enable_lifecycle},
                                                 {"enable_heartbeat", &s.enable_heartbeat},
                                                 {"enable_discovery", &s.enable_discovery},
                                                 {"reregister_on_robot_startup",
                                                  &s.reregister_on_robot_startup},
                                                 {"restart_on_notice", &s.restart_on_notice}};
  for (auto& [key, target] : fields) {
    auto* out = target;  // C++17 lambdas cannot capture structured bindings
    optional_key(o, p, key, [out](const auto& v, const auto& f) { *out = read_bool(v, f); });
  }
}

void parse_service_http(const json& o, service_config& s) {
  const std::string p = "service";
  optional_key(o, p, "health_host",
               [&](const auto& v, const auto& f) { s.health_host = read_nonempty_trimmed(v, f); });
  optional_key(o, p, "health_port",
               [&](const auto& v, const auto& f) { s.health_port = read_port(v, f); });
  optional_key(o, p, "health_path",
               [&](const auto& v, const auto& f) { s.health_path = read_path(v, f); });
  optional_key(o, p, "metrics_port",
               [&](const auto& v, const auto& f) { s.metrics_port = read_port(v, f); });
  optional_key(o, p, "metrics_path",
               [&](const auto& v, const auto& f) { s.metrics_path = read_path(v, f); });
}

service_config parse_service(const json& section, std::vector<std::string>& warnings) {
  const std::string p = "service";
  const auto& o = require_object(section, p);
  warn_unknown(o, p, service_keys, warnings);
  service_config s;
  optional_key(o, p, "name", [&](const auto& v, const auto& f) {
    s.name = normalise_name(read_string(v, f));
    if (s.name.empty()) fail(f, "must not be empty", shown(v));
  });
  optional_key(o, p, "version",
               [&](const auto& v, const auto& f) { s.version = read_string(v, f); });
  optional_key(o, p, "heartbeat_interval", [&](const auto& v, const auto& f) {
    s.heartbeat_interval = read_int(v, f, 5, 300);
  });
  optional_key(o, p, "shutdown_timeout",
               [&](const auto& v, const auto& f) { s.shutdown_timeout = read_positive(v, f); });
  optional_key(o, p, "handler_restart_limit", [&](const auto& v, const auto& f) {
    s.handler_restart_limit = read_int(v, f, 0, 1000);
  });
  optional_key(o, p, "handler_restart_window", [&](const auto& v, const auto& f) {
    s.handler_restart_window = read_positive(v, f);
  });
  optional_key(o, p, "handler_restart_backoff_min", [&](const auto& v, const auto& f) {
    s.handler_restart_backoff_min = read_positive(v, f);
  });
  optional_key(o, p, "handler_restart_backoff_max", [&](const auto& v, const auto& f) {
    s.handler_restart_backoff_max = read_positive(v, f);
    if (s.handler_restart_backoff_max < s.handler_restart_backoff_min)
      fail(f, "must be at least service.handler_restart_backoff_min", shown(v));
  });
  parse_service_switches(o, s);
  parse_service_http(o, s);
  return s;
}

metrics_config parse_metrics(const json& section, std::vector<std::string>& warnings) {
  const std::string p = "metrics";
  const auto& o = require_object(section, p);
  warn_unknown(o, p, metrics_keys, warnings);
  metrics_config m;
  optional_key(o, p, "port", [&](const auto& v, const auto& f) { m.port = read_port(v, f); });
  optional_key(o, p, "health_path",
               [&](const auto& v, const auto& f) { m.health_path = read_path(v, f); });
  optional_key(o, p, "metrics_path",
               [&](const auto& v, const auto& f) { m.metrics_path = read_path(v, f); });
  return m;
}

void parse_tunables(const json& o, kryten_config& c) {
  const std::string p;
  optional_key(o, p, "retry_attempts",
               [&](const auto& v, const auto& f) { c.retry_attempts = read_int(v, f, 0); });
  optional_key(o, p, "retry_delay",
               [&](const auto& v, const auto& f) { c.retry_delay = read_non_negative(v, f); });
  optional_key(o, p, "chat_min_delay",
               [&](const auto& v, const auto& f) { c.chat_min_delay = read_non_negative(v, f); });
  optional_key(o, p, "chat_jitter",
               [&](const auto& v, const auto& f) { c.chat_jitter = read_non_negative(v, f); });
  optional_key(o, p, "handler_timeout",
               [&](const auto& v, const auto& f) { c.handler_timeout = read_positive(v, f); });
  optional_key(o, p, "max_concurrent_handlers", [&](const auto& v, const auto& f) {
    c.max_concurrent_handlers = read_int(v, f, 1);
  });
  optional_key(o, p, "handler_queue_size", [&](const auto& v, const auto& f) {
    c.handler_queue_size = read_int_range(v, f, 1, std::numeric_limits<std::int64_t>::max());
  });
  optional_key(o, p, "handler_queue_bytes", [&](const auto& v, const auto& f) {
    c.handler_queue_bytes = read_int_range(v, f, 4096, std::numeric_limits<std::int64_t>::max());
  });
  optional_key(o, p, "log_level",
               [&](const auto& v, const auto& f) { c.log_level = read_log_level(v, f); });
}

// "metrics" is the older place for the HTTP settings: it fills what "service" leaves
// unset, and creates a default service so that the health server can run.
void apply_metrics(kryten_config& c, const json* service_json) {
  if (c.metrics) {
    if (!c.service) c.service.emplace();
    auto& s = *c.service;
    const auto& m = *c.metrics;
    if (!s.health_port) s.health_port = m.port;
    if (!s.metrics_port) s.metrics_port = m.port;
    bool has_service = service_json && service_json->is_object();
    if (!has_service || !find(*service_json, "health_path")) s.health_path = m.health_path;
    if (!has_service || !find(*service_json, "metrics_path")) s.metrics_path = m.metrics_path;
  }
  if (c.service && !c.service->metrics_port) c.service->metrics_port = c.service->health_port;
}

kryten_config from_json(const json& root) {
  if (!root.is_object()) fail_type("config", "a JSON object", root);
  kryten_config c;
  warn_unknown(root, "", top_keys, c.warnings);
  c.nats = parse_nats(require(root, "nats", "nats"), c.warnings);
  c.channels = parse_channels(require(root, "channels", "channels"), c.warnings);
  // null is accepted as "absent" for the two optional sections.
  auto* service = find(root, "service");
  if (service && !service->is_null()) c.service = parse_service(*service, c.warnings);
  auto* metrics = find(root, "metrics");
  if (metrics && !metrics->is_null()) c.metrics = parse_metrics(*metrics, c.warnings);
  parse_tunables(root, c);
  apply_metrics(c, service);
  return c;
}

// -- text and files ------------------------------------------------------------------------

// The parser quotes the text it choked on, which may be part of a password or token.
std::string redact_excerpt(std::string msg) {
  for (std::string_view marker : {"; last read: '", "parsing '"}) {
    auto start = msg.find(marker);
    if (start == std::string::npos) continue;
    start += marker.size();
    auto end = msg.rfind("'; expected ");
    if (end == std::string::npos || end < start) end = msg.rfind('\'');
    if (end != std::string::npos && end >= start) msg.replace(start, end - start, "...");
  }
  return msg;
}

// Drops nlohmann's "[json.exception.parse_error.101] " prefix; the rest is the parser's text.
std::string parser_message(const json::exception& e) {
  std::string msg = e.what();
  auto close = msg.find("] ");
  if (!msg.empty() && msg.front() == '[' && close != std::string::npos) msg.erase(0, close + 2);
  return redact_excerpt(std::move(msg));
}

json parse_json(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw config_error("config", "invalid JSON (" + parser_message(e) + ")");
  }
}

std::string read_file(const std::filesystem::path& path) {
  auto unreadable = [&path](int err) {
    throw config_error("config", "cannot read file '" + path.string() + "' (" +
                                     (err ? std::strerror(err) : "unknown error") + ")");
  };
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) unreadable(errno);
  std::string text;
  char buf[1 << 16];
  // read() turns I/O errors (e.g. EISDIR) into badbit rather than exceptions.
  while (in.read(buf, sizeof buf), in.gcount() > 0)
    text.append(buf, static_cast<std::size_t>(in.gcount()));
  if (in.bad()) unreadable(errno);
  return text;
}

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Length of a valid VAR name at the start of `s` followed by '}', or 0.
std::size_t var_name_length(std::string_view s) {
  if (s.empty() || !is_name_start(s[0])) return 0;
  std::size_t n = 1;
  while (n < s.size() && is_name_char(s[n])) ++n;
  return n < s.size() && s[n] == '}' ? n : 0;
}

}  // namespace

std::string substitute_env(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    auto start = text.find("${", i);
    if (start == std::string_view::npos) break;
    out.append(text.substr(i, start - i));
    auto len = var_name_length(text.substr(start + 2));
    const char* value =
        len ? std::getenv(std::string(text.substr(start + 2, len)).c_str()) : nullptr;
    if (value) {
      out.append(value);  // inserted verbatim and not scanned again
      i = start + 2 + len + 1;
    } else {
      out.append("${");  // unset or not a variable: left as written
      i = start + 2;
    }
  }
  out.append(text.substr(std::min(i, text.size())));
  return out;
}

kryten_config parse_config(std::string_view json_text) {
  auto root = parse_json(substitute_env(json_text));
  try {
    return from_json(root);
  } catch (const json::exception& e) {
    // Every access is type-checked first; this only guards against a missed case.
    throw config_error("config", "unexpected JSON error (" + parser_message(e) + ")");
  }
}

kryten_config load_config(const std::filesystem::path& path) {
  return parse_config(read_file(path));
}

std::optional<std::string> config_path_from(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c") && i + 1 < argc)
      return std::string{argv[i + 1]};
    if (arg.rfind("--config=", 0) == 0)
      return arg.substr(9);
  }
  if (const char* env = std::getenv("KRYTEN_CONFIG"); env != nullptr && *env != '\0')
    return std::string{env};
  return std::nullopt;
}

std::optional<kryten_config> config_from_command_line(int argc, const char* const* argv,
                                                      std::ostream& err) {
  auto path = config_path_from(argc, argv);
  if (!path) {
    std::string program = argc > 0 ? std::filesystem::path{argv[0]}.filename().string() : "bot";
    err << "usage: " << program << " --config FILE (or KRYTEN_CONFIG=FILE)\n";
    return std::nullopt;
  }
  try {
    return load_config(*path);
  } catch (const config_error& e) {
    err << "config error: " << e.what() << "\n";
    return std::nullopt;
  }
}

}  // namespace kryten
