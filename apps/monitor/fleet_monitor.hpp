// kryten-monitor's service: the registry fed from the bus, persisted in the
// KV bucket, polled over HTTP and the Service API, and served over HTTP and
// on kryten.{name}.command (system.services).
//
// Threads: lifecycle events arrive in the client's subscription actor and
// only touch the registry (under a mutex). One ticker thread does all the
// slow work (KV reads and writes, /health polls, $SRV.PING, discovery polls,
// sweeping), so that a slow peer or store never holds up the event path.
// The dashboard's HTTP server has threads of its own and reads snapshots.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <kryten/kryten.hpp>

#include "health_poller.hpp"
#include "monitor_settings.hpp"
#include "nats_link.hpp"
#include "registry.hpp"

namespace httplib {
class Server;
}

namespace kryten::monitor {

class fleet_monitor {
public:
  fleet_monitor(kryten::client& client, monitor_settings settings);
  ~fleet_monitor();  // stop()
  fleet_monitor(const fleet_monitor&) = delete;
  fleet_monitor& operator=(const fleet_monitor&) = delete;

  /// Call before client.connect(): subscribes to the lifecycle events and
  /// serves system.services, so that nothing from the start is missed.
  void attach();
  /// Call after client.connect(): reads the KV store back, starts the HTTP
  /// server (throws std::runtime_error when the port cannot be bound),
  /// publishes a discovery poll and starts the ticker.
  void start();
  void stop();

  int http_port() const { return bound_port_; }

private:
  void on_lifecycle(const kryten::bus_message& msg);
  nlohmann::json system_services() const;
  void open_store();
  void restore_from_store();
  void tick_loop();
  void tick(std::chrono::steady_clock::time_point now);
  void poll_health();
  void ping_service_api();
  void sweep();
  void persist();
  void publish_discovery_poll();
  void serve_http();

  kryten::client& client_;
  monitor_settings settings_;
  health_poller poller_;
  std::unique_ptr<kryten::apps::nats_link> link_;  // $SRV.PING gathering
  std::optional<kryten::kv_bucket> store_;

  mutable std::mutex mx_;
  registry registry_;
  std::set<std::string> dirty_;                     // changed since last persisted
  std::map<std::string, std::string> stored_state_;  // key -> state last written

  std::atomic<bool> repoll_{false};
  std::atomic<bool> stopping_{false};
  std::mutex tick_mx_;
  std::condition_variable tick_cv_;
  std::thread ticker_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int bound_port_ = 0;
  std::chrono::steady_clock::time_point next_health_{}, next_service_api_{};
};

}  // namespace kryten::monitor
