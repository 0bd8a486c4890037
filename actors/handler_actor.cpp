#include "actors/handler_actor.hpp"

#include <exception>

#include <caf/all.hpp>

namespace kryten::detail {

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

template <class T>
std::int64_t arrival_of(const T& x) {
  if constexpr (std::is_base_of_v<event_envelope, T>)
    return x.received_ns;
  else
    return 0;
}

template <class T>
const char* type_name_of() {
  if constexpr (std::is_same_v<T, chat_message>) return "chat_message";
  else if constexpr (std::is_same_v<T, user_join>) return "user_join";
  else if constexpr (std::is_same_v<T, user_leave>) return "user_leave";
  else if constexpr (std::is_same_v<T, change_media>) return "change_media";
  else if constexpr (std::is_same_v<T, playlist_update>) return "playlist_update";
  else if constexpr (std::is_same_v<T, bus_message>) return "bus_message";
  else return "raw_event";
}

void record_run(const handler_spec& spec, std::int64_t arrived, std::int64_t start,
                std::int64_t end) {
  auto& st = *spec.stats;
  if (arrived > 0 && start > arrived) {
    bump(st.queue_ns, static_cast<std::uint64_t>(start - arrived));
    st.queue_hist.record(static_cast<std::uint64_t>(start - arrived));
  }
  bump(st.run_ns, static_cast<std::uint64_t>(end - start));
  st.run_hist.record(static_cast<std::uint64_t>(end - start));
  bump(st.handled);
  if (std::chrono::nanoseconds(end - start) > spec.timeout) {
    bump(st.timeouts);
    spec.log->warn("handler {} took {:.3f} s, over handler_timeout ({:.3f} s)", spec.label,
                   (end - start) / 1e9, spec.timeout.count() / 1e9);
  }
}

/// Calls the callback for T, isolating the actor from whatever it throws.
template <class T>
void run(const handler_spec& spec, const std::function<void(const T&)>& fn, const T& x) {
  auto start = steady_ns();
  if (!fn) {
    bump(spec.stats->type_mismatches);
    spec.log->debug("handler {} takes no {}; event skipped", spec.label, type_name_of<T>());
  } else {
    try {
      fn(x);
    } catch (const std::exception& e) {
      bump(spec.stats->exceptions);
      spec.log->error("handler {} threw: {}", spec.label, e.what());
    } catch (...) {
      bump(spec.stats->exceptions);
      spec.log->error("handler {} threw a non-standard exception", spec.label);
    }
  }
  record_run(spec, arrival_of(x), start, steady_ns());
  spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

caf::behavior handler_actor(caf::stateful_actor<handler_state>* self, handler_spec spec) {
  self->state.spec = std::move(spec);
  auto& s = self->state.spec;
  return {
    [&s](const raw_event& x) { run(s, s.callbacks.raw, x); },
    [&s](const chat_message& x) { run(s, s.callbacks.chat, x); },
    [&s](const user_join& x) { run(s, s.callbacks.join, x); },
    [&s](const user_leave& x) { run(s, s.callbacks.leave, x); },
    [&s](const change_media& x) { run(s, s.callbacks.media, x); },
    [&s](const playlist_update& x) { run(s, s.callbacks.playlist, x); },
    [&s](const bus_message& x) { run(s, s.callbacks.bus, x); },
  };
}

namespace {

template <class T>
void forward(caf::stateful_actor<forwarding_state>* self, const T& x) {
  auto start = steady_ns();
  auto arrived = arrival_of(x);
  auto finish = [self, start, arrived] {
    auto& spec = self->state.spec;
    record_run(spec, arrived, start, steady_ns());
    spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
  };
  auto timeout = std::chrono::duration_cast<caf::timespan>(self->state.spec.timeout);
  self->request(self->state.target, timeout, x)
    .then([finish] { finish(); },
          [self, finish](caf::error& err) {
            auto& spec = self->state.spec;
            if (err == caf::sec::request_timeout) {
              bump(spec.stats->timeouts);
              spec.log->warn("handler {} did not answer within handler_timeout", spec.label);
            } else {
              bump(spec.stats->exceptions);
              spec.log->error("handler {} failed: {}", spec.label, self->system().render(err));
            }
            spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
            (void) finish;
          });
}

}  // namespace

caf::behavior forwarding_actor(caf::stateful_actor<forwarding_state>* self, handler_spec spec,
                               caf::actor target) {
  self->state.spec = std::move(spec);
  self->state.target = std::move(target);
  // The user's actor dying takes its forwarder down with the same reason, so
  // that the supervisor sees the crash (restart limit, degraded, up = false).
  self->monitor(self->state.target);
  self->set_down_handler([self](caf::down_msg& down) { self->quit(down.reason); });
  return {
    [self](const raw_event& x) { forward(self, x); },
    [self](const chat_message& x) { forward(self, x); },
    [self](const user_join& x) { forward(self, x); },
    [self](const user_leave& x) { forward(self, x); },
    [self](const change_media& x) { forward(self, x); },
    [self](const playlist_update& x) { forward(self, x); },
    [self](const bus_message& x) { forward(self, x); },
  };
}

}  // namespace kryten::detail
