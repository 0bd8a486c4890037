// Renders the runtime's state as Prometheus text format 0.0.4 (PROTOCOL.md §6),
// through prometheus-cpp core's data model and TextSerializer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "actors/latency_histogram.hpp"
#include "kryten/health.hpp"

namespace kryten::detail {

/// The Content-Type of a /metrics response.
inline constexpr const char* metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// One handler's latency histograms, for the `handler` label.
struct handler_histograms {
  std::string label;         // e.g. "chatmsg#1"; matches handler_health::label
  histogram_snapshot run;    // handler run time
  histogram_snapshot queue;  // arrival at the connection to handler start
};

/// Everything one scrape renders.
struct metrics_input {
  kryten::health_status health;
  std::string service;      // metric prefix source; health.service when empty
  std::string version;      // for {p}_info
  std::string instance_id;  // for {p}_info
  std::vector<handler_histograms> histograms;
};

/// The metric name prefix for a service: every character outside
/// [a-zA-Z0-9_] becomes '_', and a leading digit gets a '_' in front
/// ("my-bot.2" -> "my_bot_2", "9lives" -> "_9lives"; "" -> "kryten").
std::string metric_prefix(const std::string& service);

/// The exposition text: the base series of PROTOCOL.md §6, the runtime
/// series, then every family of `custom` (user registries). A custom family
/// whose name is already taken by a family of the same type is merged into it;
/// one whose name is taken by another type is left out (the output must stay
/// valid). Exceptions from a custom Collect() propagate.
std::string render_metrics(const metrics_input& in,
                           const std::vector<std::shared_ptr<prometheus::Collectable>>& custom);

/// The same without per-handler histograms or info labels.
std::string render_metrics(const kryten::health_status& h, const std::string& service,
                           const std::vector<std::shared_ptr<prometheus::Collectable>>& custom);

}  // namespace kryten::detail
