// A handler's queue of events. The cnats delivery threads push, the handler
// actor pops in batches: under load the hand-off costs one atomic increment
// and no CAF message per event; only an idle handler is woken with a
// drain_atom message. A bounded ring (Vyukov's MPMC queue, used with one
// consumer) with all slots allocated up front: no allocation, no lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include <caf/atom.hpp>
#include <caf/message.hpp>

namespace kryten::detail {

/// Tells a handler actor that its inbox has events.
using drain_atom = caf::atom_constant<caf::atom("kdrain")>;

class handler_inbox {
public:
  /// Room for at least `capacity` events (rounded up to a power of two).
  explicit handler_inbox(std::size_t capacity);
  handler_inbox(const handler_inbox&) = delete;
  handler_inbox& operator=(const handler_inbox&) = delete;

  /// Any thread. False when the ring is full (the event is not taken).
  bool push(const caf::message& event);
  /// The consumer only. Events given back come first.
  bool pop(caf::message& out);
  /// The consumer only: returns an event taken but not handled (a user actor
  /// died with it still queued), so that its successor gets it first.
  /// Consumers follow one another (a restart), never overlap.
  void give_back(caf::message event) { returned_.push_back(std::move(event)); }
  /// The consumer only.
  bool empty() const;
  /// Events in the ring, roughly (any thread).
  std::size_t size_hint() const {
    return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_relaxed);
  }
  std::size_t slots() const { return mask_ + 1; }

  // The wake protocol: whoever turns `scheduled` from false to true sends the
  // consumer a drain_atom; the consumer clears it when it finds the ring
  // empty, then looks again so that an event pushed in between is not missed.

  /// Producer, after a push: true when the caller must wake the consumer.
  bool claim() { return !scheduled_.exchange(true, std::memory_order_acq_rel); }
  /// Consumer, after finding the ring empty: true when events arrived
  /// meanwhile and the consumer owns the wake again (it should go on).
  bool go_idle();
  /// Consumer, on start: owns the wake whatever the flag said.
  void take_over() { scheduled_.store(true, std::memory_order_release); }

  /// The shutdown gave up on this inbox: the consumer takes no more events
  /// (they are counted as abandoned).
  void close() { closed_.store(true, std::memory_order_release); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

private:
  struct slot {
    std::atomic<std::size_t> sequence;
    caf::message event;
  };

  std::unique_ptr<slot[]> slots_;
  std::size_t mask_;
  std::deque<caf::message> returned_;  // the consumer's only
  alignas(64) std::atomic<std::size_t> tail_{0};  // next push
  alignas(64) std::atomic<std::size_t> head_{0};  // next pop
  alignas(64) std::atomic<bool> scheduled_{false};
  std::atomic<bool> closed_{false};
};

}  // namespace kryten::detail
