// The loopback connection actor: the connection actor's protocol
// (connection_actor.hpp) with no network, for kryten::testing. What the
// service sends is recorded on a loopback_bus; what the test sends is handed
// to the service's own subscriptions through the same event path and routes
// that cnats' threads use; the key-value store is kept in memory. Requests
// the service makes are answered by the loopback_bus's answerers, or fail
// with no_responders as on a bus where nobody listens.
//
// Protocol, beyond the connection actor's:
//   (inject_atom, bus_message)            a message to the service's
//                                         subscriptions matching its subject
//   (nats_event_atom, connection_status)  the connection changes state (a test
//                                         of disconnects and reconnects)
#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/connection_actor.hpp"
#include "actors/loopback_bus.hpp"

namespace kryten {
using inject_atom = caf::atom_constant<caf::atom("kinject")>;
}

namespace kryten::detail {

caf::actor spawn_loopback_connection_actor(caf::actor_system& sys, connection_spec spec,
                                           std::shared_ptr<loopback_bus> bus);

}  // namespace kryten::detail
