// The typed messages actors exchange, and their registration with CAF.
// An application embedding kryten in its own caf::actor_system calls
// kryten::add_message_types(cfg) on its actor_system_config.
#pragma once

#include <cstdint>
#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include "kryten/events.hpp"
#include "kryten/lifecycle.hpp"

namespace kryten {

// -- atoms ----------------------------------------------------------------------

using connect_atom = caf::atom_constant<caf::atom("kconnect")>;
using close_atom = caf::atom_constant<caf::atom("kclose")>;
using publish_atom = caf::atom_constant<caf::atom("kpublish")>;
using request_atom = caf::atom_constant<caf::atom("krequest")>;
using subscribe_atom = caf::atom_constant<caf::atom("ksubscr")>;
using unsubscribe_atom = caf::atom_constant<caf::atom("kunsub")>;
using status_atom = caf::atom_constant<caf::atom("kstatus")>;
using timeout_atom = caf::atom_constant<caf::atom("ktimeout")>;
using nats_event_atom = caf::atom_constant<caf::atom("knatsev")>;
using stop_atom = caf::atom_constant<caf::atom("kstop")>;
using startup_atom = caf::atom_constant<caf::atom("kstartup")>;
using heartbeat_atom = caf::atom_constant<caf::atom("kheartbt")>;
using shutdown_atom = caf::atom_constant<caf::atom("kshutdown")>;
using metadata_atom = caf::atom_constant<caf::atom("kmetadata")>;
using restart_atom = caf::atom_constant<caf::atom("krestart")>;
using add_atom = caf::atom_constant<caf::atom("kadd")>;
using get_atom = caf::atom_constant<caf::atom("kget")>;
using command_atom = caf::atom_constant<caf::atom("kcommand")>;
using remove_atom = caf::atom_constant<caf::atom("kremove")>;
using serve_atom = caf::atom_constant<caf::atom("kserve")>;
using health_atom = caf::atom_constant<caf::atom("khealth")>;
using kv_open_atom = caf::atom_constant<caf::atom("kvopen")>;
using kv_get_atom = caf::atom_constant<caf::atom("kvget")>;
using kv_put_atom = caf::atom_constant<caf::atom("kvput")>;
using kv_delete_atom = caf::atom_constant<caf::atom("kvdelete")>;
using kv_keys_atom = caf::atom_constant<caf::atom("kvkeys")>;
using kv_watch_atom = caf::atom_constant<caf::atom("kvwatch")>;
using chat_atom = caf::atom_constant<caf::atom("kchat")>;

// -- messages -------------------------------------------------------------------

/// Where the NATS connection stands.
enum class connection_state : std::uint8_t { connecting, connected, disconnected, closed };

const char* to_string(connection_state s);

/// Sent by the connection actor on every state change (PROTOCOL.md §3 uses
/// these for connected/disconnected lifecycle events).
struct connection_status {
  connection_state state = connection_state::connecting;
  std::string server;  // the server connected to, or last connected to
  std::string reason;  // why it is disconnected or closed ("" otherwise)
  std::int64_t at_ns = 0;  // system_clock nanoseconds of the change
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_status& x) {
  return f(caf::meta::type_name("kryten::connection_status"), x.state, x.server, x.reason,
           x.at_ns);
}

/// Registers every kryten message type and kryten's error category (errors.hpp)
/// with `cfg`.
void add_message_types(caf::actor_system_config& cfg);

}  // namespace kryten
