// The heartbeat actor: asks the lifecycle actor for a heartbeat every
// interval, the first one interval after it starts. Beats are scheduled
// against a steady clock (start + n * interval), so they do not drift.
#pragma once

#include <chrono>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

namespace kryten::detail {

caf::actor spawn_heartbeat_actor(caf::actor_system& sys, caf::actor lifecycle,
                                 std::chrono::milliseconds interval);

}  // namespace kryten::detail
