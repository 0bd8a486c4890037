// Which handler actors want which events. The cnats delivery threads read the
// routes on every event without locking: registration (rare) copies the route
// list under a mutex and raises a version number; each delivery thread keeps
// a shared_ptr to the copy it uses and takes the newest one only when the
// version moved (one relaxed load per event). An old copy is freed when the
// last delivery thread lets go of it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/message.hpp>

#include "kryten/events.hpp"

#include "actors/handler_inbox.hpp"
#include "actors/runtime_stats.hpp"

namespace kryten::detail {

struct handler_route {
  std::string event_name;  // lowercased; "*" matches every event
  std::string channel;     // exact match against the event's channel; "" = any
  std::string domain;      // exact match against the event's domain; "" = any
  caf::actor actor;
  /// Set for handler actors: events go through it in batches. Without it
  /// (the runtime's own actors) each event is a message to `actor`.
  std::shared_ptr<handler_inbox> inbox;
  std::shared_ptr<handler_stats> stats;
  std::int64_t capacity = 10000;  // events queued for the actor at most
  std::string label;              // names the handler in logs, e.g. "chatmsg#1"

  bool matches(std::string_view lowercase_name, std::string_view channel_of_event,
               std::string_view domain_of_event) const;
};

using route_list = std::vector<handler_route>;

class handler_registry {
public:
  handler_registry();
  handler_registry(const handler_registry&) = delete;
  handler_registry& operator=(const handler_registry&) = delete;

  /// Adds a route; visible to the event path as soon as this returns.
  void add(handler_route route);
  /// Points the route labelled `label` at a new actor (a restarted handler).
  void replace(const std::string& label, caf::actor actor);
  /// Removes the route labelled `label` (a handler past its restart limit).
  void remove(const std::string& label);
  /// Raised by every change; compare with a snapshot's to see whether it is old.
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }
  struct snapshot {
    std::shared_ptr<const route_list> routes;
    std::uint64_t version = 0;
  };
  /// The routes as of now, with their version.
  snapshot current() const;

private:
  template <class Change>
  void update(Change change);

  mutable std::mutex mx_;
  std::shared_ptr<const route_list> routes_;
  std::atomic<std::uint64_t> version_{0};
};

/// Hands `msg`, which holds about `bytes` of memory, to the route's actor
/// unless its queue is full (in events or in bytes); a full queue drops the
/// event and counts it. Returns whether the event was queued.
/// An idle handler is woken with one drain_atom; a busy one is not messaged.
/// With `wake_later` set, the wake-up is left to the caller (see wake()) while
/// the inbox holds fewer than wake_batch events; `*wake_later` says whether it
/// was left.
bool offer(const handler_route& route, const caf::message& msg, std::size_t bytes,
           bool* wake_later = nullptr);

/// The memory an event decoded from a `payload_bytes` message holds while it
/// is queued, estimated: its strings (about the payload's text once more),
/// the event and its CAF message. (Measured: a burst of 200,000 chat events of
/// ~300 bytes queued whole peaked at ~700 bytes an event, cnats' copy included.)
inline std::size_t queued_event_bytes(std::size_t payload_bytes) {
  return payload_bytes + 512;
}

/// The same for a plain bus message (a subscribe() handler's or the commands').
inline std::size_t queued_event_bytes(const bus_message& m) {
  return queued_event_bytes(m.subject.size() + m.data.size() + m.reply.size());
}

/// Wakes the route's handler unless it is awake already.
void wake(const handler_route& route);

/// The most events an idle handler's inbox collects before it is woken while
/// more are coming.
inline constexpr std::size_t wake_batch = 64;

}  // namespace kryten::detail

// Routes travel between the runtime's own actors only, never over a network.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::detail::handler_route)
