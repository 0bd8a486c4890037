// Subject tokens and subjects of the Kryten bus (PROTOCOL.md §1-§5).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace kryten {

/// A token that is empty after normalisation, or a subject over 255 characters.
class subject_error : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// PROTOCOL.md §1: lowercase; drop '.'; ' ' -> '-'; drop '*' and '>'; drop each of
/// !@#$%^&*()+=[]{|}\:;"'<>,?/ ; truncate to 100 characters. Throws subject_error
/// when nothing is left. "Test Channel" -> "test-channel".
std::string normalize_token(std::string_view token);

/// ASCII lowercase copy (event names are matched lowercased).
std::string to_lower(std::string_view text);

namespace subjects {

inline constexpr std::string_view discovery_poll = "kryten.service.discovery.poll";
/// Kryten-Robot's own startup event: services re-announce themselves on it.
inline constexpr std::string_view robot_startup = "kryten.lifecycle.robot.startup";
inline constexpr std::string_view group_restart = "kryten.lifecycle.group.restart";

/// kryten.events.cytube.{channel}.> : everything for one channel.
std::string channel_events(std::string_view channel);
/// kryten.events.cytube.{channel}.{event}
std::string event(std::string_view channel, std::string_view event_name);
/// kryten.{service}.command : where a service takes commands (PROTOCOL.md §2).
std::string command(std::string_view service);
/// kryten.lifecycle.{service}.{kind}; kind is startup, heartbeat, shutdown,
/// connected or disconnected.
std::string lifecycle(std::string_view service, std::string_view kind);

}  // namespace subjects
}  // namespace kryten
