// Kryten-Robot's helpers, as kryten-py's client offers them: chat and PMs
// (throttled as kryten-py throttles them, by an actor, so no caller waits),
// moderation, the playlist, and the robot's queries. Each sends exactly the
// request kryten-py sends (robot_requests.hpp).
//
//   kryten::robot robot{client};
//   robot.send_chat("Hello!");                      // say, to the first channel
//   robot.send_pm("alice", "psst");
//   robot.shadow_mute_user("troll");
//   auto uid = robot.add_media("yt", "dQw4w9WgXcQ");  // the new item's uid
//   auto user = robot.get_user("alice");            // nullopt: not in the room
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "kryten/client.hpp"

namespace kryten {

/// The robot answered, and said no (success false, or a reply of the wrong shape).
class robot_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Where a command goes: "" = the first configured channel's domain / channel.
struct robot_target {
  std::string domain;
  std::string channel;
};

class robot {
public:
  explicit robot(client& c) : client_(c) {}

  // -- chat (throttled: chat_min_delay + 0..chat_jitter seconds apart) -----------
  // Each returns the command's request id at once; request_error
  // (not_connected) once the client's run() has returned.
  std::string send_chat(const std::string& message, const robot_target& to = {});
  std::string send_pm(const std::string& user, const std::string& message,
                      const robot_target& to = {});

  // -- moderation -------------------------------------------------------------------
  std::string mute_user(const std::string& user, const robot_target& to = {});
  std::string shadow_mute_user(const std::string& user, const robot_target& to = {});
  std::string unmute_user(const std::string& user, const robot_target& to = {});
  std::string kick_user(const std::string& user, const std::string& reason = {},
                        const robot_target& to = {});
  std::string ban_user(const std::string& user, const std::string& reason = {},
                       const robot_target& to = {});
  std::string unban(std::int64_t ban_id, const robot_target& to = {});

  // -- the playlist -------------------------------------------------------------------
  /// Adds media (request/reply): the new item's uid, or nullopt when the robot
  /// did not say (before Kryten-Robot 1.8, or CyTube was slower than its 8 s).
  /// robot_error when CyTube refused it (queueFail), request_error when no
  /// robot answered within `timeout`.
  std::optional<std::int64_t> add_media(const std::string& type, const std::string& id,
                                        const std::string& position = "end", bool temp = true,
                                        const robot_target& to = {},
                                        std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// after: a uid, "prepend" or "append".
  std::string move_media(std::int64_t uid, const nlohmann::json& after, const robot_target& to = {});
  std::string delete_media(std::int64_t uid, const robot_target& to = {});
  std::string clear_playlist(const robot_target& to = {});

  // -- queries (request_error when no robot answers in time) ------------------------
  /// The user as the robot knows them (name, rank, profile, meta), or nullopt.
  std::optional<nlohmann::json> get_user(const std::string& username,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(2));
  /// [{"domain","channel","connected"}, ...]
  nlohmann::json get_channels(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// {"services": [...], "count": N, "active_count": M} (robot's system.services)
  nlohmann::json get_services(std::chrono::milliseconds timeout = std::chrono::seconds(5));

private:
  std::string send(const outgoing_command& cmd, const robot_target& to);
  std::string send_chat_command(outgoing_command cmd, const robot_target& to);
  nlohmann::json data_of(const std::string& what, const nlohmann::json& request,
                         std::chrono::milliseconds timeout);

  client& client_;
};

}  // namespace kryten
