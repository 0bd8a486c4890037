// What client.health() reports (PROTOCOL.md §6, plus kryten-cpp's own counters).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kryten {

struct health_status {
  std::string service;
  bool connected = false;
  std::string state = "connecting";  // connected | connecting | disconnected | error
  double uptime_seconds = 0;         // since the connection was established
  std::vector<std::string> channels;  // "domain/channel"
  std::uint64_t events_received = 0;
  std::uint64_t commands_sent = 0;
  std::uint64_t errors = 0;  // the sum of the error counters below
  double avg_event_latency_ms = 0;  // mean handler run time
  std::optional<std::string> last_event_time;  // ISO 8601 UTC
  std::size_t handlers_registered = 0;

  // (ours) the parts of `errors`, and more
  std::uint64_t decode_errors = 0;       // bad messages on event subjects
  std::uint64_t handler_exceptions = 0;  // handlers that threw
  std::uint64_t handler_timeouts = 0;    // handler runs over handler_timeout
  std::uint64_t dropped_events = 0;      // full handler queues and cnats pending limits
  std::uint64_t nats_errors = 0;         // async NATS errors incl. slow consumers
  std::uint64_t publish_errors = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t events_handled = 0;      // handler runs

  nlohmann::json to_json() const;
};

}  // namespace kryten
