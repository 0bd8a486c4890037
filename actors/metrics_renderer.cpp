#include "actors/metrics_renderer.hpp"

#include <map>
#include <set>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace kryten::detail {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

void set_gauge(prometheus::Registry& reg, const std::string& name, const std::string& help,
               double value) {
  BuildGauge().Name(name).Help(help).Register(reg).Add({}).Set(value);
}

void set_counter(prometheus::Registry& reg, const std::string& name, const std::string& help,
                 double value) {
  BuildCounter().Name(name).Help(help).Register(reg).Add({}).Increment(value);
}

void load_histogram(prometheus::Histogram& h, const histogram_snapshot& s) {
  auto counts = s.prometheus_counts();
  std::vector<double> increments(counts.begin(), counts.end());
  h.ObserveMultiple(increments, s.sum_seconds());
}

}  // namespace

std::string metric_prefix(const std::string& service) {
  if (service.empty())
    return "kryten";
  std::string p;
  p.reserve(service.size() + 1);
  if (service[0] >= '0' && service[0] <= '9')
    p += '_';
  for (char c : service) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_';
    p += ok ? c : '_';
  }
  return p;
}

std::string render_metrics(const metrics_input& in,
                           const std::vector<std::shared_ptr<prometheus::Collectable>>& custom) {
  const auto& h = in.health;
  const std::string p = metric_prefix(in.service.empty() ? h.service : in.service);
  const bool healthy = h.connected && !h.degraded;

  prometheus::Registry reg;

  // -- base series (PROTOCOL.md §6) --
  set_gauge(reg, p + "_uptime_seconds", "Seconds since the NATS connection was established.",
            h.uptime_seconds);
  set_gauge(reg, p + "_service_status", "1 when the service is healthy, 0 otherwise.",
            healthy ? 1 : 0);
  set_gauge(reg, p + "_nats_connected", "1 when connected to NATS, 0 otherwise.",
            h.connected ? 1 : 0);

  // -- runtime series --
  BuildGauge()
    .Name(p + "_info")
    .Help("Build and instance information; always 1.")
    .Register(reg)
    .Add({{"service", h.service}, {"version", in.version}, {"instance_id", in.instance_id}})
    .Set(1);
  set_gauge(reg, p + "_ready",
            "1 when connected to NATS, subscribed and not shutting down, 0 otherwise.",
            h.ready ? 1 : 0);
  set_gauge(reg, p + "_handlers_registered", "Registered event handlers.",
            static_cast<double>(h.handlers_registered));

  auto& received = BuildCounter()
                     .Name(p + "_events_received_total")
                     .Help("Events received, by channel (domain/channel).")
                     .Register(reg);
  std::map<std::string, std::uint64_t> by_channel = h.events_by_channel;
  for (const auto& c : h.channels)
    by_channel.emplace(c, 0);
  for (const auto& [channel, n] : by_channel)
    received.Add({{"channel", channel}}).Increment(static_cast<double>(n));

  set_counter(reg, p + "_events_handled_total", "Handler runs.",
              static_cast<double>(h.events_handled));
  set_counter(reg, p + "_commands_sent_total", "Commands published.",
              static_cast<double>(h.commands_sent));

  auto& errors =
    BuildCounter().Name(p + "_errors_total").Help("Errors, by kind.").Register(reg);
  const std::pair<const char*, std::uint64_t> kinds[] = {
    {"decode", h.decode_errors},        {"handler_exception", h.handler_exceptions},
    {"handler_timeout", h.handler_timeouts}, {"dropped", h.dropped_events},
    {"nats", h.nats_errors},            {"publish", h.publish_errors},
    {"permission", h.permission_errors}};
  for (const auto& [kind, n] : kinds)
    errors.Add({{"kind", kind}}).Increment(static_cast<double>(n));

  set_counter(reg, p + "_handler_restarts_total", "Handler actor restarts.",
              static_cast<double>(h.handler_restarts));
  set_counter(reg, p + "_nats_reconnects_total", "Reconnections to NATS.",
              static_cast<double>(h.reconnects));

  auto& up = BuildGauge()
               .Name(p + "_handler_up")
               .Help("1 while a handler runs, 0 once its restart limit was reached.")
               .Register(reg);
  auto& queued = BuildGauge()
                   .Name(p + "_handler_queued")
                   .Help("Events waiting in a handler's queue.")
                   .Register(reg);
  auto& stuck = BuildGauge()
                  .Name(p + "_handler_stuck")
                  .Help("1 while a handler runs one event for longer than handler_timeout.")
                  .Register(reg);
  for (const auto& hh : h.handlers) {
    up.Add({{"handler", hh.label}}).Set(hh.up ? 1 : 0);
    queued.Add({{"handler", hh.label}}).Set(static_cast<double>(hh.queued));
    stuck.Add({{"handler", hh.label}}).Set(hh.stuck ? 1 : 0);
  }

  const auto& bounds = histogram_snapshot::prometheus_bounds_seconds();
  auto& duration = BuildHistogram()
                     .Name(p + "_handler_duration_seconds")
                     .Help("Handler run time, by handler.")
                     .Register(reg);
  auto& delay = BuildHistogram()
                  .Name(p + "_handler_queue_delay_seconds")
                  .Help("Time from an event's arrival to its handler starting, by handler.")
                  .Register(reg);
  for (const auto& hist : in.histograms) {
    load_histogram(duration.Add({{"handler", hist.label}}, bounds), hist.run);
    load_histogram(delay.Add({{"handler", hist.label}}, bounds), hist.queue);
  }

  // -- together with the user's families --
  auto families = reg.Collect();
  std::map<std::string, std::size_t> index;  // name -> position in families
  for (std::size_t i = 0; i < families.size(); ++i)
    index.emplace(families[i].name, i);
  for (const auto& c : custom) {
    if (!c)
      continue;
    for (auto& f : c->Collect()) {
      auto it = index.find(f.name);
      if (it == index.end()) {
        index.emplace(f.name, families.size());
        families.push_back(std::move(f));
      } else if (families[it->second].type == f.type) {
        auto& into = families[it->second].metric;
        into.insert(into.end(), std::make_move_iterator(f.metric.begin()),
                    std::make_move_iterator(f.metric.end()));
      }
    }
  }

  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, families);
  return out.str();
}

std::string render_metrics(const kryten::health_status& h, const std::string& service,
                           const std::vector<std::shared_ptr<prometheus::Collectable>>& custom) {
  metrics_input in;
  in.health = h;
  in.service = service;
  return render_metrics(in, custom);
}

}  // namespace kryten::detail
