#include "actors/health_actor.hpp"

#include <algorithm>
#include <exception>

#include <caf/all.hpp>

#include "actors/metrics_renderer.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

using health_self = caf::stateful_actor<health_state>;

void add_channels(const health_state& s, health_status& h) {
  std::int64_t last_event = 0;
  for (std::size_t i = 0; i < s.spec.channel_stats.size(); ++i) {
    auto& st = *s.spec.channel_stats[i];
    auto& name = s.spec.channel_names[i];
    h.channels.push_back(name);
    auto received = read(st.received);
    h.events_by_channel[name] = received;
    h.events_received += received;
    h.decode_errors += st.decode_error_total();
    h.dropped_events += read(st.dropped_by_nats);
    last_event = std::max(last_event, st.last_event_unix_ns.load(std::memory_order_relaxed));
  }
  if (last_event > 0)
    h.last_event_time = iso8601(last_event);
}

void add_connection(const health_state& s, health_status& h) {
  auto& cs = *s.spec.conn_stats;
  h.commands_sent = read(cs.commands_sent);
  h.nats_errors = read(cs.nats_errors) + read(cs.slow_consumer_errors);
  h.permission_errors = read(cs.permission_errors);
  h.publish_errors = read(cs.publish_errors) + read(cs.lifecycle_errors);
  h.reconnects = read(cs.reconnects);
  h.connected = s.state == connection_state::connected && !s.disconnected;
  h.state = s.lost_for_good                           ? "error"
            : h.connected                             ? "connected"
            : s.state == connection_state::connecting ? "connecting"
                                                      : "disconnected";
  if (s.connected_since_ns > 0)
    h.uptime_seconds = (steady_ns() - s.connected_since_ns) / 1e9;
}

void add_handlers(const health_state& s, health_status& h) {
  std::uint64_t run_ns = 0;
  histogram_snapshot all_run;
  histogram_snapshot all_queue;
  for (auto& [label, st] : s.handlers) {
    handler_health hh;
    hh.label = label;
    hh.up = st->up.load();
    hh.handled = read(st->handled);
    hh.exceptions = read(st->exceptions);
    hh.timeouts = read(st->timeouts);
    hh.dropped = read(st->dropped);
    hh.restarts = read(st->restarts);
    hh.queued = st->queued.load(std::memory_order_relaxed);
    hh.restartable = st->restartable.load();
    if (auto since = st->busy_since_ns.load(std::memory_order_relaxed); since > 0) {
      auto now = steady_ns();
      hh.busy_seconds = (now - since) / 1e9;
      hh.busy_since = iso8601(unix_ns() - (now - since));
      hh.stuck = std::chrono::nanoseconds(now - since) > s.spec.handler_timeout;
      if (hh.stuck)
        h.stuck_handlers.push_back(label);
    }
    auto run = st->run_hist.snapshot();
    auto queue = st->queue_hist.snapshot();
    hh.run = run.to_summary();
    hh.queue = queue.to_summary();
    all_run.merge(run);
    all_queue.merge(queue);
    h.handler_exceptions += hh.exceptions;
    h.handler_timeouts += hh.timeouts;
    h.dropped_events += hh.dropped;
    h.events_handled += hh.handled;
    run_ns += read(st->run_ns);
    h.handlers.push_back(std::move(hh));
  }
  h.handlers_registered = s.handlers.size();
  h.avg_event_latency_ms = h.events_handled ? run_ns / 1e6 / h.events_handled : 0.0;
  h.handler_latency = all_run.to_summary();
  h.queue_delay = all_queue.to_summary();
}

/// Users' callbacks: one that throws is reported in the details, not fatal.
void add_details(const health_state& s, health_status& h) {
  for (auto& cb : s.details) {
    try {
      auto extra = cb();
      if (extra.is_object())
        for (auto& [k, v] : extra.items())
          h.details[k] = v;
    } catch (const std::exception& e) {
      h.details["details_error"] = e.what();
    } catch (...) {
      h.details["details_error"] = "a health-details callback threw";
    }
  }
}

health_status aggregate(const health_state& s) {
  health_status h;
  h.service = s.spec.service;
  add_channels(s, h);
  add_connection(s, h);
  add_handlers(s, h);
  add_details(s, h);
  auto& flags = *s.spec.flags;
  h.handler_restarts = read(flags.handler_restarts);
  h.shutting_down = flags.shutting_down.load();
  h.errors = h.decode_errors + h.handler_exceptions + h.handler_timeouts + h.dropped_events
             + h.nats_errors + h.permission_errors + h.publish_errors;
  h.ready = h.connected && flags.ready.load() && !h.shutting_down;
  h.subscribed = h.connected && flags.ready.load();
  auto said_degraded = h.details.find("degraded");
  h.abandoned_events = read(flags.abandoned_events);
  h.degraded = flags.handler_down.load() || !h.stuck_handlers.empty()
               || (said_degraded != h.details.end() && *said_degraded == true);
  return h;
}

std::string render(const health_state& s) {
  metrics_input in;
  in.health = aggregate(s);
  in.service = s.spec.service;
  in.version = s.spec.version;
  in.instance_id = s.spec.instance_id;
  for (auto& [label, st] : s.handlers)
    in.histograms.push_back({label, st->run_hist.snapshot(), st->queue_hist.snapshot()});
  std::vector<std::shared_ptr<prometheus::Collectable>> custom;
  if (s.spec.custom_metrics)
    custom.push_back(s.spec.custom_metrics);
  return render_metrics(in, custom);
}

void on_status(health_state& s, const connection_status& st) {
  s.state = st.state;
  if (st.state == connection_state::connected && s.connected_since_ns == 0)
    s.connected_since_ns = steady_ns();
  if (st.state == connection_state::connected)
    s.lost_for_good = false;
  // Lost for good: cnats gave up after a successful connect (a failed
  // connect() closes the connection too, and a retry may follow).
  if (st.state == connection_state::closed && !s.disconnected && s.connected_since_ns > 0)
    s.lost_for_good = true;
}

}  // namespace

caf::behavior health_actor(health_self* self, health_spec spec) {
  self->state.spec = std::move(spec);
  return {
    [self](const connection_status& st) { on_status(self->state, st); },
    [self](add_atom, const std::string& label, const std::shared_ptr<handler_stats>& st) {
      self->state.handlers.emplace_back(label, st);
    },
    [self](remove_atom, const std::string& label) {
      auto& hs = self->state.handlers;
      hs.erase(std::remove_if(hs.begin(), hs.end(), [&](auto& h) { return h.first == label; }),
               hs.end());
    },
    [self](add_atom, const details_callback& cb) { self->state.details.push_back(cb); },
    [self](close_atom) { self->state.disconnected = true; },
    [self](connect_atom) { self->state.disconnected = false; },
    [self](get_atom) { return aggregate(self->state); },
    [self](metrics_atom) -> caf::result<std::string> {
      try {
        return render(self->state);
      } catch (const std::exception& e) {  // a user's custom collector threw
        return caf::make_error(caf::sec::runtime_error, e.what());
      }
    },
  };
}

}  // namespace kryten::detail
