// health_status as JSON: the one serialiser behind client.health().to_json(),
// GET /health and the built-in health command.
#include "kryten/health.hpp"

namespace kryten {

namespace {

nlohmann::json summary_json(const latency_summary& s) {
  return {{"count", s.count},   {"mean_ms", s.mean_ms}, {"p50_ms", s.p50_ms},
          {"p90_ms", s.p90_ms}, {"p99_ms", s.p99_ms},   {"p999_ms", s.p999_ms},
          {"max_ms", s.max_ms}};
}

nlohmann::json handler_json(const handler_health& h) {
  return {{"label", h.label},
          {"up", h.up},
          {"restartable", h.restartable},
          {"stuck", h.stuck},
          {"busy_since", h.busy_since ? nlohmann::json(*h.busy_since) : nullptr},
          {"busy_seconds", h.busy_seconds},
          {"handled", h.handled},
          {"exceptions", h.exceptions},
          {"timeouts", h.timeouts},
          {"dropped", h.dropped},
          {"restarts", h.restarts},
          {"queued", h.queued},
          {"run", summary_json(h.run)},
          {"queue", summary_json(h.queue)}};
}

}  // namespace

nlohmann::json health_status::to_json() const {
  const bool healthy = connected && !degraded;
  auto handlers_json = nlohmann::json::array();
  for (const auto& hh : handlers)
    handlers_json.push_back(handler_json(hh));
  nlohmann::json j = {
    // PROTOCOL.md §6 /health
    {"service", service},
    {"status", healthy ? "healthy" : "degraded"},
    {"uptime_seconds", uptime_seconds},
    {"nats_connected", connected},
    // kryten-py's client.health()
    {"connected", connected},
    {"state", state},
    {"channels", channels},
    {"events_received", events_received},
    {"commands_sent", commands_sent},
    {"errors", errors},
    {"avg_event_latency_ms", avg_event_latency_ms},
    {"last_event_time", last_event_time ? nlohmann::json(*last_event_time) : nullptr},
    {"handlers_registered", handlers_registered},
    // kryten-cpp's own
    {"decode_errors", decode_errors},
    {"handler_exceptions", handler_exceptions},
    {"handler_timeouts", handler_timeouts},
    {"dropped_events", dropped_events},
    {"abandoned_events", abandoned_events},
    {"nats_errors", nats_errors},
    {"permission_errors", permission_errors},
    {"publish_errors", publish_errors},
    {"reconnects", reconnects},
    {"events_handled", events_handled},
    {"handler_restarts", handler_restarts},
    {"events_by_channel", events_by_channel},
    {"handler_latency", summary_json(handler_latency)},
    {"queue_delay", summary_json(queue_delay)},
    {"handlers", std::move(handlers_json)},
    {"stuck_handlers", stuck_handlers},
    {"ready", ready},
    {"subscribed", subscribed},
    {"shutting_down", shutting_down},
    {"degraded", degraded},
  };
  // Users' details add fields; they cannot overwrite the runtime's.
  if (details.is_object()) {
    for (const auto& [key, value] : details.items())
      if (!j.contains(key))
        j[key] = value;
  } else if (!details.is_null() && !j.contains("details")) {
    j["details"] = details;
  }
  return j;
}

}  // namespace kryten
