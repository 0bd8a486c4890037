// kryten-bench: the bench's own NATS connection -- command requests to the
// systems (health, bench_reset), their "!ping" replies timed against the
// publisher's stamp, and their lifecycle startup events.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include "bench_system.hpp"

namespace kbench {

class bus {
public:
  void connect(const std::string& url);
  void close();

  /// Pongs and startups of `s->service` are attributed to `s` from now on.
  void add(system_ut* s);
  void remove(system_ut* s);
  /// When the service's first lifecycle startup event arrived (mono_ns).
  std::optional<std::int64_t> startup_seen(const std::string& service);
  std::uint64_t unmatched_pongs() const { return unmatched_.load(); }

  /// Sends {"command": command} to kryten.{service}.command; the reply's
  /// data, or nullopt (no reply in time, no responders, success false).
  std::optional<json> request(const std::string& service, const std::string& command,
                              int timeout_ms);

private:
  static void on_pong(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_startup(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);

  natsConnection* nc_ = nullptr;
  natsSubscription* pongs_ = nullptr;
  natsSubscription* lifecycle_ = nullptr;
  std::mutex mx_;
  std::unordered_map<std::string, system_ut*> by_service_;
  std::unordered_map<std::string, std::int64_t> startups_;
  std::atomic<std::uint64_t> unmatched_{0};
};

}  // namespace kbench
