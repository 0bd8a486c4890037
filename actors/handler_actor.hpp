// A handler actor: runs one user handler for each event in its inbox (or sent
// to it directly), one at a time. Exceptions are caught and counted, slow runs
// are counted against handler_timeout, and the queue counter the dispatcher
// raised is lowered.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/logger.h>

#include "actors/handler_inbox.hpp"
#include "actors/runtime_stats.hpp"
#include "kryten/handler.hpp"

namespace kryten::detail {

/// A forwarder's own note that its target's last answers have arrived.
using target_down_atom = caf::atom_constant<caf::atom("ktgtdown")>;

/// Makes a user's handler actor (again, after a crash).
using actor_factory = std::function<caf::actor(caf::actor_system&)>;

/// True on a thread that is running a user handler's callback right now, so
/// that calls back into the client can avoid waiting for their own caller.
bool inside_handler();

struct handler_spec {
  std::string label;  // e.g. "chatmsg#1"
  event_callbacks callbacks;
  actor_factory factory;  // a user's actor, made by the forwarder
  std::shared_ptr<handler_stats> stats;
  std::chrono::nanoseconds timeout{std::chrono::seconds(30)};
  std::shared_ptr<spdlog::logger> log;
  /// Where the dispatcher queues this handler's events (drain_atom wakes it).
  std::shared_ptr<handler_inbox> inbox;
};

struct handler_state {
  handler_spec spec;
  /// The most the inbox held since the handler last caught up (bytes, the
  /// inbox's estimate): a large backlog is followed by a memory release.
  std::int64_t backlog_peak_bytes = 0;
  static inline const char* name = "kryten.handler";
};

/// Runs user callbacks (lambda handlers).
caf::behavior handler_actor(caf::stateful_actor<handler_state>* self, handler_spec spec);

struct forwarding_state {
  handler_spec spec;
  std::int64_t backlog_peak_bytes = 0;  // as handler_state's
  caf::actor target;
  std::uint64_t next_seq = 0;
  /// Events sent to target and not yet answered, by sequence number: an event
  /// and the steady-clock ns it was sent.
  std::map<std::uint64_t, std::pair<caf::message, std::int64_t>> in_flight;
  bool target_down = false;  // waiting for the last answers and bounces
  caf::error down_reason;
  static inline const char* name = "kryten.forwarder";
};

/// Stands in front of a user's own actor (`target`, or one made by
/// spec.factory): forwards each event as a request (at most 64 unanswered),
/// so that the queue bound and handler_timeout apply to it too. The user's
/// actor answers each event with nothing (a void handler). When it dies, the
/// forwarder dies with the same reason; events that were still in the dead
/// actor's mailbox go back to the inbox for the successor, and the one it was
/// handling is counted as failed (see on_target_down).
caf::behavior forwarding_actor(caf::stateful_actor<forwarding_state>* self, handler_spec spec,
                               caf::actor target);

}  // namespace kryten::detail
