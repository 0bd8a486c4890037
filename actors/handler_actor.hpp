// A handler actor: runs one user handler for each event in its inbox (or sent
// to it directly), one at a time. Exceptions are caught and counted, slow runs
// are counted against handler_timeout, and the queue counter the dispatcher
// raised is lowered.
#pragma once

#include <chrono>
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

struct handler_spec {
  std::string label;  // e.g. "chatmsg#1"
  event_callbacks callbacks;
  std::shared_ptr<handler_stats> stats;
  std::chrono::nanoseconds timeout{std::chrono::seconds(30)};
  std::shared_ptr<spdlog::logger> log;
  /// Where the dispatcher queues this handler's events (drain_atom wakes it).
  std::shared_ptr<handler_inbox> inbox;
};

struct handler_state {
  handler_spec spec;
  static inline const char* name = "kryten.handler";
};

/// Runs user callbacks (lambda handlers).
caf::behavior handler_actor(caf::stateful_actor<handler_state>* self, handler_spec spec);

struct forwarding_state {
  handler_spec spec;
  caf::actor target;
  std::int64_t in_flight = 0;  // events sent to target, not yet answered
  static inline const char* name = "kryten.forwarder";
};

/// Stands in front of a user's own actor: forwards each event as a request
/// (at most 64 unanswered), so that the queue bound and handler_timeout apply
/// to it too. The user's
/// actor answers each event with nothing (a void handler).
caf::behavior forwarding_actor(caf::stateful_actor<forwarding_state>* self, handler_spec spec,
                               caf::actor target);

}  // namespace kryten::detail
