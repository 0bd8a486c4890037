// What kryten-py sends Kryten-Robot (client.py, v0.17), built the same way:
// the command bodies of its chat, moderation and playlist helpers (sent to
// kryten.robot.command as PROTOCOL.md §2 commands) and the bodies of its
// robot queries. kryten::robot (robot.hpp) sends them; an actor sends them
// itself through the runtime protocol (chat_atom for say and pm, command_atom
// for the rest, request_atom for the queries).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "kryten/commands.hpp"

namespace kryten::robot_requests {

inline constexpr const char* service = "robot";
inline constexpr const char* subject = "kryten.robot.command";

// -- commands (fire and forget) --------------------------------------------------

outgoing_command say(std::string message);                      // send_chat
outgoing_command pm(std::string to, std::string message);       // send_pm
/// mute_user, shadow_mute_user, unmute_user: kryten-py sends each as a chat
/// line ("/mute NAME", "/smute NAME", "/unmute NAME").
outgoing_command mute(const std::string& user);
outgoing_command shadow_mute(const std::string& user);
outgoing_command unmute(const std::string& user);
/// kick_user, ban_user: "reason" only when given.
outgoing_command kick(std::string user, std::string reason = {});
outgoing_command ban(std::string user, std::string reason = {});
outgoing_command unban(std::int64_t ban_id);
/// move_media: after is a uid, "prepend" or "append".
outgoing_command move_video(std::int64_t uid, nlohmann::json after);
outgoing_command delete_video(std::int64_t uid);                // delete_media
outgoing_command clear_playlist();

// -- requests (request/reply on `subject`) -----------------------------------------

/// add_media's request: {"command":"addvideo","service":"robot","args":{type,id,
/// pos,temp},"meta":{source,timestamp,domain,channel}}. Kryten-Robot (1.8+)
/// answers data {"success":true,"uid":N} once CyTube has queued it.
nlohmann::json add_video(const std::string& type, const std::string& id,
                         const std::string& position, bool temp, const std::string& source,
                         const std::string& domain, const std::string& channel);
/// get_user: {"service":"robot","command":"state.user","username":NAME}.
nlohmann::json state_user(const std::string& username);
/// get_channels ("system.channels"), get_services ("system.services"), ping, ...
nlohmann::json system_query(const std::string& command);

}  // namespace kryten::robot_requests
