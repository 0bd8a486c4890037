#include "actors/http_probe_actor.hpp"

#include <exception>

#include <caf/all.hpp>

#include "actors/health_actor.hpp"
#include "kryten/message_types.hpp"

namespace kryten::detail {

namespace {

using probe_self = caf::stateful_actor<http_probe_state>;

/// Asks `who` with a deadline from a server thread; nullopt when there is no
/// answer in time (or no actor any more).
template <class T, class... Ts>
std::optional<T> ask(caf::actor_system& sys, const caf::actor_addr& who,
                     std::chrono::milliseconds deadline, Ts... xs) {
  auto target = caf::actor_cast<caf::actor>(who);
  if (!target)
    return std::nullopt;
  std::optional<T> out;
  caf::scoped_actor self{sys};
  self->request(target, deadline, xs...)
    .receive([&](T& x) { out = std::move(x); }, [](caf::error&) {});
  return out;
}

probe_callbacks callbacks_of(caf::actor_system& sys, const http_probe_spec& spec) {
  probe_callbacks cb;
  auto health = spec.health;
  auto supervisor = spec.supervisor;
  cb.health = [&sys, health](std::chrono::milliseconds deadline) {
    return ask<health_status>(sys, health, deadline, get_atom::value);
  };
  cb.metrics = [&sys, health](std::chrono::milliseconds deadline) {
    return ask<std::string>(sys, health, deadline, metrics_atom::value);
  };
  cb.alive = [&sys, supervisor](std::chrono::milliseconds deadline) {
    auto target = caf::actor_cast<caf::actor>(supervisor);
    if (!target)
      return false;
    bool answered = false;
    caf::scoped_actor self{sys};
    self->request(target, deadline, get_atom::value)
      .receive([&](caf::actor&, caf::actor&, caf::actor&) { answered = true; },
               [](caf::error&) {});
    return answered;
  };
  return cb;
}

void listen(probe_self* self, int port, bool serve_health, bool serve_metrics) {
  auto& s = self->state;
  auto& svc = s.spec.service;
  probe_routes routes;
  routes.health_path = svc.health_path;
  routes.metrics_path = svc.metrics_path;
  routes.serve_health = serve_health;
  routes.serve_metrics = serve_metrics;
  auto server = std::make_unique<http_server>(svc.health_host, port, routes,
                                              callbacks_of(self->system(), s.spec), s.spec.log);
  server->start();  // logs where it listens
  s.servers.push_back(std::move(server));
}

/// Binds every configured port; the error names what could not be bound.
std::string start(probe_self* self) {
  auto& s = self->state;
  if (!s.servers.empty())
    return {};
  auto& svc = s.spec.service;
  try {
    if (svc.health_port && svc.metrics_port && *svc.health_port == *svc.metrics_port) {
      listen(self, *svc.health_port, true, true);
    } else {
      if (svc.health_port)
        listen(self, *svc.health_port, true, false);
      if (svc.metrics_port)
        listen(self, *svc.metrics_port, false, true);
    }
  } catch (const std::exception& e) {
    s.servers.clear();  // all or nothing
    return e.what();
  }
  return {};
}

}  // namespace

caf::behavior http_probe_actor(probe_self* self, http_probe_spec spec) {
  self->state.spec = std::move(spec);
  return {
    [self](http_probe_atom) { return start(self); },
  };
}

}  // namespace kryten::detail
