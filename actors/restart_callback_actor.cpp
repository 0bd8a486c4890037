#include "actors/restart_callback_actor.hpp"

#include <exception>

#include <caf/all.hpp>

#include "kryten/lifecycle.hpp"

namespace kryten::detail {

namespace {

struct restart_callback_state {
  restart_callback callback;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "kryten.restart_callback";
};

using restart_callback_self = caf::stateful_actor<restart_callback_state>;

void call(restart_callback_state& s, const restart_notice& notice) {
  try {
    s.callback(notice.json());
  } catch (const std::exception& e) {
    s.log->error("group restart callback threw: {}", e.what());
  } catch (...) {
    s.log->error("group restart callback threw a non-standard exception");
  }
}

caf::behavior restart_callback_actor(restart_callback_self* self, restart_callback callback,
                                     std::shared_ptr<spdlog::logger> log) {
  self->state.callback = std::move(callback);
  self->state.log = std::move(log);
  return {
    [self](const restart_notice& notice) { call(self->state, notice); },
  };
}

}  // namespace

caf::actor spawn_restart_callback_actor(caf::actor_system& sys, restart_callback callback,
                                        std::shared_ptr<spdlog::logger> log) {
  return sys.spawn<caf::detached>(restart_callback_actor, std::move(callback), std::move(log));
}

}  // namespace kryten::detail
