// The chat throttle actor: spaces outbound chat and PM commands as kryten-py
// does (at least chat_min_delay plus a random 0..chat_jitter seconds between
// two, the first at once, across every channel), so that no caller waits:
// commands queue here, in order, and go to the connection when due. Past
// max_waiting queued, further ones are dropped, counted and logged; those
// still waiting when it stops are counted and logged too.
//
// Protocol:
//   (command_atom, subject, data)   publish as a command when its turn comes
#pragma once

#include <chrono>
#include <memory>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>
#include <spdlog/logger.h>

namespace kryten::detail {

struct chat_throttle_spec {
  caf::actor connection;
  std::chrono::nanoseconds min_delay{std::chrono::seconds(1)};
  std::chrono::nanoseconds jitter{std::chrono::milliseconds(500)};
  std::size_t max_waiting = 10000;
  std::shared_ptr<spdlog::logger> log;
};

/// Spawned linked to `owner`, with which it goes whatever the exit reason.
caf::actor spawn_chat_throttle_actor(caf::local_actor* owner, chat_throttle_spec spec);

}  // namespace kryten::detail
