// kryten-monitor: the fleet view. A kryten service that keeps a registry of
// every service instance on the bus (lifecycle events, discovery polls,
// /health polls, the NATS Service API), persists it in the KV bucket
// kryten_services, serves a dashboard, /api/services and /metrics, and
// answers system.services on kryten.{name}.command.
//
//   kryten-monitor --config monitor.json
//
// Exit codes: 0 after a normal stop (SIGINT/SIGTERM), 1 when NATS cannot be
// reached or is lost for good or the dashboard port cannot be bound, 2 for a
// bad command line or configuration.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include <kryten/kryten.hpp>

#include "fleet_monitor.hpp"
#include "monitor_settings.hpp"

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The "monitor" section is ours: the service loader's warning about it is noise.
void drop_monitor_warning(kryten::kryten_config& config) {
  auto& w = config.warnings;
  w.erase(std::remove_if(w.begin(), w.end(),
                         [](const std::string& s) { return s.rfind("unknown key 'monitor", 0) == 0; }),
          w.end());
}

}  // namespace

int main(int argc, char** argv) {
  auto config = kryten::config_from_command_line(argc, argv, std::cerr);
  if (!config)
    return 2;
  drop_monitor_warning(*config);
  kryten::monitor::monitor_settings settings;
  try {
    auto text = read_file(*kryten::config_path_from(argc, argv));
    settings = kryten::monitor::parse_monitor_settings(text.value_or("{}"));
  } catch (const kryten::config_error& e) {
    std::cerr << "config error: " << e.what() << "\n";
    return 2;
  }
  if (!config->service) {
    config->service = kryten::service_config{};
    config->service->name = "monitor";  // kryten.monitor.command, as kryten-ctl expects
  }
  kryten::client client{*config};
  kryten::monitor::fleet_monitor monitor{client, settings};
  monitor.attach();
  try {
    client.connect();
  } catch (const kryten::connect_error&) {
    return 1;  // the client has logged why
  }
  try {
    monitor.start();
  } catch (const std::runtime_error& e) {
    client.logger()->critical("{}", e.what());
    client.disconnect("cannot start: " + std::string{e.what()});
    return 1;
  }
  int rc = client.run();
  // No event may reach the monitor once it is gone: the client stops first.
  client.disconnect();
  monitor.stop();
  return rc;
}
