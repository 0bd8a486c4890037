#include "actors/lifecycle_actor.hpp"

#include <chrono>
#include <optional>

#include <caf/all.hpp>

#include "actors/connection_actor.hpp"
#include "messages/clock.hpp"
#include "kryten/message_types.hpp"
#include "kryten/subjects.hpp"

namespace kryten::detail {

namespace {

using namespace std::chrono_literals;

struct lifecycle_state {
  lifecycle_spec spec;
  std::optional<std::int64_t> started_ns;  // uptime counts from the first connection
  bool online = false;
  std::optional<connection_status> pending_loss;  // a disconnect not yet published
  static inline const char* name = "kryten.lifecycle";
};

using lifecycle_self = caf::stateful_actor<lifecycle_state>;

std::optional<double> uptime(lifecycle_self* self) {
  auto& s = self->state;
  if (!s.started_ns)
    return std::nullopt;
  return (steady_ns() - *s.started_ns) / 1e9;
}

/// Publishes one event; `done` learns whether it was handed to NATS.
template <class Done>
void publish(lifecycle_self* self, const std::string& kind, const nlohmann::json& extra,
             Done on_done) {
  auto& s = self->state;
  auto done = std::make_shared<Done>(std::move(on_done));
  // `counted`: the connection actor already counted (publish_errors) the
  // failed publish; counting it here too would make one failure two errors.
  auto fail = [self, kind, done](const std::string& why, bool counted = false) {
    if (!counted)
      bump(self->state.spec.stats->lifecycle_errors);
    self->state.spec.log->error("cannot publish {} event: {}", kind, why);
    (*done)(false);
  };
  if (!s.online) {
    fail("not connected to NATS");
    return;
  }
  auto subject = subjects::lifecycle(s.spec.identity.service, kind);
  auto body = lifecycle_payload(s.spec.identity, uptime(self), extra).dump();
  self->request(s.spec.connection, 5s, confirm_atom::value, subject, body)
    .then(
      [fail, done](bool ok) {
        if (ok)
          (*done)(true);
        else
          fail("publish failed", true);
      },
      [self, fail](caf::error& err) { fail(self->system().render(err)); });
}

void publish(lifecycle_self* self, const std::string& kind, const nlohmann::json& extra) {
  publish(self, kind, extra, [](bool) {});
}

nlohmann::json servers_of(const connection_status& st) {
  return st.server.empty() ? nlohmann::json::array() : nlohmann::json::array({st.server});
}

void on_status(lifecycle_self* self, const connection_status& st) {
  auto& s = self->state;
  if (st.state == connection_state::connected) {
    if (!s.started_ns)
      s.started_ns = steady_ns();
    s.online = true;
    if (s.pending_loss) {
      auto down_s = (st.at_ns - s.pending_loss->at_ns) / 1e9;
      publish(self, "disconnected",
              {{"target", "NATS"},
               {"reason", s.pending_loss->reason},
               {"servers", servers_of(*s.pending_loss)},  // the server lost
               {"disconnected_at", iso8601(s.pending_loss->at_ns)},
               {"downtime_seconds", down_s}});
      s.pending_loss.reset();
    }
    publish(self, "connected", {{"target", "NATS"}, {"servers", servers_of(st)}});
  } else if (st.state == connection_state::disconnected && s.online) {
    s.online = false;  // cannot publish now: said once the connection is back
    s.pending_loss = st;
  } else if (st.state == connection_state::closed) {
    s.online = false;
  }
}

caf::behavior lifecycle_actor(lifecycle_self* self, lifecycle_spec spec) {
  self->state.spec = std::move(spec);
  return {
    [self](const connection_status& st) { on_status(self, st); },
    [self](startup_atom) {
      auto rp = self->make_response_promise<bool>();
      publish(self, "startup", nlohmann::json::object(),
              [rp](bool ok) mutable { rp.deliver(ok); });
      return rp;
    },
    [self](heartbeat_atom, std::uint64_t count) {
      bump(self->state.spec.stats->heartbeats);
      publish(self, "heartbeat", {{"heartbeat_count", count}});
    },
    [self](shutdown_atom, const std::string& reason) {
      auto rp = self->make_response_promise<bool>();
      publish(self, "shutdown", {{"reason", reason}},
              [rp](bool ok) mutable { rp.deliver(ok); });
      return rp;
    },
    [self](metadata_atom, const std::string& key, const std::string& value) {
      self->state.spec.identity.metadata[key] = nlohmann::json::parse(value, nullptr, false);
    },
  };
}

}  // namespace

caf::actor spawn_lifecycle_actor(caf::actor_system& sys, lifecycle_spec spec) {
  return sys.spawn<caf::detached>(lifecycle_actor, std::move(spec));
}

}  // namespace kryten::detail
