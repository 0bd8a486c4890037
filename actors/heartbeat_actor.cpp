#include "actors/heartbeat_actor.hpp"

#include <caf/all.hpp>

#include "kryten/message_types.hpp"

namespace kryten::detail {

namespace {

using beat_atom = caf::atom_constant<caf::atom("kbeat")>;

struct heartbeat_state {
  caf::actor lifecycle;
  std::chrono::steady_clock::duration interval{};
  std::chrono::steady_clock::time_point start;
  std::uint64_t count = 0;
  static inline const char* name = "kryten.heartbeat";
};

using heartbeat_self = caf::stateful_actor<heartbeat_state>;

void schedule_next(heartbeat_self* self) {
  auto& s = self->state;
  auto due = s.start + s.interval * static_cast<long>(s.count + 1);
  auto wait = std::max(due - std::chrono::steady_clock::now(),
                       std::chrono::steady_clock::duration::zero());
  self->delayed_send(self, std::chrono::duration_cast<caf::timespan>(wait), beat_atom::value);
}

caf::behavior heartbeat_actor(heartbeat_self* self, caf::actor lifecycle,
                              std::chrono::milliseconds interval) {
  auto& s = self->state;
  s.lifecycle = std::move(lifecycle);
  s.interval = interval;
  s.start = std::chrono::steady_clock::now();
  schedule_next(self);
  return {
    [self](beat_atom) {
      auto& st = self->state;
      ++st.count;
      self->send(st.lifecycle, heartbeat_atom::value, st.count);
      schedule_next(self);
    },
  };
}

}  // namespace

caf::actor spawn_heartbeat_actor(caf::actor_system& sys, caf::actor lifecycle,
                                 std::chrono::milliseconds interval) {
  return sys.spawn<caf::detached>(heartbeat_actor, std::move(lifecycle), interval);
}

}  // namespace kryten::detail
