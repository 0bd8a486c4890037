#include "actors/runtime_api_actor.hpp"

#include <caf/all.hpp>

#include "actors/chat_throttle_actor.hpp"
#include "actors/kv_actor.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"
#include "messages/uuid.hpp"

namespace kryten::detail {

namespace {

using namespace std::chrono_literals;

struct runtime_api_state {
  runtime_api_spec spec;
  std::size_t handlers_added = 0;  // numbers the labels
  caf::actor chat_throttle;        // made on the first chat message
  static inline const char* name = "kryten.runtime_api";
};

using api_self = runtime_api_actor::stateful_pointer<runtime_api_state>;

/// "chatmsg#3", or "chatmsg#3(actor)" for a user's actor.
std::string next_label(api_self self, const handler_registration& reg) {
  auto base = reg.subject.empty() ? reg.event_name : reg.subject;
  auto label = base + "#" + std::to_string(++self->state.handlers_added);
  return reg.target || reg.spec.factory ? label + "(actor)" : label;
}

/// Registers with the health actor, then the supervisor; answers the label
/// once the route exists.
caf::result<std::string> add(api_self self, handler_registration reg) {
  auto& s = self->state;
  if (reg.subject.empty() && reg.event_name.empty())
    return make_error(error_code::bad_input, "an empty event name");
  reg.spec.label = next_label(self, reg);
  if (!reg.spec.stats)
    reg.spec.stats = std::make_shared<handler_stats>();
  caf::anon_send(s.spec.health, add_atom::value, reg.spec.label, reg.spec.stats);
  auto label = reg.spec.label;
  auto rp = self->make_response_promise<std::string>();
  self->request(s.spec.supervisor, 10s, add_atom::value, std::move(reg))
    .then([rp, label](bool) mutable { rp.deliver(label); },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

handler_registration user_actor(std::string event_or_subject, caf::actor actor, bool subject,
                                handler_filter filter = {}) {
  handler_registration reg;
  if (subject)
    reg.subject = std::move(event_or_subject);
  else
    reg.event_name = to_lower(event_or_subject);
  reg.filter = std::move(filter);
  reg.target = std::move(actor);
  return reg;
}

caf::result<bool> remove(api_self self, const std::string& label) {
  auto& s = self->state;
  auto rp = self->make_response_promise<bool>();
  self->request(s.spec.supervisor, 10s, remove_atom::value, label)
    .then(
      [self, rp, label](bool) mutable {
        caf::anon_send(self->state.spec.health, remove_atom::value, label);
        rp.deliver(true);
      },
      [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

/// Sends `cmd` with `request_id` through `via`: the connection, or the chat
/// throttle. False (nothing sent) when it names no service or command.
bool send_command(api_self self, const outgoing_command& cmd, const caf::actor& via,
                  const std::string& request_id) {
  if (cmd.service.empty() || cmd.command.empty())
    return false;
  caf::anon_send(via, command_atom::value, subjects::command(cmd.service),
                 command_body(self->state.spec.origin, cmd, request_id).dump());
  return true;
}

/// The request form: answers the new request id.
caf::result<std::string> send_command(api_self self, const outgoing_command& cmd,
                                      const caf::actor& via) {
  auto request_id = uuid4();
  if (!send_command(self, cmd, via, request_id))
    return make_error(error_code::bad_input, "a command needs a service and a name");
  return request_id;
}

/// The fire-and-forget form: the sender chose the id and does not wait.
void send_command_unanswered(api_self self, const outgoing_command& cmd, const caf::actor& via,
                             const std::string& request_id) {
  if (!send_command(self, cmd, via, request_id))
    self->state.spec.log->error("command {} to service '{}': a command needs a service and a "
                                "name (not sent)",
                                cmd.command, cmd.service);
}

const caf::actor& chat_throttle(api_self self) {
  auto& s = self->state;
  if (!s.chat_throttle) {
    auto seconds = [](double x) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(x));
    };
    chat_throttle_spec spec;
    spec.connection = s.spec.connection;
    spec.min_delay = seconds(s.spec.chat_min_delay);
    spec.jitter = seconds(s.spec.chat_jitter);
    spec.log = s.spec.log;
    s.chat_throttle = spawn_chat_throttle_actor(self, std::move(spec));
  }
  return s.chat_throttle;
}

/// Asks one of the runtime's actors and relays its answer (or error).
template <class T, class... Ts>
caf::result<T> relay(api_self self, const caf::actor& to, caf::timespan deadline, Ts&&... xs) {
  auto rp = self->make_response_promise<T>();
  self->request(to, deadline, std::forward<Ts>(xs)...)
    .then([rp](T& x) mutable { rp.deliver(std::move(x)); },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

/// Past JetStream's own 5 s wait, so that its timeout is the one reported.
constexpr auto kv_deadline = 10s;

runtime_api_actor::behavior_type runtime_api(api_self self, runtime_api_spec spec) {
  self->state.spec = std::move(spec);
  // The runtime goes with its supervisor, and so does this actor.
  self->monitor(self->state.spec.supervisor);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  return {
    [self](publish_atom, const std::string& subject, const std::string& data) {
      if (subject.empty()) {
        self->state.spec.log->error("publish: an empty subject (message dropped)");
        return;
      }
      caf::anon_send(self->state.spec.connection, publish_atom::value, subject, data);
    },
    [self](command_atom, const outgoing_command& cmd) {
      return send_command(self, cmd, self->state.spec.connection);
    },
    [self](chat_atom, const outgoing_command& cmd) {
      return send_command(self, cmd, chat_throttle(self));
    },
    [self](command_atom, const outgoing_command& cmd, const std::string& request_id) {
      send_command_unanswered(self, cmd, self->state.spec.connection, request_id);
    },
    [self](chat_atom, const outgoing_command& cmd, const std::string& request_id) {
      send_command_unanswered(self, cmd, chat_throttle(self), request_id);
    },
    [self](request_atom, const std::string& subject, const std::string& data,
           caf::timespan timeout) -> caf::result<std::string> {
      if (subject.empty())
        return make_error(error_code::bad_input, "a request needs a subject");
      auto ms = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
      auto rp = self->make_response_promise<std::string>();
      // Past the connection actor's own deadline, in case it is gone.
      self->request(self->state.spec.connection, timeout + 1s, request_atom::value, subject,
                    data, ms)
        .then([rp](std::string& reply) mutable { rp.deliver(std::move(reply)); },
              [rp, subject, ms](caf::error& e) mutable {
                if (code_of(e))
                  rp.deliver(std::move(e));
                else
                  rp.deliver(make_error(error_code::timeout,
                                        "no reply from " + subject + " within "
                                          + std::to_string(ms) + " ms"));
              });
      return rp;
    },
    [self](subscribe_atom, const std::string& subject, const caf::actor& actor) {
      return add(self, user_actor(subject, actor, true));
    },
    [self](unsubscribe_atom, const std::string& label) {
      if (label.rfind(kv_watch_label_prefix, 0) == 0)
        return relay<bool>(self, self->state.spec.connection, kv_deadline,
                           unsubscribe_atom::value, label);
      return remove(self, label);
    },
    [self](add_atom, const std::string& event_name, const caf::actor& actor,
           const handler_filter& filter) {
      return add(self, user_actor(event_name, actor, false, filter));
    },
    [self](remove_atom, const std::string& label) { return remove(self, label); },
    [self](serve_atom, const std::string& command, const caf::actor& actor) -> caf::result<bool> {
      if (command.empty() || !actor)
        return make_error(error_code::bad_input, "serve needs a command name and an actor");
      // Answered once the command actor has it, so a request sent after the
      // answer finds the command.
      return relay<bool>(self, self->state.spec.commands, 5s, serve_atom::value, command, actor);
    },
    [self](health_atom) {
      return relay<health_status>(self, self->state.spec.health, 5s, get_atom::value);
    },
    [self](metadata_atom, const metadata_entry& entry) {
      caf::anon_send(self->state.spec.supervisor, metadata_atom::value, entry.key,
                 entry.value.dump());
    },
    [self](stop_atom, const std::string& reason) { self->state.spec.request_stop(reason, 0); },
    [self](kv_open_atom a, const kv_bucket_config& cfg) {
      return relay<bool>(self, self->state.spec.connection, kv_deadline, a, cfg);
    },
    [self](kv_get_atom a, const std::string& bucket, const std::string& key) {
      return relay<kv_entry>(self, self->state.spec.connection, kv_deadline, a, bucket, key);
    },
    [self](kv_get_atom a, const std::string& bucket) {
      return relay<std::vector<kv_entry>>(self, self->state.spec.connection, kv_deadline, a,
                                          bucket);
    },
    [self](kv_put_atom a, const std::string& bucket, const std::string& key,
           const std::string& value) {
      return relay<std::uint64_t>(self, self->state.spec.connection, kv_deadline, a, bucket,
                                  key, value);
    },
    [self](kv_delete_atom a, const std::string& bucket, const std::string& key) {
      return relay<bool>(self, self->state.spec.connection, kv_deadline, a, bucket, key);
    },
    [self](kv_keys_atom a, const std::string& bucket) {
      return relay<std::vector<std::string>>(self, self->state.spec.connection, kv_deadline, a,
                                             bucket);
    },
    [self](kv_watch_atom a, const std::string& bucket, const std::string& key,
           const caf::actor& target) {
      return relay<std::string>(self, self->state.spec.connection, kv_deadline, a, bucket, key,
                                target);
    },
    [self](add_atom, const handler_registration& reg) { return add(self, reg); },
    [self](subscribe_atom, const std::string& name, const command_handler& handler) {
      return relay<bool>(self, self->state.spec.commands, 5s, subscribe_atom::value, name,
                         handler);
    },
  };
}

}  // namespace

nlohmann::json command_body(const command_origin& origin, const outgoing_command& cmd,
                            const std::string& request_id) {
  return {{"command", cmd.command},
          {"args", cmd.args.is_object() ? cmd.args : nlohmann::json{{"value", cmd.args}}},
          {"meta",
           {{"source", origin.service},
            {"timestamp", iso8601_now()},
            {"domain", cmd.domain.empty() ? origin.default_domain : cmd.domain},
            {"channel", cmd.channel.empty() ? origin.default_channel : cmd.channel},
            {"request_id", request_id}}}};
}

runtime_api_actor spawn_runtime_api(caf::actor_system& sys, runtime_api_spec spec) {
  return sys.spawn<caf::detached>(runtime_api, std::move(spec));
}

}  // namespace kryten::detail
