#include "ctl_options.hpp"

#include <cmath>
#include <cstdlib>

#include "kryten/config.hpp"
#include "kryten/lifecycle.hpp"

namespace kryten::ctl {

namespace {

const char* usage_text =
  R"(usage: kryten-ctl [options] COMMAND [args]

Commands:
  ls                 every service instance: from the monitor (system.services),
                     or, when no monitor answers, by a discovery poll
  ping SERVICE       system.ping to the service, and $SRV.PING to every instance
  health SERVICE     system.health: the service's health document
  stats SERVICE      $SRV.STATS: every instance's Service API statistics
  watch              lifecycle events as they happen, one line each
  restart --reason TEXT [--delay S] --yes
                     a group restart notice to every service (refused without --yes)

Options:
  -s, --server URL   NATS server(s), comma-separated (default $NATS_URL or
                     nats://127.0.0.1:4222)
  --config FILE      take the connection settings from a service's configuration
  --creds FILE       a NATS credentials file
  --user U --password P, --token T
  --tls-ca FILE --tls-cert FILE --tls-key FILE
  --timeout S        how long to wait for answers (default 2)
  --monitor NAME     the monitor's service name (default monitor)
  --count N          watch: stop after N events
  --for S            watch: stop after S seconds
  --json             machine-readable output
  -h, --help         this text

Exit codes: 0 answered, 1 nothing answered or NATS not reachable, 2 usage.
)";

double number_arg(const std::string& flag, const std::string& value, double lo, double hi) {
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (value.empty() || end == nullptr || *end != '\0' || !std::isfinite(v))
    throw usage_error(flag + ": not a number: " + value);
  if (v < lo || v > hi)
    throw usage_error(flag + ": must be between " + std::to_string(lo) + " and "
                      + std::to_string(hi));
  return v;
}

std::vector<std::string> split_servers(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    auto part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty())
      out.push_back(part);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return out;
}

bool needs_service(const std::string& command) {
  return command == "ping" || command == "health" || command == "stats";
}

}  // namespace

std::string ctl_usage() { return usage_text; }

ctl_options parse_ctl_options(const std::vector<std::string>& args) {
  ctl_options o;
  if (const char* env = std::getenv("NATS_URL"); env != nullptr && *env != '\0')
    o.link.servers = split_servers(env);
  o.link.name = "kryten-ctl";
  std::vector<std::string> positional;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size())
        throw usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help")
      o.command = "help";
    else if (a == "-s" || a == "--server")
      o.link.servers = split_servers(value());
    else if (a == "--config") {
      try {
        auto cfg = kryten::load_config(value());
        auto name = o.link.name;
        o.link = kryten::apps::link_options_from(cfg.nats, name);
        o.link.max_reconnect = 0;  // a command-line call reports a lost server at once
      } catch (const kryten::config_error& e) {
        throw usage_error(std::string{"--config: "} + e.what());
      }
    } else if (a == "--creds")
      o.link.creds = value();
    else if (a == "--user")
      o.link.user = value();
    else if (a == "--password")
      o.link.password = value();
    else if (a == "--token")
      o.link.token = value();
    else if (a == "--tls-ca")
      o.link.tls_ca = value();
    else if (a == "--tls-cert")
      o.link.tls_cert = value();
    else if (a == "--tls-key")
      o.link.tls_key = value();
    else if (a == "--timeout")
      o.timeout = number_arg(a, value(), 0.1, 60);
    else if (a == "--monitor")
      o.monitor = value();
    else if (a == "--json")
      o.json = true;
    else if (a == "--count")
      o.count = static_cast<long>(number_arg(a, value(), 1, 1e9));
    else if (a == "--for")
      o.duration = number_arg(a, value(), 0.1, 86400);
    else if (a == "--reason")
      o.reason = value();
    else if (a == "--delay")
      o.delay = number_arg(a, value(), 0, kryten::max_restart_delay_seconds);
    else if (a == "--yes" || a == "-y")
      o.yes = true;
    else if (!a.empty() && a[0] == '-')
      throw usage_error("unknown option " + a);
    else
      positional.push_back(a);
  }
  if (o.command == "help")
    return o;
  if (positional.empty())
    throw usage_error("no command given");
  o.command = positional[0];
  static const char* known[] = {"ls", "ping", "health", "stats", "watch", "restart"};
  bool ok = false;
  for (auto k : known)
    ok = ok || o.command == k;
  if (!ok)
    throw usage_error("unknown command " + o.command);
  std::size_t expected = needs_service(o.command) ? 2 : 1;
  if (positional.size() < expected)
    throw usage_error(o.command + " needs a SERVICE");
  if (positional.size() > expected)
    throw usage_error("unexpected argument " + positional[expected]);
  if (needs_service(o.command))
    o.service = positional[1];
  if (o.command == "restart" && o.reason.empty())
    throw usage_error("restart needs --reason TEXT");
  if (o.command == "restart" && !o.yes)
    throw usage_error("restart asks every service on the bus to restart: add --yes to confirm");
  if (o.link.servers.empty())
    throw usage_error("no NATS server given");
  return o;
}

}  // namespace kryten::ctl
