#include "actors/handler_inbox.hpp"

#include <thread>

namespace kryten::detail {

namespace {

std::size_t power_of_two_at_least(std::size_t n) {
  std::size_t p = 2;
  while (p < n)
    p <<= 1;
  return p;
}

}  // namespace

handler_inbox::handler_inbox(std::size_t ring_slots, std::int64_t byte_limit)
  : slots_(new slot[power_of_two_at_least(ring_slots)]),
    mask_(power_of_two_at_least(ring_slots) - 1),
    byte_limit_(byte_limit) {
  for (std::size_t i = 0; i <= mask_; ++i)
    slots_[i].sequence.store(i, std::memory_order_relaxed);
}

bool handler_inbox::push(const caf::message& event, std::uint32_t bytes) {
  if (bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes > byte_limit_) {
    release(bytes);
    return false;
  }
  if (!overflowing_.load(std::memory_order_acquire) && push_ring(event, bytes))
    return true;
  push_overflow(event, bytes);
  return true;
}

bool handler_inbox::pop(caf::message& out) {
  if (!returned_.empty()) {
    out = std::move(returned_.front());
    returned_.pop_front();
    return true;
  }
  for (;;) {
    if (!taken_.empty()) {
      out = std::move(taken_.front().first);
      release(taken_.front().second);
      taken_.pop_front();
      overflow_size_.fetch_sub(1, std::memory_order_release);
      return true;
    }
    if (pop_ring(out))
      return true;
    if (!overflowing_.load(std::memory_order_acquire))
      return false;
    switch (take_overflow()) {
      case overflow_take::empty:
        return false;
      case overflow_take::taken:
        break;
      case overflow_take::ring_first:
        // A producer has claimed a ring slot and not filled it yet (a few
        // instructions): the events behind it must wait for it.
        std::this_thread::yield();
        break;
    }
  }
}

bool handler_inbox::empty() const {
  return returned_.empty() && ring_empty() && overflow_size_.load(std::memory_order_acquire) == 0;
}

bool handler_inbox::go_idle() {
  scheduled_.exchange(false, std::memory_order_acq_rel);
  return !empty() && claim();
}

bool handler_inbox::push_ring(const caf::message& event, std::uint32_t bytes) {
  auto pos = tail_.load(std::memory_order_relaxed);
  for (;;) {
    auto& s = slots_[pos & mask_];
    auto seq = s.sequence.load(std::memory_order_acquire);
    auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
    if (diff == 0) {
      if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        s.event = event;
        s.bytes = bytes;
        s.sequence.store(pos + 1, std::memory_order_release);
        return true;
      }
    } else if (diff < 0) {
      return false;  // full
    } else {
      pos = tail_.load(std::memory_order_relaxed);
    }
  }
}

bool handler_inbox::pop_ring(caf::message& out) {
  auto pos = head_.load(std::memory_order_relaxed);
  auto& s = slots_[pos & mask_];
  if (s.sequence.load(std::memory_order_acquire) != pos + 1)
    return false;
  out = std::move(s.event);  // leaves the slot empty: the event is released with `out`
  release(s.bytes);
  head_.store(pos + 1, std::memory_order_relaxed);
  s.sequence.store(pos + mask_ + 1, std::memory_order_release);
  return true;
}

bool handler_inbox::ring_empty() const {
  auto pos = head_.load(std::memory_order_relaxed);
  return slots_[pos & mask_].sequence.load(std::memory_order_acquire) != pos + 1;
}

void handler_inbox::push_overflow(const caf::message& event, std::uint32_t bytes) {
  std::lock_guard<std::mutex> guard{overflow_mx_};
  // The list ran dry meanwhile: the ring is in order again.
  if (overflow_.empty() && push_ring(event, bytes))
    return;
  overflow_.emplace_back(event, bytes);
  overflow_size_.fetch_add(1, std::memory_order_release);
  overflowing_.store(true, std::memory_order_release);
}

handler_inbox::overflow_take handler_inbox::take_overflow() {
  std::lock_guard<std::mutex> guard{overflow_mx_};
  // A producer's ring events precede its listed ones, and its ring push
  // happened before it took this lock: the ring goes first, every slot
  // claimed so far (a slot another producer claimed but has not filled yet
  // hides the filled ones behind it from ring_empty()).
  if (tail_.load(std::memory_order_acquire) != head_.load(std::memory_order_relaxed))
    return overflow_take::ring_first;
  overflowing_.store(false, std::memory_order_release);
  if (overflow_.empty())
    return overflow_take::empty;
  // All of it at once: one lock for a batch. Producers use the ring again,
  // and whatever they add is later than what is taken here.
  taken_.swap(overflow_);
  return overflow_take::taken;
}

}  // namespace kryten::detail
