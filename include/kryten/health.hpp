// What client.health() reports (PROTOCOL.md §6, plus kryten-cpp's own counters).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <nlohmann/json.hpp>

namespace kryten {

/// A latency distribution, from a bounded histogram (see latency_histogram).
struct latency_summary {
  std::uint64_t count = 0;
  double mean_ms = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double max_ms = 0;
};

/// One registered handler.
struct handler_health {
  std::string label;  // e.g. "chatmsg#1"
  bool up = true;     // false once its restart limit was reached (or it cannot be restarted)
  bool restartable = true;  // false for a user's actor given to on_actor without a factory
  bool stuck = false;       // running one event for longer than handler_timeout
  std::optional<std::string> busy_since;  // ISO 8601 UTC start of the running event
  double busy_seconds = 0;                // how long it has been running
  std::uint64_t handled = 0;
  std::uint64_t exceptions = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t dropped = 0;
  std::uint64_t restarts = 0;
  std::int64_t queued = 0;
  latency_summary run;    // handler run time
  latency_summary queue;  // arrival at the connection to handler start
};

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
  std::uint64_t abandoned_events = 0;    // still buffered or queued at the shutdown drain deadline
  std::uint64_t nats_errors = 0;         // async NATS errors incl. slow consumers
  std::uint64_t permission_errors = 0;   // permission violations the server reported
  std::uint64_t publish_errors = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t events_handled = 0;      // handler runs
  std::uint64_t handler_restarts = 0;
  std::map<std::string, std::uint64_t> events_by_channel;  // "domain/channel" -> count
  latency_summary handler_latency;  // run time over all handlers
  latency_summary queue_delay;      // arrival to handler start over all handlers
  std::vector<handler_health> handlers;
  std::vector<std::string> stuck_handlers;  // labels of handlers past handler_timeout
  bool ready = false;          // connected, subscribed, not shutting down
  bool subscribed = false;     // every event subscription is in place (for /readyz?verbose)
  bool shutting_down = false;
  bool degraded = false;       // a handler is down or stuck, or a details callback said so
  nlohmann::json details = nlohmann::json::object();  // from user health-details callbacks

  nlohmann::json to_json() const;
};

}  // namespace kryten

// Local only, between the runtime's actors, the client and users' actors.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::health_status)
