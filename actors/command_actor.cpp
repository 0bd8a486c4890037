#include "actors/command_actor.hpp"

#include <caf/all.hpp>

#include "actors/connection_actor.hpp"

namespace kryten::detail {

namespace {

nlohmann::json failure(const std::string& service, const nlohmann::json& command,
                       const std::string& error) {
  return {{"service", service}, {"command", command}, {"success", false}, {"error", error}};
}

command_request to_request(const nlohmann::json& body) {
  command_request req;
  req.command = body.at("command").get<std::string>();
  auto args = body.value("args", nlohmann::json::object());
  req.args = args.is_object() ? args : nlohmann::json{{"value", args}};
  req.meta = body.value("meta", nlohmann::json::object());
  return req;
}

struct command_state {
  command_spec spec;
  std::map<std::string, command_handler> commands;
  std::string last_error;  // "code:description", for the NATS Service API's STATS
  static inline const char* name = "kryten.commands";
};

using command_self = caf::stateful_actor<command_state>;

void serve(command_self* self, const bus_message& msg) {
  auto& s = self->state;
  auto start = std::chrono::steady_clock::now();
  auto reply = answer_command(s.spec.service, s.commands, msg.data, *s.spec.log);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::steady_clock::now() - start)
              .count();
  // Counted before the reply goes out, so that a STATS request made after the
  // reply arrived sees this request.
  bump(s.spec.stats->run_ns, static_cast<std::uint64_t>(ns));
  bump(s.spec.stats->handled);
  if (!reply.value("success", false)) {
    bump(s.spec.stats->exceptions);
    s.last_error = "500:" + reply.value("error", std::string{"error"});
  }
  if (!msg.reply.empty())
    self->send(s.spec.connection, publish_atom::value, msg.reply, reply.dump());
  s.spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
}

caf::behavior command_actor(command_self* self, command_spec spec) {
  self->state.spec = std::move(spec);
  return {
    [self](const bus_message& msg) { serve(self, msg); },
    [self](get_atom) { return self->state.last_error; },
    [self](subscribe_atom, const std::string& name, command_handler& handler) {
      self->state.commands[name] = std::move(handler);
    },
  };
}

}  // namespace

nlohmann::json answer_command(const std::string& service,
                              const std::map<std::string, command_handler>& commands,
                              const std::string& body, spdlog::logger& log) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded())
    return failure(service, nullptr, "Invalid JSON");
  if (!json.is_object() || !json.contains("command") || !json["command"].is_string())
    return failure(service, nullptr, "Missing command");
  auto req = to_request(json);
  auto i = commands.find(req.command);
  if (i == commands.end())
    return failure(service, req.command, "Unknown command: " + req.command);
  try {
    auto data = i->second(req);
    return {{"service", service}, {"command", req.command}, {"success", true},
            {"data", data.is_null() ? nlohmann::json::object() : std::move(data)}};
  } catch (const command_error& e) {
    return failure(service, req.command, e.what());
  } catch (const std::exception& e) {
    log.error("command {} failed: {}", req.command, e.what());
    return failure(service, req.command, "Internal error");
  } catch (...) {
    log.error("command {} failed with a non-standard exception", req.command);
    return failure(service, req.command, "Internal error");
  }
}

caf::actor spawn_command_actor(caf::actor_system& sys, command_spec spec) {
  return sys.spawn(command_actor, std::move(spec));
}

}  // namespace kryten::detail
