#include "kryten/robot.hpp"

#include <caf/all.hpp>

#include "kryten/robot_requests.hpp"
#include "messages/uuid.hpp"

namespace kryten {

namespace rr = robot_requests;

namespace {

outgoing_command aimed(outgoing_command cmd, const robot_target& to) {
  cmd.domain = to.domain;
  cmd.channel = to.channel;
  return cmd;
}

}  // namespace

std::string robot::send(const outgoing_command& cmd, const robot_target& to) {
  return client_.send_command(cmd.service, cmd.command, cmd.args,
                              to.domain.empty() ? std::nullopt : std::optional{to.domain},
                              to.channel.empty() ? std::nullopt : std::optional{to.channel});
}

std::string robot::send_chat_command(outgoing_command cmd, const robot_target& to) {
  // Not a request: the throttle spaces the message out, the caller goes on.
  auto rt = client_.runtime();
  if (!rt)
    throw request_error("chat: not connected (connect() first)", error_code::not_connected);
  auto id = detail::uuid4();
  caf::anon_send(rt, chat_atom::value, aimed(std::move(cmd), to), id);
  return id;
}

std::string robot::send_chat(const std::string& message, const robot_target& to) {
  return send_chat_command(rr::say(message), to);
}

std::string robot::send_pm(const std::string& user, const std::string& message,
                           const robot_target& to) {
  return send_chat_command(rr::pm(user, message), to);
}

std::string robot::mute_user(const std::string& user, const robot_target& to) {
  return send(rr::mute(user), to);
}

std::string robot::shadow_mute_user(const std::string& user, const robot_target& to) {
  return send(rr::shadow_mute(user), to);
}

std::string robot::unmute_user(const std::string& user, const robot_target& to) {
  return send(rr::unmute(user), to);
}

std::string robot::kick_user(const std::string& user, const std::string& reason,
                             const robot_target& to) {
  return send(rr::kick(user, reason), to);
}

std::string robot::ban_user(const std::string& user, const std::string& reason,
                            const robot_target& to) {
  return send(rr::ban(user, reason), to);
}

std::string robot::unban(std::int64_t ban_id, const robot_target& to) {
  return send(rr::unban(ban_id), to);
}

std::optional<std::int64_t> robot::add_media(const std::string& type, const std::string& id,
                                             const std::string& position, bool temp,
                                             const robot_target& to,
                                             std::chrono::milliseconds timeout) {
  const auto& first = client_.config().channels.front();
  auto request = rr::add_video(type, id, position, temp, client_.config().service_name(),
                               to.domain.empty() ? first.domain : to.domain,
                               to.channel.empty() ? first.channel : to.channel);
  auto data = data_of("addvideo", request, timeout);
  if (data.is_object() && data.value("success", true) == false)
    throw robot_error("addvideo: " + data.value("error", std::string{"refused"}));
  if (data.is_object() && data.contains("uid") && data["uid"].is_number_integer())
    return data["uid"].get<std::int64_t>();
  return std::nullopt;
}

std::string robot::move_media(std::int64_t uid, const nlohmann::json& after,
                              const robot_target& to) {
  return send(rr::move_video(uid, after), to);
}

std::string robot::delete_media(std::int64_t uid, const robot_target& to) {
  return send(rr::delete_video(uid), to);
}

std::string robot::clear_playlist(const robot_target& to) {
  return send(rr::clear_playlist(), to);
}

std::optional<nlohmann::json> robot::get_user(const std::string& username,
                                              std::chrono::milliseconds timeout) {
  auto reply = client_.request(rr::subject, rr::state_user(username), timeout);
  if (!reply.is_object() || reply.value("success", false) != true)
    return std::nullopt;
  auto user = reply.value("data", nlohmann::json::object()).value("user", nlohmann::json());
  if (user.is_null())
    return std::nullopt;
  return user;
}

nlohmann::json robot::get_channels(std::chrono::milliseconds timeout) {
  auto data = data_of("system.channels", rr::system_query("system.channels"), timeout);
  auto channels = data.is_object() ? data.value("channels", nlohmann::json()) : nlohmann::json();
  if (!channels.is_array())
    throw robot_error("system.channels: the reply has no list of channels");
  return channels;
}

nlohmann::json robot::get_services(std::chrono::milliseconds timeout) {
  auto data = data_of("system.services", rr::system_query("system.services"), timeout);
  if (!data.is_object())
    throw robot_error("system.services: the reply has no services");
  return data;
}

nlohmann::json robot::data_of(const std::string& what, const nlohmann::json& request,
                              std::chrono::milliseconds timeout) {
  auto reply = client_.request(rr::subject, request, timeout);
  if (!reply.is_object())
    throw robot_error(what + ": the reply is not an object");
  if (reply.value("success", false) != true)
    throw robot_error(what + ": " + reply.value("error", std::string{"failed"}));
  return reply.value("data", nlohmann::json::object());
}

}  // namespace kryten
