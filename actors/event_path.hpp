// The event hot path: what runs on cnats' delivery threads for every message.
// An event subscription decodes the RawEvent, matches the routes of the
// handler registry and offers the typed event to each matching handler's
// inbox; a plain subscription hands bus messages to its one route. No user
// code runs here.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nats/nats.h>
#include <spdlog/logger.h>

#include "actors/cnats_closures.hpp"
#include "actors/handler_registry.hpp"
#include "actors/log_limiter.hpp"
#include "actors/runtime_stats.hpp"
#include "kryten/event_decoder.hpp"

namespace kryten::detail {

/// Everything one channel's subscription needs on its delivery thread. Owned
/// by cnats once subscribed: freed by the subscription's on-complete callback,
/// after the last message callback has returned.
struct event_subscription {
  cnats_closures::token held;  // first: freed last
  std::string subject;
  std::shared_ptr<handler_registry> registry;
  std::shared_ptr<subscription_stats> stats;
  std::shared_ptr<spdlog::logger> log;
  event_decoder decoder;
  log_limiter limiter;
  std::string lowercase_name;  // reused buffer
  std::vector<const handler_route*> matched;
  // The routes this thread uses; to_wake points into them, so they are
  // renewed only after those wake-ups went out.
  handler_registry::snapshot routes;
  // Handlers with events not yet woken for: woken when cnats has no more pending.
  std::vector<const handler_route*> to_wake;
  std::int64_t backlog_peak_bytes = 0;  // the most cnats held since it last had none

  /// Takes the registry's newest routes if they changed.
  void refresh_routes();

  void handle(const char* subj, std::string_view body, bool more_coming);
  void wake_all();
  void report_bad(decode_error err, const char* subj, std::size_t size);
  void report_drop(const handler_route& route);
};

/// cnats' message callback of an event subscription (closure: event_subscription).
void on_event_msg(natsConnection*, natsSubscription* nsub, natsMsg* msg, void* closure);

/// cnats' on-complete callback of an event subscription: frees the closure.
void complete_event_subscription(void* closure);

/// A plain (non-event) subscription: every message goes to one route.
struct plain_subscription {
  cnats_closures::token held;  // first: freed last
  handler_route route;
};

/// cnats' message callback of a plain subscription (closure: plain_subscription).
void on_plain_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);

/// An on-complete callback that frees a closure of type T.
template <class T>
void delete_closure(void* closure) {
  delete static_cast<T*>(closure);
}

}  // namespace kryten::detail
