// Counters written on the event path and read by health(). Each counter has
// one writer (a cnats delivery thread or one actor), so relaxed atomics are
// enough: no locks and no messages per event.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <thread>

#include "actors/latency_histogram.hpp"
#include "kryten/event_decoder.hpp"

namespace kryten::detail {

using counter = std::atomic<std::uint64_t>;

inline void bump(counter& c, std::uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

inline std::uint64_t read(const counter& c) {
  return c.load(std::memory_order_relaxed);
}

/// One event subscription (one channel): written by its cnats delivery thread.
struct subscription_stats {
  counter received{0};
  counter unmatched{0};  // decoded, but no handler wanted it
  std::array<counter, 6> decode_errors{};  // indexed by decode_error
  counter dropped_by_nats{0};  // natsSubscription_GetDropped, sampled
  std::atomic<std::int64_t> last_event_unix_ns{0};

  // The cut at the shutdown's drain deadline (enter_delivery, close_delivery):
  // after it, `received` is final and later messages are only counted here.
  std::atomic<bool> closed{false};
  std::atomic<int> delivering{0};  // delivery threads between enter and leave
  counter after_close{0};

  std::uint64_t decode_error_total() const {
    std::uint64_t n = 0;
    for (auto& c : decode_errors)
      n += read(c);
    return n;
  }
};

/// A delivery thread, before a message enters the event path: false once the
/// subscription is closed (the message is counted in after_close and goes no
/// further). When true, call leave_delivery() after the message.
inline bool enter_delivery(subscription_stats& s) {
  s.delivering.fetch_add(1, std::memory_order_seq_cst);
  if (!s.closed.load(std::memory_order_seq_cst))
    return true;
  s.delivering.fetch_sub(1, std::memory_order_release);
  bump(s.after_close);
  return false;
}

inline void leave_delivery(subscription_stats& s) {
  s.delivering.fetch_sub(1, std::memory_order_release);
}

/// Closes the event path of one subscription: no message enters it after
/// this, and one already in it has left when this returns true (false: it
/// did not leave within `spins` yields, which no decode-and-hand-off takes).
/// Both sides use sequentially consistent operations, so either the
/// delivery thread sees `closed` or this sees it delivering and waits.
inline bool close_delivery(subscription_stats& s, int spins = 1'000'000) {
  s.closed.store(true, std::memory_order_seq_cst);
  while (s.delivering.load(std::memory_order_seq_cst) != 0)
    if (--spins == 0)
      return false;
    else
      std::this_thread::yield();
  return true;
}

/// One handler actor: `queued` is raised by the dispatcher and lowered by the
/// handler; the rest are written by the handler actor only.
struct handler_stats {
  std::atomic<std::int64_t> queued{0};
  /// Events of the running batch already handled but not yet taken off
  /// `queued` (the handler lowers `queued` once per batch).
  std::atomic<std::int64_t> done_in_batch{0};
  counter dropped{0};  // written by the dispatcher: queue full
  counter handled{0};
  counter exceptions{0};
  counter timeouts{0};
  counter type_mismatches{0};  // the event's type is not one the handler takes
  counter run_ns{0};           // total time spent in the handler
  counter queue_ns{0};         // total time from arrival to handler start
  latency_histogram run_hist;    // handler run time
  latency_histogram queue_hist;  // arrival at the connection to handler start
  counter restarts{0};         // written by the supervisor
  std::atomic<bool> up{true};  // false once the restart limit was reached
  /// Steady-clock ns at which the running event started; 0 while idle.
  /// Written by the handler actor, read by the health actor (stuck handlers).
  std::atomic<std::int64_t> busy_since_ns{0};
  /// False for a user's actor given without a factory: it cannot be restarted.
  std::atomic<bool> restartable{true};
};

/// What the supervisor decides and health() reports.
struct runtime_flags {
  std::atomic<bool> ready{false};          // connected, subscribed, not shutting down
  counter abandoned_events{0};  // still buffered or queued at the shutdown drain deadline
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> handler_down{false};   // a handler is past its restart limit
  counter handler_restarts{0};
};

/// Facts the connection actor records.
struct connection_stats {
  counter commands_sent{0};
  counter published{0};
  counter publish_errors{0};
  counter nats_errors{0};
  counter slow_consumer_errors{0};
  counter permission_errors{0};
  counter reconnects{0};
  counter disconnects{0};
  counter lifecycle_errors{0};  // lifecycle events (heartbeats included) that never reached
                                // a publish (not connected, or no answer from the connection
                                // actor); a publish that cnats refused is in publish_errors
  counter heartbeats{0};
};

}  // namespace kryten::detail
