#include "actors/handler_actor.hpp"

#include <exception>

#include <caf/all.hpp>

#include "kryten/clock.hpp"

namespace kryten::detail {

namespace {

/// Events taken from the inbox per drain_atom, and the time they may take:
/// past either the actor yields, so that system messages and other actors on
/// its thread get a turn (a slow handler must not hold a thread for long).
constexpr int drain_batch = 256;
constexpr std::int64_t drain_time_slice_ns = 2'000'000;

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
/// `start` is now (the end of the previous event, in a batch); returns the end.
template <class T>
std::int64_t run(const handler_spec& spec, const std::function<void(const T&)>& fn, const T& x,
                 std::int64_t start) {
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
  auto end = steady_ns();
  record_run(spec, arrival_of(x), start, end);
  return end;
}

/// An event sent to the handler directly (not through its inbox).
template <class T>
void run_one(const handler_spec& spec, const std::function<void(const T&)>& fn, const T& x) {
  run(spec, fn, x, steady_ns());
  spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
}

template <class T>
bool run_if(const handler_spec& spec, const std::function<void(const T&)>& fn,
            const caf::message& msg, std::int64_t& now) {
  if (!msg.match_element<T>(0))
    return false;
  now = run(spec, fn, msg.get_as<T>(0), now);
  return true;
}

/// Runs the callback for the event in `msg` (one of the event types).
std::int64_t dispatch(const handler_spec& spec, const caf::message& msg, std::int64_t now) {
  auto& cb = spec.callbacks;
  if (msg.size() == 1
      && (run_if(spec, cb.chat, msg, now) || run_if(spec, cb.join, msg, now)
          || run_if(spec, cb.leave, msg, now) || run_if(spec, cb.media, msg, now)
          || run_if(spec, cb.playlist, msg, now) || run_if(spec, cb.raw, msg, now)
          || run_if(spec, cb.bus, msg, now)))
    return now;
  spec.log->error("handler {} was sent an event of no known type", spec.label);
  return now;
}

/// Runs events from the inbox until it is empty or the batch is used up; then
/// asks for another turn when more are waiting. (Lingering on an empty inbox
/// for 20 us before sleeping was measured: no gain in throughput, +0.04 cores
/// at 1,000 events/s. Not done.)
void drain(caf::stateful_actor<handler_state>* self) {
  auto& st = self->state;
  auto& inbox = *st.spec.inbox;
  auto now = steady_ns();
  auto slice_end = now + drain_time_slice_ns;
  caf::message msg;
  std::int64_t done = 0;
  // Once per batch, not per event: the dispatcher raises it on another core.
  auto count_done = [&] { st.spec.stats->queued.fetch_sub(done, std::memory_order_relaxed); };
  for (int n = 0; n < drain_batch && now < slice_end; ++n) {
    if (!inbox.pop(msg) && !(inbox.go_idle() && inbox.pop(msg))) {
      count_done();
      return;
    }
    now = dispatch(st.spec, msg, now);
    ++done;
  }
  count_done();
  self->send(self, drain_atom::value);
}

}  // namespace

caf::behavior handler_actor(caf::stateful_actor<handler_state>* self, handler_spec spec) {
  self->state.spec = std::move(spec);
  auto& s = self->state.spec;
  if (s.inbox) {
    // A restarted handler takes over its predecessor's inbox, events included.
    s.inbox->take_over();
    self->send(self, drain_atom::value);
  }
  return {
    [self](drain_atom) {
      if (self->state.spec.inbox)
        drain(self);
    },
    [&s](const raw_event& x) { run_one(s, s.callbacks.raw, x); },
    [&s](const chat_message& x) { run_one(s, s.callbacks.chat, x); },
    [&s](const user_join& x) { run_one(s, s.callbacks.join, x); },
    [&s](const user_leave& x) { run_one(s, s.callbacks.leave, x); },
    [&s](const change_media& x) { run_one(s, s.callbacks.media, x); },
    [&s](const playlist_update& x) { run_one(s, s.callbacks.playlist, x); },
    [&s](const bus_message& x) { run_one(s, s.callbacks.bus, x); },
  };
}

namespace {

/// Events a forwarder has sent its target and not yet seen answered: enough
/// to keep the target busy, few enough that the inbox stays the queue.
constexpr int forward_window = 64;

template <class... Ts>
std::int64_t arrival_in(const caf::message& msg) {
  std::int64_t ns = 0;
  (void) ((msg.match_element<Ts>(0) ? (ns = msg.get_as<Ts>(0).received_ns, true) : false)
          || ...);
  return ns;
}

std::int64_t arrival_of_event(const caf::message& msg) {
  return arrival_in<chat_message, user_join, user_leave, change_media, playlist_update,
                    raw_event>(msg);
}

void pump(caf::stateful_actor<forwarding_state>* self);

/// Sends one event to the user's actor as a request; its answer (or error)
/// lowers the queue counter and lets the next event through.
void forward(caf::stateful_actor<forwarding_state>* self, const caf::message& msg) {
  auto start = steady_ns();
  auto arrived = arrival_of_event(msg);
  ++self->state.in_flight;
  auto timeout = std::chrono::duration_cast<caf::timespan>(self->state.spec.timeout);
  self->request(self->state.target, timeout, msg)
    .then(
      [self, start, arrived] {
        auto& spec = self->state.spec;
        record_run(spec, arrived, start, steady_ns());
        spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
        --self->state.in_flight;
        pump(self);
      },
      [self](caf::error& err) {
        auto& spec = self->state.spec;
        if (err == caf::sec::request_timeout) {
          bump(spec.stats->timeouts);
          spec.log->warn("handler {} did not answer within handler_timeout", spec.label);
        } else {
          bump(spec.stats->exceptions);
          spec.log->error("handler {} failed: {}", spec.label, self->system().render(err));
        }
        spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
        --self->state.in_flight;
        pump(self);
      });
}

/// Forwards queued events while the window has room. With the window full it
/// keeps the wake: the next answer pumps again.
void pump(caf::stateful_actor<forwarding_state>* self) {
  auto& st = self->state;
  if (!st.spec.inbox)
    return;
  caf::message msg;
  while (st.in_flight < forward_window) {
    if (!st.spec.inbox->pop(msg) && !(st.spec.inbox->go_idle() && st.spec.inbox->pop(msg)))
      return;
    forward(self, msg);
  }
}

}  // namespace

caf::behavior forwarding_actor(caf::stateful_actor<forwarding_state>* self, handler_spec spec,
                               caf::actor target) {
  self->state.spec = std::move(spec);
  self->state.target = std::move(target);
  // The user's actor dying takes its forwarder down with the same reason, so
  // that the supervisor sees the crash (restart limit, degraded, up = false).
  // Answers to the events in flight will never come: un-count them.
  self->monitor(self->state.target);
  self->set_down_handler([self](caf::down_msg& down) {
    self->state.spec.stats->queued.fetch_sub(self->state.in_flight, std::memory_order_relaxed);
    self->state.in_flight = 0;
    self->quit(down.reason);
  });
  if (self->state.spec.inbox) {
    self->state.spec.inbox->take_over();
    self->send(self, drain_atom::value);
  }
  auto direct = [self](const caf::message& msg) { forward(self, msg); };
  return {
    [self](drain_atom) { pump(self); },
    [direct](const raw_event& x) { direct(caf::make_message(x)); },
    [direct](const chat_message& x) { direct(caf::make_message(x)); },
    [direct](const user_join& x) { direct(caf::make_message(x)); },
    [direct](const user_leave& x) { direct(caf::make_message(x)); },
    [direct](const change_media& x) { direct(caf::make_message(x)); },
    [direct](const playlist_update& x) { direct(caf::make_message(x)); },
    [direct](const bus_message& x) { direct(caf::make_message(x)); },
  };
}

}  // namespace kryten::detail
