#include "actors/handler_inbox.hpp"

namespace kryten::detail {

namespace {

std::size_t power_of_two_at_least(std::size_t n) {
  std::size_t p = 2;
  while (p < n)
    p <<= 1;
  return p;
}

}  // namespace

handler_inbox::handler_inbox(std::size_t capacity)
  : slots_(new slot[power_of_two_at_least(capacity)]),
    mask_(power_of_two_at_least(capacity) - 1) {
  for (std::size_t i = 0; i <= mask_; ++i)
    slots_[i].sequence.store(i, std::memory_order_relaxed);
}

bool handler_inbox::push(const caf::message& event) {
  auto pos = tail_.load(std::memory_order_relaxed);
  for (;;) {
    auto& s = slots_[pos & mask_];
    auto seq = s.sequence.load(std::memory_order_acquire);
    auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
    if (diff == 0) {
      if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        s.event = event;
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

bool handler_inbox::pop(caf::message& out) {
  if (!returned_.empty()) {
    out = std::move(returned_.front());
    returned_.pop_front();
    return true;
  }
  auto pos = head_.load(std::memory_order_relaxed);
  auto& s = slots_[pos & mask_];
  if (s.sequence.load(std::memory_order_acquire) != pos + 1)
    return false;
  out = std::move(s.event);  // leaves the slot empty: the event is released with `out`
  head_.store(pos + 1, std::memory_order_relaxed);
  s.sequence.store(pos + mask_ + 1, std::memory_order_release);
  return true;
}

bool handler_inbox::empty() const {
  if (!returned_.empty())
    return false;
  auto pos = head_.load(std::memory_order_relaxed);
  return slots_[pos & mask_].sequence.load(std::memory_order_acquire) != pos + 1;
}

bool handler_inbox::go_idle() {
  scheduled_.exchange(false, std::memory_order_acq_rel);
  return !empty() && claim();
}

}  // namespace kryten::detail
