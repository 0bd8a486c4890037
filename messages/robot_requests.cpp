#include "kryten/robot_requests.hpp"

#include "messages/clock.hpp"

namespace kryten::robot_requests {

namespace {

outgoing_command robot_command(std::string command, nlohmann::json args) {
  outgoing_command cmd;
  cmd.service = service;
  cmd.command = std::move(command);
  cmd.args = std::move(args);
  return cmd;
}

nlohmann::json with_reason(std::string user, std::string reason) {
  nlohmann::json args{{"name", std::move(user)}};
  if (!reason.empty())
    args["reason"] = std::move(reason);
  return args;
}

}  // namespace

outgoing_command say(std::string message) {
  return robot_command("say", {{"message", std::move(message)}});
}

outgoing_command pm(std::string to, std::string message) {
  return robot_command("pm", {{"to", std::move(to)}, {"msg", std::move(message)}});
}

outgoing_command mute(const std::string& user) {
  return robot_command("chat", {{"message", "/mute " + user}});
}

outgoing_command shadow_mute(const std::string& user) {
  return robot_command("chat", {{"message", "/smute " + user}});
}

outgoing_command unmute(const std::string& user) {
  return robot_command("chat", {{"message", "/unmute " + user}});
}

outgoing_command kick(std::string user, std::string reason) {
  return robot_command("kick", with_reason(std::move(user), std::move(reason)));
}

outgoing_command ban(std::string user, std::string reason) {
  return robot_command("ban", with_reason(std::move(user), std::move(reason)));
}

outgoing_command unban(std::int64_t ban_id) {
  return robot_command("unban", {{"id", ban_id}});
}

outgoing_command move_video(std::int64_t uid, nlohmann::json after) {
  return robot_command("mvvideo", {{"from", uid}, {"after", std::move(after)}});
}

outgoing_command delete_video(std::int64_t uid) {
  return robot_command("rmvideo", {{"uid", uid}});
}

outgoing_command clear_playlist() {
  return robot_command("clear", nlohmann::json::object());
}

nlohmann::json add_video(const std::string& type, const std::string& id,
                         const std::string& position, bool temp, const std::string& source,
                         const std::string& domain, const std::string& channel) {
  return {{"command", "addvideo"},
          {"service", service},
          {"args", {{"type", type}, {"id", id}, {"pos", position}, {"temp", temp}}},
          {"meta",
           {{"source", source}, {"timestamp", detail::iso8601_now()}, {"domain", domain},
            {"channel", channel}}}};
}

nlohmann::json state_user(const std::string& username) {
  return {{"service", service}, {"command", "state.user"}, {"username", username}};
}

nlohmann::json system_query(const std::string& command) {
  return {{"service", service}, {"command", command}};
}

}  // namespace kryten::robot_requests
