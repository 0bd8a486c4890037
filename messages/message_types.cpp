#include "kryten/message_types.hpp"

#include "kryten/errors.hpp"
#include "kryten/handler.hpp"

namespace kryten {

const char* to_string(connection_state s) {
  switch (s) {
    case connection_state::connecting: return "connecting";
    case connection_state::connected: return "connected";
    case connection_state::disconnected: return "disconnected";
    case connection_state::closed: return "closed";
  }
  return "unknown";
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<raw_event>("kryten::raw_event");
  cfg.add_message_type<chat_message>("kryten::chat_message");
  cfg.add_message_type<user_join>("kryten::user_join");
  cfg.add_message_type<user_leave>("kryten::user_leave");
  cfg.add_message_type<change_media>("kryten::change_media");
  cfg.add_message_type<playlist_update>("kryten::playlist_update");
  cfg.add_message_type<bus_message>("kryten::bus_message");
  cfg.add_message_type<connection_status>("kryten::connection_status");
  cfg.add_message_type<restart_notice>("kryten::restart_notice");
  cfg.add_message_type<handler_filter>("kryten::handler_filter");
  cfg.add_error_category(error_category, [](std::uint8_t code, caf::atom_value,
                                            const caf::message& context) {
    std::string out = to_string(static_cast<error_code>(code));
    if (context.match_elements<std::string>() && !context.get_as<std::string>(0).empty())
      out += ": " + context.get_as<std::string>(0);
    return out;
  });
}

}  // namespace kryten
