#include "actors/command_worker_actor.hpp"

#include <caf/all.hpp>

namespace kryten::detail {

namespace {

struct command_worker_state {
  std::string service;
  std::shared_ptr<spdlog::logger> log;
  std::map<std::string, command_handler> commands;
  static inline const char* name = "kryten.command_worker";
};

using command_worker_self = caf::stateful_actor<command_worker_state>;

caf::behavior command_worker(command_worker_self* self, std::string service,
                             std::shared_ptr<spdlog::logger> log) {
  self->state.service = std::move(service);
  self->state.log = std::move(log);
  return {
    [self](subscribe_atom, const std::string& name, command_handler& handler) {
      self->state.commands[name] = std::move(handler);
    },
    [self](const command_request& req) -> std::string {
      auto& s = self->state;
      auto i = s.commands.find(req.command);
      if (i == s.commands.end())
        return command_failure(s.service, req.command, "Unknown command: " + req.command).dump();
      return run_command(s.service, i->second, req, *s.log).dump();
    },
  };
}

}  // namespace

nlohmann::json command_failure(const std::string& service, const nlohmann::json& command,
                               const std::string& error) {
  return {{"service", service}, {"command", command}, {"success", false}, {"error", error}};
}

nlohmann::json run_command(const std::string& service, const command_handler& handler,
                           const command_request& req, spdlog::logger& log) {
  try {
    auto data = handler(req);
    return {{"service", service}, {"command", req.command}, {"success", true},
            {"data", data.is_null() ? nlohmann::json::object() : std::move(data)}};
  } catch (const command_error& e) {
    return command_failure(service, req.command, e.what());
  } catch (const std::exception& e) {
    log.error("command {} failed: {}", req.command, e.what());
    return command_failure(service, req.command, "Internal error");
  } catch (...) {
    log.error("command {} failed with a non-standard exception", req.command);
    return command_failure(service, req.command, "Internal error");
  }
}

caf::actor spawn_command_worker(caf::actor_system& sys, std::string service,
                                std::shared_ptr<spdlog::logger> log) {
  return sys.spawn<caf::detached>(command_worker, std::move(service), std::move(log));
}

}  // namespace kryten::detail
