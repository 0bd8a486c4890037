#include "actors/command_actor.hpp"

#include <map>
#include <set>

#include <caf/all.hpp>

#include "actors/connection_actor.hpp"
#include "actors/health_actor.hpp"
#include "kryten/errors.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

using namespace std::chrono_literals;

struct command_state {
  command_spec spec;
  caf::actor worker;             // made with the first user command
  std::set<std::string> user;    // names the worker serves
  std::map<std::string, caf::actor> by_actor;  // names users' actors serve
  std::string last_error;        // "code:description", for the NATS Service API's STATS
  static inline const char* name = "kryten.commands";
};

using command_self = caf::stateful_actor<command_state>;

/// Counts the request, then replies: counted before the reply goes out, so
/// that a STATS request made after the reply arrived sees this request.
void finish(command_self* self, const std::string& reply_to, const nlohmann::json& reply,
            std::int64_t start) {
  auto& s = self->state;
  bump(s.spec.stats->run_ns, static_cast<std::uint64_t>(steady_ns() - start));
  bump(s.spec.stats->handled);
  if (!reply.value("success", false)) {
    bump(s.spec.stats->exceptions);
    s.last_error = "500:" + reply.value("error", std::string{"error"});
  }
  if (!reply_to.empty())
    self->send(s.spec.connection, publish_atom::value, reply_to, reply.dump());
  s.spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
}

nlohmann::json success(const std::string& service, const std::string& command,
                       nlohmann::json data) {
  return {{"service", service}, {"command", command}, {"success", true}, {"data", std::move(data)}};
}

void run_user_command(command_self* self, command_request req, std::string reply_to,
                      std::int64_t start) {
  auto& s = self->state;
  auto name = req.command;
  self->request(s.worker, std::chrono::duration_cast<caf::timespan>(s.spec.timeout), std::move(req))
    .then(
      [self, reply_to, start](std::string& reply) {
        auto json = nlohmann::json::parse(reply, nullptr, false);
        finish(self, reply_to, json, start);
      },
      [self, reply_to, start, name](caf::error& err) {
        auto& st = self->state;
        bool late = err == caf::sec::request_timeout;
        if (late)
          st.spec.log->warn("command {} did not finish within handler_timeout", name);
        else
          st.spec.log->error("command {} failed: {}", name, self->system().render(err));
        finish(self, reply_to,
               command_failure(st.spec.service, name, late ? "Timeout" : "Internal error"),
               start);
      });
}

/// A command served by a user's actor: it answers a command_result.
void run_actor_command(command_self* self, const caf::actor& actor, command_request req,
                       std::string reply_to, std::int64_t start) {
  auto& s = self->state;
  auto name = req.command;
  self->request(actor, std::chrono::duration_cast<caf::timespan>(s.spec.timeout), std::move(req))
    .then(
      [self, reply_to, start, name](command_result& r) {
        auto& st = self->state;
        finish(self, reply_to,
               r.success ? success(st.spec.service, name,
                                   r.data.is_null() ? nlohmann::json::object() : r.data)
                         : command_failure(st.spec.service, name, r.error),
               start);
      },
      [self, reply_to, start, name](caf::error& err) {
        auto& st = self->state;
        std::string text = "Internal error";
        if (err == caf::sec::request_timeout) {
          st.spec.log->warn("command {} did not finish within handler_timeout", name);
          text = "Timeout";
        } else if (code_of(err) == error_code::command_failed && err.context().match_elements<std::string>()) {
          text = err.context().get_as<std::string>(0);  // the actor's own words
        } else {
          st.spec.log->error("command {} failed: {}", name, describe(err));
        }
        finish(self, reply_to, command_failure(st.spec.service, name, text), start);
      });
}

/// system.stats: the counters of the health document, without the handler
/// list's latency detail (what kryten-userstats and -moderator answer).
nlohmann::json stats_document(const health_status& h) {
  const auto full = h.to_json();
  nlohmann::json out = nlohmann::json::object();
  for (const char* key : {"service", "uptime_seconds", "events_received", "events_handled",
                          "dropped_events", "commands_sent", "errors", "events_by_channel",
                          "avg_event_latency_ms", "last_event_time"})
    out[key] = full.at(key);
  auto& handlers = out["handlers"] = nlohmann::json::object();
  for (const auto& x : full.at("handlers")) {
    auto& counts = handlers[x.at("label").get<std::string>()];
    for (const char* key : {"handled", "dropped", "exceptions", "restarts", "queued"})
      counts[key] = x.at(key);
  }
  return out;
}

/// health and stats: answered from the health actor's document.
void run_from_health(command_self* self, const std::string& command, bool stats,
                     const std::string& reply_to, std::int64_t start) {
  auto& s = self->state;
  self->request(s.spec.health, 5s, get_atom::value)
    .then(
      [self, command, stats, reply_to, start](health_status& h) {
        auto data = stats ? stats_document(h) : h.to_json();
        if (stats)
          data["instance_id"] = self->state.spec.instance_id;
        finish(self, reply_to, success(self->state.spec.service, command, std::move(data)),
               start);
      },
      [self, command, reply_to, start](caf::error&) {
        finish(self, reply_to,
               command_failure(self->state.spec.service, command, "Health unavailable"), start);
      });
}

void run_ping(command_self* self, const std::string& command, const std::string& reply_to,
              std::int64_t start) {
  auto& s = self->state;
  finish(self, reply_to,
         success(s.spec.service, command,
                 {{"pong", true}, {"service", s.spec.service},
                  {"instance_id", s.spec.instance_id}, {"timestamp", iso8601_now()}}),
         start);
}

/// The built-in commands; the `system.` names are the ecosystem's convention,
/// the short ones kryten-cpp's first.
bool run_builtin(command_self* self, const std::string& command, const std::string& reply_to,
                 std::int64_t start) {
  if (command == "ping" || command == "system.ping")
    run_ping(self, command, reply_to, start);
  else if (command == "health" || command == "system.health")
    run_from_health(self, command, false, reply_to, start);
  else if (command == "system.stats")
    run_from_health(self, command, true, reply_to, start);
  else
    return false;
  return true;
}

void serve(command_self* self, const bus_message& msg) {
  auto& s = self->state;
  auto start = steady_ns();
  nlohmann::json failure;
  auto req = parse_command(s.spec.service, msg.data, failure);
  if (!req) {
    finish(self, msg.reply, failure, start);
    return;
  }
  if (auto i = s.by_actor.find(req->command); i != s.by_actor.end()) {
    run_actor_command(self, i->second, std::move(*req), msg.reply, start);
  } else if (s.user.count(req->command)) {
    run_user_command(self, std::move(*req), msg.reply, start);
  } else if (!run_builtin(self, req->command, msg.reply, start)) {
    finish(self, msg.reply,
           command_failure(s.spec.service, req->command, "Unknown command: " + req->command),
           start);
  }
}

caf::behavior command_actor(command_self* self, command_spec spec) {
  self->state.spec = std::move(spec);
  self->state.worker = spawn_command_worker(self->system(), self->state.spec.service,
                                            self->state.spec.log);
  // The worker dies with us (it may be stuck in a user's handler: then it
  // stays behind, and the stop names it).
  self->link_to(self->state.worker);
  return {
    [self](const bus_message& msg) { serve(self, msg); },
    [self](get_atom) { return self->state.last_error; },
    [self](serve_atom, const std::string& name, caf::actor& actor) {
      self->state.user.erase(name);  // the later registration wins
      self->state.by_actor[name] = std::move(actor);
      return true;
    },
    [self](subscribe_atom, const std::string& name, command_handler& handler) {
      self->state.by_actor.erase(name);
      self->state.user.insert(name);
      // The worker gets this before any request for it: same sender, same order.
      self->send(self->state.worker, subscribe_atom::value, name, std::move(handler));
      return true;
    },
  };
}

}  // namespace

std::optional<command_request> parse_command(const std::string& service,
                                             const std::string& body,
                                             nlohmann::json& failure) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded()) {
    failure = command_failure(service, nullptr, "Invalid JSON");
    return std::nullopt;
  }
  if (!json.is_object() || !json.contains("command") || !json["command"].is_string()) {
    failure = command_failure(service, nullptr, "Missing command");
    return std::nullopt;
  }
  command_request req;
  req.command = json["command"].get<std::string>();
  auto args = json.value("args", nlohmann::json::object());
  req.args = args.is_object() ? args : nlohmann::json{{"value", args}};
  auto meta = json.value("meta", nlohmann::json::object());
  req.meta = meta.is_object() ? meta : nlohmann::json::object();
  return req;
}

caf::actor spawn_command_actor(caf::actor_system& sys, command_spec spec) {
  return sys.spawn<caf::detached>(command_actor, std::move(spec));
}

}  // namespace kryten::detail
