// The supervisor, the graceful shutdown in phases with deadlines, and the stop.
#include "actors/supervisor_state.hpp"

#include <algorithm>
#include <cmath>

#include "actors/command_actor.hpp"
#include "actors/discovery_actor.hpp"
#include "actors/heartbeat_actor.hpp"
#include "actors/lifecycle_actor.hpp"
#include "kryten/errors.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"

namespace kryten::detail::supervision {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// -- shutdown ---------------------------------------------------------------------

std::vector<std::string> busy_handlers(supervisor_self* self) {
  std::vector<std::string> busy;
  for (auto& [addr, h] : self->state.handlers)
    if (h.reg.spec.stats->queued.load(std::memory_order_relaxed) > 0)
      busy.push_back(h.reg.spec.label);
  return busy;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

void finish_shutdown(supervisor_self* self) {
  auto& s = self->state;
  s.shut_down = true;
  s.spec.log->info("shutdown: 5/5 NATS closed");
  if (s.spec.on_shut_down)
    s.spec.on_shut_down();
  for (auto& rp : s.shutdown_waiters)
    rp.deliver(true);
  s.shutdown_waiters.clear();
}

caf::timespan remaining(const supervisor_self* self, caf::timespan cap) {
  auto left = self->state.shutdown_deadline - steady_clock::now();
  auto t = std::chrono::duration_cast<caf::timespan>(left);
  return std::max(std::min(t, cap), caf::timespan{std::chrono::milliseconds(100)});
}

void close_connection(supervisor_self* self) {
  auto& s = self->state;
  if (s.heartbeat)
    self->send_exit(s.heartbeat, caf::exit_reason::user_shutdown);
  self->request(s.connection, remaining(self, 5s), close_atom::value, s.shutdown_reason)
    .then([self](bool) { finish_shutdown(self); },
          [self](caf::error& e) {
            self->state.spec.log->error("closing NATS: {}", self->system().render(e));
            finish_shutdown(self);
          });
}

void publish_shutdown(supervisor_self* self) {
  auto& s = self->state;
  if (!s.lifecycle || !s.connected_once) {
    close_connection(self);
    return;
  }
  s.spec.log->info("shutdown: 4/5 publishing the shutdown event");
  self->request(s.lifecycle, remaining(self, 2s), shutdown_atom::value, s.shutdown_reason)
    .then([self](bool) { close_connection(self); },
          [self](caf::error&) { close_connection(self); });
}

/// Events a handler was given and has not handled (nor dropped): queued or
/// running, less those of its running batch already done.
std::int64_t unhandled(const handler_stats& st) {
  return std::max<std::int64_t>(0, st.queued.load(std::memory_order_relaxed)
                                     - st.done_in_batch.load(std::memory_order_relaxed));
}

/// What happened to the events received: for each handler, every event it
/// was given is handled, dropped (counted when it happened) or abandoned at
/// the drain deadline; what cnats still held then is abandoned before any
/// handler saw it.
void log_event_accounting(supervisor_self* self, std::int64_t still_buffered) {
  auto& s = self->state;
  std::uint64_t received = 0;
  for (auto& st : s.spec.channel_stats)
    received += read(st->received);
  s.spec.log->info("shutdown: events received {}, abandoned in the NATS client's buffers {}",
                   received, still_buffered);
  for (auto& [addr, h] : s.handlers) {
    auto& st = *h.reg.spec.stats;
    s.spec.log->info("shutdown: handler {}: handled {}, dropped {}, abandoned {}",
                     h.reg.spec.label, read(st.handled), read(st.dropped), unhandled(st));
  }
}

/// The drain deadline passed: the handlers take no more events; once each
/// has finished the event it was running (or is stuck in it), what is left
/// is counted as abandoned.
void abandon(supervisor_self* self, const drain_progress& progress) {
  auto& s = self->state;
  s.at_deadline = progress;
  s.busy_at_deadline.clear();
  for (auto& [addr, h] : s.handlers) {
    if (h.reg.spec.inbox)
      h.reg.spec.inbox->close();
    s.busy_at_deadline[addr] = h.reg.spec.stats->busy_since_ns.load(std::memory_order_relaxed);
  }
  s.settle_deadline = steady_clock::now() + 250ms;
  self->send(self, shutdown_settle_atom::value);
}

/// Settled: every handler is idle, or still in the event it ran at the deadline.
bool handlers_settled(supervisor_self* self) {
  for (auto& [addr, h] : self->state.handlers) {
    auto since = h.reg.spec.stats->busy_since_ns.load(std::memory_order_relaxed);
    auto i = self->state.busy_at_deadline.find(addr);
    if (since != 0 && (i == self->state.busy_at_deadline.end() || i->second != since))
      return false;
  }
  return true;
}

void settle(supervisor_self* self) {
  auto& s = self->state;
  if (!handlers_settled(self) && steady_clock::now() < s.settle_deadline) {
    self->delayed_send(self, std::chrono::milliseconds(5), shutdown_settle_atom::value);
    return;
  }
  std::int64_t queued = 0;
  for (auto& [addr, h] : s.handlers)
    queued += unhandled(*h.reg.spec.stats);
  auto pending = std::max<std::int64_t>(0, s.at_deadline.pending);
  bump(s.spec.flags->abandoned_events, static_cast<std::uint64_t>(pending + queued));
  s.abandoned = busy_handlers(self);
  s.spec.log->error("shutdown: drain deadline reached; abandoning {} event(s) ({} still in the "
                    "NATS client's buffers, {} queued or running in handlers){}",
                    pending + queued, pending, queued,
                    s.abandoned.empty() ? std::string{}
                                        : "; handler(s) " + joined(s.abandoned)
                                            + " still busy, going on without them");
  log_event_accounting(self, pending);
  publish_shutdown(self);
}

void drain_step(supervisor_self* self, const drain_progress& progress) {
  auto& s = self->state;
  auto busy = busy_handlers(self);
  if (progress.complete && busy.empty()) {
    s.spec.log->info("shutdown: 3/5 every buffered event handled");
    log_event_accounting(self, 0);
    publish_shutdown(self);
    return;
  }
  if (steady_clock::now() >= s.drain_deadline) {
    // First no event enters any more (what was received is final), then the
    // handlers take no more: the accounting adds up however cnats goes on.
    self->request(s.connection, remaining(self, 1s), drain_atom::value, stop_atom::value)
      .then([self](drain_progress& p) { abandon(self, p); },
            [self, progress](caf::error&) { abandon(self, progress); });
    return;
  }
  self->delayed_send(self, std::chrono::milliseconds(5), shutdown_drain_atom::value);
}

/// One look at how far the drain is: cnats' buffers, then the handlers.
void drain(supervisor_self* self) {
  auto& s = self->state;
  self->request(s.connection, remaining(self, 1s), drain_atom::value)
    .then([self](drain_progress& p) { drain_step(self, p); },
          [self](caf::error&) { drain_step(self, drain_progress{}); });
}

caf::result<bool> shutdown(supervisor_self* self, const std::string& reason) {
  auto& s = self->state;
  auto rp = self->make_response_promise<bool>();
  if (s.shut_down) {
    rp.deliver(true);
    return rp;
  }
  s.shutdown_waiters.push_back(rp);
  if (s.shutting_down)
    return rp;  // a second caller (a signal racing disconnect()) waits for the first
  s.shutting_down = true;
  s.shutdown_reason = reason;
  s.spec.flags->ready = false;
  s.spec.flags->shutting_down = true;
  auto total = s.spec.cfg.service ? s.spec.cfg.service->shutdown_timeout : 10.0;
  auto now = steady_clock::now();
  s.shutdown_deadline = now + std::chrono::duration_cast<steady_clock::duration>(
                                std::chrono::duration<double>(total));
  // Keep time for publishing shutdown and closing NATS after the drain.
  auto reserve = std::min(std::chrono::duration<double>(total / 2), std::chrono::duration<double>(2.0));
  s.drain_deadline = s.shutdown_deadline
                     - std::chrono::duration_cast<steady_clock::duration>(reserve);
  s.spec.log->info("shutting down: {} (within {} s)", reason, total);
  s.spec.log->info("shutdown: 1/5 not ready any more");
  s.spec.log->info("shutdown: 2/5 draining: no new events, buffered ones are handled");
  self->request(s.connection, remaining(self, 2s), unsubscribe_atom::value)
    .then([self](bool) { drain(self); }, [self](caf::error&) { drain(self); });
  return rp;
}

std::vector<caf::actor> children(supervisor_self* self) {
  auto& s = self->state;
  std::vector<caf::actor> out;
  for (auto& [addr, h] : s.handlers)
    out.push_back(h.actor);
  for (auto& a : s.restart_callbacks)
    out.push_back(a);
  for (auto* a : {&s.heartbeat, &s.discovery, &s.lifecycle, &s.commands, &s.connection})
    if (*a)
      out.push_back(*a);
  return out;
}

/// Stops every child. A handler still busy (one abandoned at the drain
/// deadline) is named at once and not waited for: it may never return.
caf::result<std::vector<std::string>> stop_children(supervisor_self* self) {
  auto& s = self->state;
  s.shutting_down = true;
  s.restarting.clear();
  s.stuck.clear();
  s.awaited.clear();
  for (auto& [addr, h] : s.handlers)
    if (h.reg.spec.stats->queued.load(std::memory_order_relaxed) > 0)
      s.stuck.push_back(h.reg.spec.label);
  if (s.spec.command_stats->queued.load(std::memory_order_relaxed) > 0)
    s.stuck.push_back("commands");  // a user's command handler that has not returned
  s.stop_promise = self->make_response_promise();
  for (auto& a : children(self)) {
    auto i = s.handlers.find(a.address());
    bool busy = i != s.handlers.end()
                && i->second.reg.spec.stats->queued.load(std::memory_order_relaxed) > 0;
    if (!busy)
      s.awaited.insert(a.address());
    self->send_exit(a, caf::exit_reason::user_shutdown);
  }
  if (s.awaited.empty())
    s.stop_promise.deliver(s.stuck);
  else
    self->delayed_send(self, 2s, stop_atom::value, true);
  return s.stop_promise;
}

/// Forgets a runtime actor that went down; true if it was one.
bool forget_core(supervisor_state& s, const caf::actor_addr& who) {
  for (auto* a : {&s.heartbeat, &s.discovery, &s.lifecycle, &s.commands, &s.connection})
    if (*a && a->address() == who) {
      *a = nullptr;
      return true;
    }
  return false;
}

}  // namespace kryten::detail::supervision
