#include "actors/handler_actor.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include <caf/all.hpp>

#include "actors/memory_release.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

/// Set while a user callback runs on this thread (see inside_handler()).
thread_local bool running_user_code = false;

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
    spec.stats->busy_since_ns.store(start, std::memory_order_relaxed);
    running_user_code = true;
    try {
      fn(x);
    } catch (const std::exception& e) {
      bump(spec.stats->exceptions);
      spec.log->error("handler {} threw: {}", spec.label, e.what());
    } catch (...) {
      bump(spec.stats->exceptions);
      spec.log->error("handler {} threw a non-standard exception", spec.label);
    }
    running_user_code = false;
    spec.stats->busy_since_ns.store(0, std::memory_order_relaxed);
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

/// The handler has caught up: after a backlog that held a lot, the heap's
/// freed pages go back to the system (actors/memory_release.hpp).
void caught_up(const handler_spec& spec, std::int64_t& backlog_peak_bytes) {
  release_after_backlog(backlog_peak_bytes, "handler", spec.label, spec.log);
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
  st.backlog_peak_bytes = std::max(st.backlog_peak_bytes, inbox.bytes());
  // Once per batch, not per event: the dispatcher raises it on another core.
  auto& stats = *st.spec.stats;
  auto count_done = [&] {
    stats.queued.fetch_sub(done, std::memory_order_relaxed);
    stats.done_in_batch.store(0, std::memory_order_relaxed);
  };
  for (int n = 0; n < drain_batch && now < slice_end; ++n) {
    if (inbox.closed() || (!inbox.pop(msg) && !(inbox.go_idle() && inbox.pop(msg)))) {
      count_done();
      caught_up(st.spec, st.backlog_peak_bytes);
      return;
    }
    now = dispatch(st.spec, msg, now);
    ++done;
    // A plain store (one writer): lets the shutdown's accounting see the
    // events of a batch that is still running.
    stats.done_in_batch.store(done, std::memory_order_relaxed);
  }
  count_done();
  self->send(self, drain_atom::value);
}

}  // namespace

bool inside_handler() {
  return running_user_code;
}

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

using forwarder_self = caf::stateful_actor<forwarding_state>;

void pump(forwarder_self* self);

/// The oldest event still in flight sets busy_since (stuck-handler reports).
void update_busy_since(forwarder_self* self) {
  auto& st = self->state;
  auto since = st.in_flight.empty() ? 0 : st.in_flight.begin()->second.second;
  st.spec.stats->busy_since_ns.store(since, std::memory_order_relaxed);
}

/// An answer (or error) for event `seq`: counted, and the next event goes.
void settle(forwarder_self* self, std::uint64_t seq) {
  auto& st = self->state;
  st.in_flight.erase(seq);
  st.spec.stats->queued.fetch_sub(1, std::memory_order_relaxed);
  update_busy_since(self);
  pump(self);
}

/// Sends one event to the user's actor as a request.
void forward(forwarder_self* self, caf::message msg) {
  auto& st = self->state;
  auto start = steady_ns();
  auto arrived = arrival_of_event(msg);
  auto seq = st.next_seq++;
  st.in_flight.emplace(seq, std::make_pair(msg, start));
  update_busy_since(self);
  auto timeout = std::chrono::duration_cast<caf::timespan>(st.spec.timeout);
  self->request(st.target, timeout, std::move(msg))
    .then(
      [self, seq, start, arrived] {
        record_run(self->state.spec, arrived, start, steady_ns());
        settle(self, seq);
      },
      [self, seq](caf::error& err) {
        auto& spec = self->state.spec;
        auto i = self->state.in_flight.find(seq);
        if (i == self->state.in_flight.end())
          return;
        if (err == caf::sec::request_receiver_down && spec.inbox) {
          // Still in the dead actor's mailbox: its successor gets it.
          spec.inbox->give_back(std::move(i->second.first));
          self->state.in_flight.erase(i);
          update_busy_since(self);
          return;
        }
        if (err == caf::sec::request_timeout) {
          bump(spec.stats->timeouts);
          spec.log->warn("handler {} did not answer within handler_timeout", spec.label);
        } else {
          bump(spec.stats->exceptions);
          spec.log->error("handler {} failed: {}", spec.label, self->system().render(err));
        }
        settle(self, seq);
      });
}

/// Forwards queued events while the window has room. With the window full it
/// keeps the wake: the next answer pumps again.
void pump(forwarder_self* self) {
  auto& st = self->state;
  if (!st.spec.inbox || !st.target || st.target_down)
    return;
  caf::message msg;
  st.backlog_peak_bytes = std::max(st.backlog_peak_bytes, st.spec.inbox->bytes());
  while (static_cast<int>(st.in_flight.size()) < forward_window && !st.spec.inbox->closed()) {
    if (!st.spec.inbox->pop(msg) && !(st.spec.inbox->go_idle() && st.spec.inbox->pop(msg))) {
      caught_up(st.spec, st.backlog_peak_bytes);
      return;
    }
    forward(self, std::move(msg));
  }
}

/// The user's actor is gone. Its answers and the requests it bounced (from
/// its mailbox, or sent after it died: those bounce at once, in the send)
/// are all in our mailbox by now, ahead of a message we send ourselves. Once
/// that arrives, what is still in flight was never answered nor bounced: the
/// event it was handling when it died, counted as failed. Bounced events
/// went back to the inbox meanwhile, for the successor.
void on_target_down(forwarder_self* self, const caf::down_msg& down) {
  auto& st = self->state;
  st.target_down = true;
  st.down_reason = down.reason;
  self->send(self, target_down_atom::value);
}

void finish_target_down(forwarder_self* self) {
  auto& st = self->state;
  auto& stats = *st.spec.stats;
  if (!st.in_flight.empty() && st.down_reason)
    st.spec.log->error("handler {} died while handling {} event(s): {}", st.spec.label,
                       st.in_flight.size(), self->system().render(st.down_reason));
  for (auto& entry : st.in_flight) {
    (void) entry;
    if (st.down_reason)
      bump(stats.exceptions);
    stats.queued.fetch_sub(1, std::memory_order_relaxed);
  }
  st.in_flight.clear();
  stats.busy_since_ns.store(0, std::memory_order_relaxed);
  self->quit(st.down_reason);
}

}  // namespace

caf::behavior forwarding_actor(forwarder_self* self, handler_spec spec, caf::actor target) {
  auto& st = self->state;
  st.spec = std::move(spec);
  bool made = !target;
  st.target = made ? st.spec.factory(self->system()) : std::move(target);
  if (!st.target) {
    st.spec.log->error("handler {}: its factory made no actor", st.spec.label);
    self->quit(caf::sec::invalid_argument);
    return {};
  }
  if (made)  // ours: it goes with its forwarder (the handle, not the state: see CAF 0.17)
    self->attach_functor([made_actor = st.target] {
      caf::anon_send_exit(made_actor, caf::exit_reason::user_shutdown);
    });
  // The user's actor dying takes its forwarder down with the same reason, so
  // that the supervisor sees the crash and decides about a restart.
  self->monitor(st.target);
  self->set_down_handler([self](caf::down_msg& down) { on_target_down(self, down); });
  if (st.spec.inbox) {
    st.spec.inbox->take_over();
    self->send(self, drain_atom::value);
  }
  auto direct = [self](caf::message msg) {
    auto& inbox = self->state.spec.inbox;
    if (self->state.target_down && inbox)
      inbox->give_back(std::move(msg));  // for the successor
    else
      forward(self, std::move(msg));
  };
  return {
    [self](drain_atom) { pump(self); },
    [self](target_down_atom) { finish_target_down(self); },
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
