// The supervisor, handlers: spawned on threads of their own, restarted with backoff, removed.
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

namespace {

/// A handler inbox's ring: a burst beyond it waits in the inbox's overflow
/// list (same bounds; a lock per event pushed there, one per batch taken).
constexpr std::int64_t ring_slots = 16384;

}  // namespace

// -- handlers -------------------------------------------------------------------

/// Handlers run on threads of their own: whatever user code does there
/// (block, spin, sleep), the runtime's actors and the other handlers go on.
caf::actor spawn_handler(supervisor_self* self, const handler_registration& reg) {
  auto& sys = self->system();
  auto actor = reg.target || reg.spec.factory
                 ? sys.spawn<caf::detached>(forwarding_actor, reg.spec, reg.target)
                 : sys.spawn<caf::detached>(handler_actor, reg.spec);
  self->monitor(actor);
  return actor;
}

handler_route route_of(const supervisor_self* self, const handler_registration& reg,
                       caf::actor actor) {
  handler_route r;
  r.event_name = reg.event_name;
  r.channel = reg.filter.channel;
  r.domain = reg.filter.domain;
  r.actor = std::move(actor);
  r.inbox = reg.spec.inbox;
  r.stats = reg.spec.stats;
  r.capacity = self->state.spec.cfg.handler_queue_size;
  r.label = reg.spec.label;
  return r;
}

void add_handler(supervisor_self* self, handler_registration& reg) {
  auto& s = self->state;
  // The inbox outlives restarts: a restarted handler goes on with its events.
  reg.spec.inbox = std::make_shared<handler_inbox>(
    static_cast<std::size_t>(std::clamp<std::int64_t>(s.spec.cfg.handler_queue_size, 1, ring_slots)),
    s.spec.cfg.handler_queue_bytes);
  reg.spec.stats->restartable = !reg.target;
  if (reg.target)
    s.spec.log->info("handler {} is the user's own actor, given without a factory: it cannot "
                     "be restarted if it dies (on_actor takes a factory for that)",
                     reg.spec.label);
  auto actor = spawn_handler(self, reg);
  if (reg.subject.empty()) {
    s.spec.registry->add(route_of(self, reg, actor));
  } else {
    plain_subscription_request sub{reg.subject, "", route_of(self, reg, actor)};
    s.plain_subs.push_back(sub);
    if (s.connected_once)
      self->request(s.connection, 10s, subscribe_atom::value, sub.subject, sub.queue, sub.route,
                    true)
        .then([self](std::string& err) {
          if (!err.empty())
            self->state.spec.log->error("{}", err);
        },
              [](caf::error&) {});
  }
  s.handlers.emplace(actor.address(), supervised_handler{std::move(reg), actor, {}});
}

const service_config& restart_settings(supervisor_state& s) {
  if (!s.spec.cfg.service)
    s.spec.cfg.service = service_config{};  // restart limits apply without a service section too
  return *s.spec.cfg.service;
}

bool may_restart(supervisor_self* self, supervised_handler& h) {
  auto& cfg = restart_settings(self->state);
  auto now = steady_clock::now();
  auto window = std::chrono::duration_cast<steady_clock::duration>(
    std::chrono::duration<double>(cfg.handler_restart_window));
  while (!h.restarts.empty() && now - h.restarts.front() > window)
    h.restarts.pop_front();
  if (static_cast<int>(h.restarts.size()) >= cfg.handler_restart_limit)
    return false;
  h.restarts.push_back(now);
  return true;
}

/// Takes a handler out of service for good: no more events are routed to it.
void retire(supervisor_self* self, supervised_handler& h, bool degraded) {
  auto& s = self->state;
  h.reg.spec.stats->up = false;
  if (degraded)
    s.spec.flags->handler_down = true;
  s.spec.registry->remove(h.reg.spec.label);
  s.plain_subs.erase(std::remove_if(s.plain_subs.begin(), s.plain_subs.end(),
                                    [&](const plain_subscription_request& p) {
                                      return p.route.label == h.reg.spec.label;
                                    }),
                     s.plain_subs.end());
}

void on_handler_down(supervisor_self* self, const caf::down_msg& down) {
  auto& s = self->state;
  auto i = s.handlers.find(down.source);
  if (i == s.handlers.end())
    return;
  auto h = std::move(i->second);
  s.handlers.erase(i);
  if (s.shutting_down)
    return;
  auto& label = h.reg.spec.label;
  if (!down.reason || down.reason == caf::exit_reason::user_shutdown) {
    retire(self, h, false);
    s.spec.log->info("handler {} stopped; its events are no longer routed", label);
    return;
  }
  auto why = self->system().render(down.reason);
  auto& cfg = restart_settings(s);
  if (!h.reg.spec.stats->restartable) {
    retire(self, h, true);
    s.spec.log->error("handler {} died ({}); it is the user's own actor, given without a "
                      "factory, so it cannot be restarted: it stays down and the service is "
                      "degraded",
                      label, why);
    return;
  }
  if (!may_restart(self, h)) {
    retire(self, h, true);
    s.spec.log->error("handler {} died ({}) and reached its restart limit ({} in {} s): it "
                      "stays down and the service is degraded",
                      label, why, cfg.handler_restart_limit, cfg.handler_restart_window);
    return;
  }
  std::uniform_real_distribution<double> jitter{1.0, 1.2};
  auto wait = restart_backoff(cfg, h.restarts.size() - 1, jitter(s.jitter));
  s.spec.log->warn("handler {} died ({}); restarting in {} ms (restart {} of at most {} "
                   "within {} s)",
                   label, why, std::chrono::duration_cast<std::chrono::milliseconds>(wait).count(),
                   h.restarts.size(), cfg.handler_restart_limit, cfg.handler_restart_window);
  self->delayed_send(self, wait, restart_handler_atom::value, label);
  s.restarting.emplace(label, std::move(h));
}

/// A backoff is over: the handler starts afresh, with the events that waited.
void restart_handler(supervisor_self* self, const std::string& label) {
  auto& s = self->state;
  auto i = s.restarting.find(label);
  if (i == s.restarting.end())
    return;
  auto h = std::move(i->second);
  s.restarting.erase(i);
  if (s.shutting_down)
    return;
  bump(h.reg.spec.stats->restarts);
  bump(s.spec.flags->handler_restarts);
  h.actor = spawn_handler(self, h.reg);
  s.spec.registry->replace(label, h.actor);
  for (auto& p : s.plain_subs)
    if (p.route.label == label)
      p.route.actor = h.actor;  // a resubscription after a failed connect goes to it
  // A delivery thread that read the old route just before the replace may
  // have woken the dead actor: look at the inbox once more, later.
  self->delayed_send(h.actor, 250ms, drain_atom::value);
  s.spec.log->info("handler {} restarted", label);
  s.handlers.emplace(h.actor.address(), std::move(h));
}

/// Takes a handler out at the user's request: its route goes at once, its
/// actor is stopped (a user's own actor given as target is not: it is theirs).
caf::result<bool> remove_handler(supervisor_self* self, const std::string& label) {
  auto& s = self->state;
  if (auto r = s.restarting.find(label); r != s.restarting.end()) {
    retire(self, r->second, false);
    s.restarting.erase(r);
    return true;
  }
  auto i = std::find_if(s.handlers.begin(), s.handlers.end(),
                        [&](auto& entry) { return entry.second.reg.spec.label == label; });
  if (i == s.handlers.end())
    return make_error(error_code::unknown_handler, "no handler or subscription " + label);
  auto h = std::move(i->second);
  s.handlers.erase(i);
  retire(self, h, false);
  self->send_exit(h.actor, caf::exit_reason::user_shutdown);
  s.spec.log->info("handler {} removed", label);
  if (h.reg.subject.empty() || !s.connection)
    return true;
  // Answered once cnats has dropped the subscription: nothing arrives after.
  auto rp = self->make_response_promise<bool>();
  self->request(s.connection, 10s, unsubscribe_atom::value, label)
    .then([rp](bool) mutable { rp.deliver(true); },
          [rp](caf::error&) mutable { rp.deliver(true); });
  return rp;
}

}  // namespace kryten::detail::supervision
