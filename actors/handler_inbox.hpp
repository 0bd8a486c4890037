// A handler's queue of events. The cnats delivery threads push, the handler
// actor pops in batches: under load the hand-off costs one atomic increment
// and no CAF message per event; only an idle handler is woken with a
// drain_atom message. The fast part is a ring (Vyukov's MPMC queue, used with
// one consumer) with all slots allocated up front: no allocation, no lock. A
// burst that outruns the ring goes on into an overflow list under a lock
// rather than being dropped; what bounds the inbox is the memory its events
// hold (`byte_limit`), not the ring's size.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>

#include <caf/atom.hpp>
#include <caf/message.hpp>

namespace kryten::detail {

/// Tells a handler actor that its inbox has events.
using drain_atom = caf::atom_constant<caf::atom("kdrain")>;

class handler_inbox {
public:
  /// A ring of at least `ring_slots` events (rounded up to a power of two);
  /// events past it wait in the overflow list. The events queued hold at
  /// most `byte_limit` bytes of memory (as estimated by the producers).
  handler_inbox(std::size_t ring_slots, std::int64_t byte_limit);
  handler_inbox(const handler_inbox&) = delete;
  handler_inbox& operator=(const handler_inbox&) = delete;

  /// Any thread: queues `event`, which holds about `bytes` of memory. False
  /// when that would take the inbox past its byte limit (not taken).
  bool push(const caf::message& event, std::uint32_t bytes);
  /// The consumer only. Events given back come first, then those taken from
  /// the overflow list, then the ring, then the overflow list again. Events
  /// one producer pushed come out in its order.
  bool pop(caf::message& out);
  /// The consumer only: returns an event taken but not handled (a user actor
  /// died with it still queued), so that its successor gets it first.
  /// Consumers follow one another (a restart), never overlap.
  void give_back(caf::message event) { returned_.push_back(std::move(event)); }
  /// The consumer only.
  bool empty() const;
  /// Events queued (ring and overflow list), roughly (any thread).
  std::size_t size_hint() const {
    return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_relaxed)
           + overflow_size_.load(std::memory_order_relaxed);
  }
  std::size_t slots() const { return mask_ + 1; }
  /// The memory the queued events hold, as estimated (any thread).
  std::int64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  std::int64_t byte_limit() const { return byte_limit_; }

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
    std::uint32_t bytes = 0;
  };
  using sized_event = std::pair<caf::message, std::uint32_t>;

  bool push_ring(const caf::message& event, std::uint32_t bytes);
  bool pop_ring(caf::message& out);
  bool ring_empty() const;
  void push_overflow(const caf::message& event, std::uint32_t bytes);
  enum class overflow_take { empty, taken, ring_first };
  overflow_take take_overflow();
  void release(std::uint32_t bytes) { bytes_.fetch_sub(bytes, std::memory_order_relaxed); }

  std::unique_ptr<slot[]> slots_;
  std::size_t mask_;
  std::int64_t byte_limit_;
  std::deque<caf::message> returned_;  // the consumer's only
  std::deque<sized_event> taken_;      // the consumer's: the overflow list, taken whole
  alignas(64) std::atomic<std::size_t> tail_{0};  // next push
  alignas(64) std::atomic<std::size_t> head_{0};  // next pop
  alignas(64) std::atomic<std::int64_t> bytes_{0};
  alignas(64) std::atomic<bool> scheduled_{false};
  std::atomic<bool> closed_{false};
  // While the overflow list holds events, producers add to it (not to the
  // ring), so that each producer's events stay in order.
  alignas(64) std::atomic<bool> overflowing_{false};
  std::atomic<std::size_t> overflow_size_{0};
  std::mutex overflow_mx_;
  std::deque<sized_event> overflow_;  // under overflow_mx_
};

}  // namespace kryten::detail
