#include "actors/loopback_connection_actor.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/event_path.hpp"
#include "actors/kv_actor.hpp"
#include "kryten/errors.hpp"
#include "kryten/kv.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

struct plain_route {
  std::string subject;  // may hold wildcards
  handler_route route;
};

struct kv_bucket_memory {
  std::uint64_t sequence = 0;
  std::map<std::string, kv_entry> latest;  // erased keys keep their erase entry
};

struct kv_watch_entry {
  std::string label;
  std::string bucket;
  std::string key;  // ">" = every key
  caf::actor target;
};

struct loopback_state {
  connection_spec spec;
  std::shared_ptr<loopback_bus> bus;
  connection_status status;
  std::vector<caf::actor> listeners;
  std::vector<std::unique_ptr<event_subscription>> events;  // one per channel
  bool draining = false;  // the shutdown drain: no new events
  std::vector<plain_route> plain;
  std::map<std::string, kv_bucket_memory> kv;
  std::vector<kv_watch_entry> watches;
  std::uint64_t next_watch = 1;
  std::uint64_t next_inbox = 1;
  static inline const char* name = "kryten.loopback_connection";

  bool connected() const { return status.state == connection_state::connected; }
  /// cnats buffers what is published while it reconnects: so does the loopback.
  bool can_publish() const {
    return connected() || status.state == connection_state::disconnected;
  }
};

using loopback_self = caf::stateful_actor<loopback_state>;

void set_status(loopback_self* self, connection_status st) {
  auto& s = self->state;
  if (st.at_ns == 0)
    st.at_ns = unix_ns();
  if (st.server.empty())
    st.server = "loopback";
  s.status = std::move(st);
  if (s.spec.on_status)
    s.spec.on_status(s.status);
  for (auto& listener : s.listeners)
    self->send(listener, s.status);
}

std::string connect(loopback_self* self) {
  auto& s = self->state;
  if (s.connected())
    return {};
  if (s.events.empty())
    for (std::size_t i = 0; i < s.spec.channels.size(); ++i) {
      auto sub = std::make_unique<event_subscription>();
      sub->subject = subjects::channel_events(s.spec.channels[i].channel);
      sub->registry = s.spec.registry;
      sub->stats = s.spec.channel_stats[i];
      sub->log = s.spec.log;
      s.events.push_back(std::move(sub));
    }
  set_status(self, {connection_state::connected, "loopback", "", unix_ns()});
  return {};
}

/// Hands a message to every subscription of the service that matches.
void deliver(loopback_self* self, const bus_message& m) {
  auto& s = self->state;
  if (!s.connected())
    return;
  if (!s.draining)
    for (auto& sub : s.events)
      if (subject_matches(sub->subject, m.subject)) {
        sub->handle(m.subject.c_str(), m.data, false);
        sub->wake_all();
      }
  for (auto& p : s.plain)
    if (subject_matches(p.subject, m.subject))
      offer(p.route, caf::make_message(m), queued_event_bytes(m));
}

bool publish(loopback_self* self, bus_message m) {
  auto& s = self->state;
  if (!s.can_publish()) {
    bump(s.spec.stats->publish_errors);
    return false;
  }
  bump(s.spec.stats->published);
  s.bus->record(m);
  deliver(self, m);  // the service hears itself, as on NATS
  return true;
}

caf::result<std::string> request(loopback_self* self, const std::string& subject,
                                 const std::string& data) {
  auto& s = self->state;
  if (!s.connected())
    return make_error(error_code::not_connected, "not connected to NATS");
  bus_message m{subject, data, "_INBOX.loopback." + std::to_string(s.next_inbox++)};
  publish(self, m);
  if (auto reply = s.bus->answer_request(m))
    return *reply;
  return make_error(error_code::no_responders, "no responders");
}

// -- the key-value store, in memory ----------------------------------------------

// Unlike JetStream's, usable before connect(): a test seeds what a previous run stored.
caf::expected<kv_bucket_memory*> bucket_of(loopback_self* self, const std::string& bucket) {
  auto& s = self->state;
  auto i = s.kv.find(bucket);
  if (i == s.kv.end())
    return make_error(error_code::no_such_bucket, "no bucket " + bucket);
  return &i->second;
}

void notify_watches(loopback_self* self, const kv_entry& e) {
  for (auto& w : self->state.watches)
    if (w.bucket == e.bucket && (w.key == ">" || subject_matches(w.key, e.key)))
      self->send(w.target, e);
}

caf::expected<std::uint64_t> change(loopback_self* self, const std::string& bucket,
                                    const std::string& key, std::string value,
                                    kv_operation op) {
  auto b = bucket_of(self, bucket);
  if (!b)
    return b.error();
  if (key.empty())
    return make_error(error_code::bad_input, "an empty key");
  auto& e = (*b)->latest[key];
  e = kv_entry{bucket, key, std::move(value), ++(*b)->sequence, op, op == kv_operation::put};
  notify_watches(self, e);
  return e.revision;
}

caf::message_handler kv_handlers(loopback_self* self) {
  return {
    [self](kv_open_atom, const kv_bucket_config& cfg) -> caf::result<bool> {
      auto& s = self->state;
      if (s.kv.count(cfg.bucket))
        return false;
      if (!cfg.create)
        return make_error(error_code::no_such_bucket, "no bucket " + cfg.bucket);
      s.kv[cfg.bucket];
      return true;
    },
    [self](kv_get_atom, const std::string& bucket, const std::string& key)
      -> caf::result<kv_entry> {
      auto b = bucket_of(self, bucket);
      if (!b)
        return b.error();
      auto i = (*b)->latest.find(key);
      if (i == (*b)->latest.end() || !i->second.found)
        return kv_entry{bucket, key, "", 0, kv_operation::put, false};
      return i->second;
    },
    [self](kv_get_atom, const std::string& bucket) -> caf::result<std::vector<kv_entry>> {
      auto b = bucket_of(self, bucket);
      if (!b)
        return b.error();
      std::vector<kv_entry> out;
      for (auto& [key, e] : (*b)->latest)
        if (e.found)
          out.push_back(e);
      return out;
    },
    [self](kv_put_atom, const std::string& bucket, const std::string& key,
           std::string& value) -> caf::result<std::uint64_t> {
      return change(self, bucket, key, std::move(value), kv_operation::put);
    },
    [self](kv_delete_atom, const std::string& bucket, const std::string& key)
      -> caf::result<bool> {
      auto rev = change(self, bucket, key, "", kv_operation::erase);
      if (!rev)
        return rev.error();
      return true;
    },
    [self](kv_keys_atom, const std::string& bucket) -> caf::result<std::vector<std::string>> {
      auto b = bucket_of(self, bucket);
      if (!b)
        return b.error();
      std::vector<std::string> out;
      for (auto& [key, e] : (*b)->latest)
        if (e.found)
          out.push_back(key);
      return out;
    },
    [self](kv_watch_atom, const std::string& bucket, const std::string& key,
           caf::actor& target) -> caf::result<std::string> {
      auto b = bucket_of(self, bucket);
      if (!b)
        return b.error();
      auto& s = self->state;
      auto label = kv_watch_label_prefix + std::to_string(s.next_watch++);
      for (auto& [k, e] : (*b)->latest)
        if (e.found && (key == ">" || subject_matches(key, k)))
          self->send(target, e);
      self->monitor(target);
      s.watches.push_back({label, bucket, key, std::move(target)});
      return label;
    },
  };
}

void end_watch(loopback_self* self, const std::string& label) {
  auto& w = self->state.watches;
  w.erase(std::remove_if(w.begin(), w.end(), [&](auto& x) { return x.label == label; }),
          w.end());
}

// -- the connection protocol ---------------------------------------------------------

caf::message_handler connection_handlers(loopback_self* self) {
  return {
    [self](connect_atom) { return connect(self); },
    [self](publish_atom, std::string& subject, std::string& data) {
      publish(self, {std::move(subject), std::move(data), ""});
    },
    [self](publish_atom, std::string& subject, std::string& data, std::string& reply) {
      publish(self, {std::move(subject), std::move(data), std::move(reply)});
    },
    [self](confirm_atom, std::string& subject, std::string& data) {
      return publish(self, {std::move(subject), std::move(data), ""});
    },
    [self](command_atom, std::string& subject, std::string& data) {
      if (publish(self, {std::move(subject), std::move(data), ""}))
        bump(self->state.spec.stats->commands_sent);
    },
    [self](request_atom, const std::string& subject, const std::string& data, std::int64_t) {
      return request(self, subject, data);
    },
    [self](subscribe_atom, std::string& subject, const std::string&, handler_route& route,
           bool) -> std::string {
      if (!self->state.connected())
        return "not connected to NATS";
      self->state.plain.push_back({std::move(subject), std::move(route)});
      return {};
    },
    [self](unsubscribe_atom) {
      self->state.draining = true;
      return true;
    },
    [self](unsubscribe_atom, const std::string& label) {
      if (label.rfind(kv_watch_label_prefix, 0) == 0) {
        end_watch(self, label);
        return true;
      }
      auto& p = self->state.plain;
      p.erase(std::remove_if(p.begin(), p.end(), [&](auto& x) { return x.route.label == label; }),
              p.end());
      return true;
    },
    [](drain_atom) { return drain_progress{true, 0}; },
    [](drain_atom, stop_atom) { return drain_progress{true, 0}; },
    [self](nats_event_atom, connection_status& st) { set_status(self, std::move(st)); },
    [self](status_atom) { return self->state.status; },
    [self](status_atom, caf::actor& listener) {
      self->send(listener, self->state.status);
      self->state.listeners.push_back(std::move(listener));
    },
    [self](close_atom, const std::string& reason) {
      if (self->state.status.state != connection_state::closed)
        set_status(self, {connection_state::closed, "", reason, unix_ns()});
      return true;
    },
    [self](inject_atom, bus_message& m) { deliver(self, m); },
  };
}

caf::behavior loopback_connection_actor(loopback_self* self, connection_spec spec,
                                        std::shared_ptr<loopback_bus> bus) {
  self->state.spec = std::move(spec);
  self->state.bus = std::move(bus);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& w = self->state.watches;
    w.erase(std::remove_if(w.begin(), w.end(), [&](auto& x) { return x.target == dm.source; }),
            w.end());
  });
  return connection_handlers(self).or_else(kv_handlers(self));
}

}  // namespace

caf::actor spawn_loopback_connection_actor(caf::actor_system& sys, connection_spec spec,
                                           std::shared_ptr<loopback_bus> bus) {
  return sys.spawn(loopback_connection_actor, std::move(spec), std::move(bus));
}

}  // namespace kryten::detail
