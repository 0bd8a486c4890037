#include "actors/supervisor_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <random>
#include <set>

#include <caf/all.hpp>

#include "actors/command_actor.hpp"
#include "actors/connection_actor.hpp"
#include "actors/discovery_actor.hpp"
#include "actors/heartbeat_actor.hpp"
#include "actors/lifecycle_actor.hpp"
#include "kryten/errors.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
using shutdown_drain_atom = caf::atom_constant<caf::atom("kshdrain")>;
using restart_now_atom = caf::atom_constant<caf::atom("krstnow")>;
using restart_handler_atom = caf::atom_constant<caf::atom("krsthnd")>;
using shutdown_settle_atom = caf::atom_constant<caf::atom("kshsettl")>;

/// A handler the supervisor keeps alive.
struct supervised_handler {
  handler_registration reg;
  caf::actor actor;
  std::deque<steady_clock::time_point> restarts;  // within the window
};

struct plain_subscription_request {
  std::string subject;
  std::string queue;
  handler_route route;
};

struct supervisor_state {
  supervisor_spec spec;
  caf::actor health, http_probe, connection, lifecycle, heartbeat, discovery, commands;
  std::map<caf::actor_addr, supervised_handler> handlers;
  std::map<std::string, supervised_handler> restarting;  // by label, waiting out a backoff
  std::vector<plain_subscription_request> plain_subs;  // (re)made on connect
  std::vector<plain_subscription_request> discovery_subs;
  std::vector<caf::actor> restart_listeners;  // users' actors and callback actors
  std::vector<caf::actor> restart_callbacks;  // the callback actors (ours to stop)
  std::minstd_rand jitter{std::random_device{}()};
  std::vector<std::string> abandoned;  // handlers still busy at the drain deadline
  drain_progress at_deadline;          // cnats' buffers when the drain gave up
  std::map<caf::actor_addr, std::int64_t> busy_at_deadline;  // busy_since_ns then
  steady_clock::time_point settle_deadline;
  std::shared_ptr<handler_stats> inbox = std::make_shared<handler_stats>();  // its bus queue
  std::shared_ptr<handler_stats> discovery_inbox = std::make_shared<handler_stats>();
  bool connected_once = false;
  bool shutting_down = false;
  bool shut_down = false;
  std::vector<caf::response_promise> shutdown_waiters;
  std::string shutdown_reason;
  steady_clock::time_point shutdown_deadline;
  steady_clock::time_point drain_deadline;
  caf::response_promise stop_promise;
  std::set<caf::actor_addr> awaited;  // children whose exit the stop waits for
  std::vector<std::string> stuck;     // named by the stop: busy, or not down in time
  static inline const char* name = "kryten.supervisor";
};

using supervisor_self = caf::stateful_actor<supervisor_state>;

bool lifecycle_on(const supervisor_spec& spec) {
  return spec.cfg.service && spec.cfg.service->enable_lifecycle;
}

caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(s));
}

// -- start-up -------------------------------------------------------------------

void spawn_core(supervisor_self* self) {
  auto& s = self->state;
  auto& spec = s.spec;
  // First, so that it sees every fact; linked, so that it stops with us.
  s.health = self->spawn<caf::detached + caf::linked>(health_actor, spec.health);
  if (spec.cfg.service && (spec.cfg.service->health_port || spec.cfg.service->metrics_port))
    s.http_probe = self->spawn<caf::detached + caf::linked>(
      http_probe_actor,
      http_probe_spec{*spec.cfg.service, s.health.address(), self->address(), spec.log});
  connection_spec cs;
  cs.nats = spec.cfg.nats;
  cs.channels = spec.cfg.channels;
  cs.client_name = spec.identity.service;
  cs.registry = spec.registry;
  cs.stats = spec.conn_stats;
  cs.channel_stats = spec.channel_stats;
  cs.log = spec.log;
  cs.on_status = spec.on_status;
  s.connection = spawn_connection_actor(self->system(), std::move(cs));
  self->monitor(s.connection);
  self->send(s.connection, status_atom::value, s.health);
  if (lifecycle_on(spec)) {
    s.lifecycle = spawn_lifecycle_actor(
      self->system(), lifecycle_spec{spec.identity, s.connection, spec.conn_stats, spec.log});
    self->monitor(s.lifecycle);
    self->send(s.connection, status_atom::value, s.lifecycle);
  }
  command_spec cmd;
  cmd.service = spec.identity.service;
  cmd.instance_id = spec.identity.instance_id;
  cmd.connection = s.connection;
  cmd.health = s.health;
  cmd.stats = spec.command_stats;
  cmd.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
    std::chrono::duration<double>(spec.cfg.handler_timeout));
  cmd.log = spec.log;
  s.commands = spawn_command_actor(self->system(), std::move(cmd));
  self->monitor(s.commands);
}

void spawn_discovery(supervisor_self* self) {
  auto& s = self->state;
  auto& spec = s.spec;
  if (!spec.cfg.service)
    return;
  std::string why;
  bool micro = micro_identity_ok(spec.identity.service, spec.identity.version, why);
  if (!micro)
    spec.log->warn("not registered with the NATS Service API: {}", why);
  if (!micro && !spec.cfg.service->enable_discovery)
    return;
  discovery_spec ds;
  ds.name = spec.identity.service;
  ds.version = spec.identity.version;
  ds.instance_id = spec.identity.instance_id;
  ds.description = "kryten-cpp service " + spec.identity.service;
  ds.started = rfc3339_utc(unix_ns());
  ds.command_subject = subjects::command(spec.identity.service);
  if (spec.cfg.service->enable_discovery)
    ds.lifecycle = s.lifecycle;
  ds.connection = s.connection;
  ds.inbox = s.discovery_inbox;
  ds.command_stats = spec.command_stats;
  ds.commands = s.commands;
  ds.log = spec.log;
  s.discovery = spawn_discovery_actor(self->system(), ds);
  self->monitor(s.discovery);
  auto route_to_discovery = [&](const std::string& subject) {
    handler_route r;
    r.actor = s.discovery;
    r.stats = s.discovery_inbox;
    r.capacity = 1000;
    r.label = "discovery";
    s.discovery_subs.push_back({subject, "", std::move(r)});
  };
  if (spec.cfg.service->enable_discovery && s.lifecycle)
    route_to_discovery(std::string{subjects::discovery_poll});
  if (micro)
    for (auto& subject : micro_subjects(ds.name, ds.instance_id))
      route_to_discovery(subject);
}

std::vector<plain_subscription_request> service_subscriptions(supervisor_self* self) {
  auto& s = self->state;
  std::vector<plain_subscription_request> subs;
  handler_route restart_route;
  restart_route.actor = caf::actor_cast<caf::actor>(self);
  restart_route.stats = s.inbox;
  restart_route.capacity = 1000;
  restart_route.label = "group-restart";
  subs.push_back({std::string{subjects::group_restart}, "", std::move(restart_route)});
  handler_route commands;
  commands.actor = s.commands;
  commands.stats = s.spec.command_stats;
  commands.capacity = s.spec.cfg.handler_queue_size;
  commands.label = "commands";
  subs.push_back({subjects::command(s.spec.identity.service), "q", std::move(commands)});
  if (!s.discovery)
    spawn_discovery(self);
  for (auto& p : s.discovery_subs)
    subs.push_back(p);
  for (auto& p : s.plain_subs)
    subs.push_back(p);
  return subs;
}

/// Subscribes one after another, the server confirming the batch once at the
/// end; `done` gets the first error or "".
void subscribe_all(supervisor_self* self,
                   std::shared_ptr<std::vector<plain_subscription_request>> subs, std::size_t i,
                   std::function<void(std::string)> done) {
  if (i == subs->size()) {
    done({});
    return;
  }
  auto& sub = (*subs)[i];
  bool last = i + 1 == subs->size();
  self->request(self->state.connection, 10s, subscribe_atom::value, sub.subject, sub.queue,
                sub.route, last)
    .then(
      [self, subs, i, done](std::string& err) {
        if (!err.empty())
          done(err);
        else
          subscribe_all(self, subs, i + 1, done);
      },
      [self, done](caf::error& e) { done(self->system().render(e)); });
}

void announce(supervisor_self* self, caf::response_promise rp) {
  auto& s = self->state;
  s.connected_once = true;
  auto finish = [self, rp]() mutable {
    auto& st = self->state;
    if (st.lifecycle && st.spec.cfg.service->enable_heartbeat && !st.heartbeat) {
      auto ms = std::chrono::milliseconds(st.spec.cfg.service->heartbeat_interval * 1000);
      st.heartbeat = spawn_heartbeat_actor(self->system(), st.lifecycle, ms);
      self->monitor(st.heartbeat);
    }
    st.spec.flags->ready = !st.shutting_down;
    rp.deliver(std::string{});
  };
  if (!s.lifecycle) {
    finish();
    return;
  }
  self->request(s.lifecycle, 5s, startup_atom::value)
    .then([finish](bool) mutable { finish(); }, [finish](caf::error&) mutable { finish(); });
}

caf::result<std::string> connect(supervisor_self* self) {
  auto rp = self->make_response_promise<std::string>();
  auto& s = self->state;
  auto timeout = seconds(s.spec.cfg.nats.connect_timeout * s.spec.cfg.nats.servers.size() + 5);
  self->request(s.connection, timeout, connect_atom::value)
    .then(
      [self, rp](std::string& err) mutable {
        if (!err.empty()) {
          rp.deliver(err);
          return;
        }
        auto subs = std::make_shared<std::vector<plain_subscription_request>>(
          service_subscriptions(self));
        subscribe_all(self, subs, 0, [self, rp](std::string err) mutable {
          if (err.empty()) {
            announce(self, rp);
            return;
          }
          // A failed connect() leaves nothing connected: a retry starts afresh.
          self->request(self->state.connection, 10s, close_atom::value, "Connect failed")
            .then([rp, err](bool) mutable { rp.deliver(err); },
                  [rp, err](caf::error&) mutable { rp.deliver(err); });
        });
      },
      [self, rp](caf::error& e) mutable { rp.deliver(self->system().render(e)); });
  return rp;
}

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
    static_cast<std::size_t>(std::max<std::int64_t>(1, s.spec.cfg.handler_queue_size)));
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

// -- group restart notices -----------------------------------------------------

void on_restart_notice(supervisor_self* self, const bus_message& msg) {
  auto& s = self->state;
  std::string error;
  auto notice = parse_restart_notice(msg.data, error);
  if (!notice) {
    s.spec.log->error("ignoring group restart notice: {}", error);
    return;
  }
  if (!notice->clamped_from.empty())
    s.spec.log->warn("group restart notice asks for a delay of {} s: clamped to {} s",
                     notice->clamped_from, notice->delay_seconds);
  s.spec.log->warn("group restart requested by {}: {} (delay {} s)", notice->initiator,
                   notice->reason, notice->delay_seconds);
  auto body = notice->json();
  // Callbacks get the whole notice with §5's defaults filled in (client.hpp).
  auto fill = [&body](const char* key, const nlohmann::json& value) {
    if (!body.contains(key) || body[key].is_null())
      body[key] = value;
  };
  fill("initiator", notice->initiator);
  fill("reason", notice->reason);
  fill("delay_seconds", notice->delay_seconds);
  notice->body = body.dump();
  for (auto& listener : s.restart_listeners)
    self->send(listener, *notice);
  if (s.spec.cfg.service && s.spec.cfg.service->restart_on_notice) {
    s.spec.log->warn("restart_on_notice: stopping in {} s (exit code {})",
                     notice->delay_seconds, restart_exit_code);
    self->delayed_send(self, seconds(notice->delay_seconds), restart_now_atom::value,
                       "Group restart: " + notice->reason);
  }
}

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
    abandon(self, progress);
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

void on_child_down(supervisor_self* self, const caf::down_msg& down) {
  auto& s = self->state;
  if (s.awaited.erase(down.source) > 0) {
    s.handlers.erase(down.source);
    forget_core(s, down.source);
    if (s.awaited.empty())
      s.stop_promise.deliver(s.stuck);
    return;
  }
  if (s.handlers.count(down.source)) {
    on_handler_down(self, down);
    return;
  }
  if (forget_core(s, down.source) && !s.shutting_down && down.reason)
    s.spec.log->error("a runtime actor died: {}", self->system().render(down.reason));
}

caf::behavior supervisor(supervisor_self* self, supervisor_spec spec) {
  self->state.spec = std::move(spec);
  spawn_core(self);
  self->set_down_handler([self](caf::down_msg& down) { on_child_down(self, down); });
  return {
    [self](get_atom) {
      return caf::make_message(self->state.connection, self->state.commands,
                               self->state.health);
    },
    [self](connect_atom) { return connect(self); },
    [self](http_probe_atom) -> caf::result<std::string> {
      if (!self->state.http_probe)
        return std::string{};
      auto rp = self->make_response_promise();
      self->request(self->state.http_probe, 10s, http_probe_atom::value)
        .then([rp](std::string& err) mutable { rp.deliver(std::move(err)); },
              [self, rp](caf::error& err) mutable {
                rp.deliver("HTTP probe: " + self->system().render(err));
              });
      return rp;
    },
    [self](add_atom, handler_registration& reg) {
      add_handler(self, reg);
      return true;
    },
    [self](remove_atom, const std::string& label) { return remove_handler(self, label); },
    [self](restart_atom, restart_callback& cb) {
      auto& s = self->state;
      auto actor = spawn_restart_callback_actor(self->system(), std::move(cb), s.spec.log);
      s.restart_callbacks.push_back(actor);
      s.restart_listeners.push_back(std::move(actor));
    },
    [self](restart_atom, caf::actor& listener) {
      self->state.restart_listeners.push_back(std::move(listener));
    },
    [self](metadata_atom, const std::string& key, const std::string& value) {
      if (self->state.lifecycle)
        self->send(self->state.lifecycle, metadata_atom::value, key, value);
    },
    [self](const bus_message& msg) {
      on_restart_notice(self, msg);
      self->state.inbox->queued.fetch_sub(1, std::memory_order_relaxed);
    },
    [self](restart_now_atom, const std::string& reason) {
      self->state.spec.request_stop(reason, restart_exit_code);
    },
    [self](shutdown_drain_atom) { drain(self); },
    [self](shutdown_settle_atom) { settle(self); },
    [self](shutdown_atom, const std::string& reason) { return shutdown(self, reason); },
    [self](stop_atom) { return stop_children(self); },
    [self](stop_atom, bool) {
      // the stop deadline: name whoever is still running
      auto& s = self->state;
      if (s.awaited.empty())
        return;
      for (auto& addr : s.awaited) {
        auto i = s.handlers.find(addr);
        s.stuck.push_back(i != s.handlers.end() ? i->second.reg.spec.label : "runtime actor");
      }
      s.awaited.clear();
      s.stop_promise.deliver(s.stuck);
    },
    [self](restart_handler_atom, const std::string& label) { restart_handler(self, label); },
  };
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec) {
  return sys.spawn<caf::detached>(supervisor, std::move(spec));
}

caf::timespan restart_backoff(const service_config& cfg, std::size_t n, double jitter) {
  // Capped before the power: 2^n overflows nothing below the cap.
  auto exponent = std::min<std::size_t>(n, 30);
  auto wait = std::min(cfg.handler_restart_backoff_min * std::ldexp(1.0, static_cast<int>(exponent)),
                       cfg.handler_restart_backoff_max);
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(wait * jitter));
}

}  // namespace kryten::detail
