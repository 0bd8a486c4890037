// cnats options from the configuration, and the connection-level callbacks
// (disconnected, reconnected, closed, async errors) that turn into messages
// to the connection actor. The callbacks run on cnats' callback thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <nats/nats.h>
#include <spdlog/logger.h>

#include "actors/cnats_closures.hpp"
#include "actors/log_limiter.hpp"
#include "actors/runtime_stats.hpp"
#include "kryten/config.hpp"

namespace kryten::detail {

/// What the connection-level callbacks need; cnats calls them with it, and
/// on_closed (the last callback) frees it. The owner is held weakly: cnats
/// calls on_closed on its own thread, possibly after the owner and its actor
/// system are gone, and dropping the last reference to an actor there would
/// end its thread after the system (a use after free).
struct connection_events {
  cnats_closures::token held;
  caf::weak_actor_ptr owner;
  std::shared_ptr<connection_stats> stats;
  std::shared_ptr<spdlog::logger> log;
  log_limiter limiter;
};

/// Sent to the connection actor (drop_check_atom, reported): `reported` when
/// cnats has just said a subscription became a slow consumer, else from the
/// actor's own follow-up timer.
using drop_check_atom = caf::atom_constant<caf::atom("kdropchk")>;

/// cnats options for `n`, with `events` as the callbacks' closure.
natsStatus make_options(const nats_config& n, const std::string& client_name,
                        connection_events* events, natsOptions** out);

/// Raises cnats' pending limits (65,536 messages by default, then silent drops).
natsStatus raise_limits(natsSubscription* sub, const nats_config& n);

/// natsStatus text with cnats' last error detail.
std::string nats_error_text(natsStatus s);

/// The server `nc` is connected to, credentials redacted ("" when none).
std::string connected_url(natsConnection* nc);

}  // namespace kryten::detail
