// The supervisor's behaviour, and what it does when a child goes down; its
// parts are listed in supervisor_state.hpp.
#include "actors/supervisor_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <caf/all.hpp>

#include "actors/supervisor_state.hpp"

namespace kryten::detail {

namespace supervision {

using namespace std::chrono_literals;

namespace {

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

}  // namespace supervision

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec) {
  return sys.spawn<caf::detached>(supervision::supervisor, std::move(spec));
}

caf::timespan restart_backoff(const service_config& cfg, std::size_t n, double jitter) {
  // Capped before the power: 2^n overflows nothing below the cap.
  auto exponent = std::min<std::size_t>(n, 30);
  auto wait = std::min(cfg.handler_restart_backoff_min * std::ldexp(1.0, static_cast<int>(exponent)),
                       cfg.handler_restart_backoff_max);
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(wait * jitter));
}

}  // namespace kryten::detail
