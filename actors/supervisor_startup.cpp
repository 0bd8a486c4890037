// The supervisor, start-up: the runtime's actors in order, connect, the startup event.
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

/// Commands are CAF messages to the command actor, with no byte bound of
/// their own: a command flood is capped by count.
constexpr std::int64_t max_queued_commands = 10000;

}  // namespace

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
  cs.gate = spec.gate;
  cs.channel_stats = spec.channel_stats;
  cs.log = spec.log;
  cs.on_status = spec.on_status;
  s.connection = spec.make_connection ? spec.make_connection(self->system(), std::move(cs))
                                      : spawn_connection_actor(self->system(), std::move(cs));
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
  if (!micro && !spec.cfg.service->enable_discovery
      && !spec.cfg.service->reregister_on_robot_startup)
    return;
  discovery_spec ds;
  ds.name = spec.identity.service;
  ds.version = spec.identity.version;
  ds.instance_id = spec.identity.instance_id;
  ds.description = "kryten-cpp service " + spec.identity.service;
  ds.started = rfc3339_utc(unix_ns());
  ds.command_subject = subjects::command(spec.identity.service);
  bool reregister = spec.cfg.service->reregister_on_robot_startup && s.lifecycle
                    && spec.identity.service != "robot";
  if (spec.cfg.service->enable_discovery || reregister)
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
  if (reregister)
    route_to_discovery(std::string{subjects::robot_startup});
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
  commands.capacity = std::min<std::int64_t>(s.spec.cfg.handler_queue_size, max_queued_commands);
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

}  // namespace kryten::detail::supervision
