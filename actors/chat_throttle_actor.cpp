#include "actors/chat_throttle_actor.hpp"

#include <deque>
#include <random>
#include <string>
#include <utility>

#include <caf/all.hpp>

#include "actors/log_limiter.hpp"
#include "kryten/message_types.hpp"

namespace kryten::detail {

namespace {

using clock = std::chrono::steady_clock;
using send_due_atom = caf::atom_constant<caf::atom("ksenddue")>;

struct chat_throttle_state {
  chat_throttle_spec spec;
  std::deque<std::pair<std::string, std::string>> waiting;  // subject, data
  clock::time_point next_allowed{};  // the first message goes at once
  bool timer_set = false;
  std::uint64_t dropped = 0;
  log_limiter limiter;
  std::mt19937_64 random{std::random_device{}()};
  static inline const char* name = "kryten.chat_throttle";
};

using throttle_self = caf::stateful_actor<chat_throttle_state>;

std::chrono::nanoseconds next_gap(chat_throttle_state& s) {
  std::uniform_int_distribution<std::int64_t> pick{0, s.spec.jitter.count()};
  return s.spec.min_delay + std::chrono::nanoseconds{pick(s.random)};
}

/// Sends what is due; sets a timer for the rest.
void send_due(throttle_self* self) {
  auto& s = self->state;
  while (!s.waiting.empty()) {
    auto now = clock::now();
    if (now < s.next_allowed) {
      if (!s.timer_set) {
        s.timer_set = true;
        self->delayed_send(self, s.next_allowed - now, send_due_atom::value);
      }
      return;
    }
    auto [subject, data] = std::move(s.waiting.front());
    s.waiting.pop_front();
    self->send(s.spec.connection, command_atom::value, std::move(subject), std::move(data));
    s.next_allowed = clock::now() + next_gap(s);
  }
}

/// What still waits when the throttle stops is never sent: said, with how many.
void report_unsent(throttle_self* self) {
  auto& s = self->state;
  if (!s.waiting.empty())
    s.spec.log->error("chat throttle: stopping with {} chat message(s) waiting for their turn; "
                      "they are not sent (the first to {})",
                      s.waiting.size(), s.waiting.front().first);
}

caf::behavior chat_throttle_actor(throttle_self* self, chat_throttle_spec spec) {
  self->state.spec = std::move(spec);
  // Its owner's exit ends it even when normal (CAF's default handler ignores
  // that, and the timer would then keep it alive, holding the shutdown).
  self->set_exit_handler([self](caf::exit_msg& msg) {
    report_unsent(self);
    self->quit(msg.reason);
  });
  return {
    [self](command_atom, std::string& subject, std::string& data) {
      auto& s = self->state;
      if (s.waiting.size() >= s.spec.max_waiting) {
        ++s.dropped;
        std::uint64_t suppressed = 0;
        if (s.limiter.admit("full", suppressed))
          s.spec.log->error("chat throttle: {} messages waiting; dropped one to {} ({} in all)",
                            s.waiting.size(), subject, s.dropped);
        return;
      }
      s.waiting.emplace_back(std::move(subject), std::move(data));
      send_due(self);
    },
    [self](send_due_atom) {
      self->state.timer_set = false;
      send_due(self);
    },
  };
}

}  // namespace

caf::actor spawn_chat_throttle_actor(caf::local_actor* owner, chat_throttle_spec spec) {
  return owner->spawn<caf::linked>(chat_throttle_actor, std::move(spec));
}

}  // namespace kryten::detail
