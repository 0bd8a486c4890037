// What a handler is: a callable taking one or more of the event types of
// events.hpp, wrapped into an actor by the client.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include "kryten/events.hpp"

namespace kryten {

/// Narrows a handler to events of one channel and/or domain (exact match, ""
/// = any).
struct handler_filter {
  std::string channel;
  std::string domain;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handler_filter& x) {
  return f(caf::meta::type_name("kryten::handler_filter"), x.channel, x.domain);
}

/// One handler's callbacks, one per event type it takes; empty ones are not
/// called (an event of that type is counted as a type mismatch).
struct event_callbacks {
  std::function<void(const raw_event&)> raw;
  std::function<void(const chat_message&)> chat;
  std::function<void(const user_join&)> join;
  std::function<void(const user_leave&)> leave;
  std::function<void(const change_media&)> media;
  std::function<void(const playlist_update&)> playlist;
  std::function<void(const bus_message&)> bus;  // plain subscriptions
};

namespace detail {

template <class T, class F>
std::function<void(const T&)> callback_for(const std::shared_ptr<F>& f) {
  if constexpr (std::is_invocable_v<F&, const T&>)
    return [f](const T& x) { (*f)(x); };
  else
    return {};
}

}  // namespace detail

/// Wraps any callable: `[](const chat_message&)`, `[](const raw_event&)`,
/// `[](const event_envelope&)` (every event), `[](const event&)` (every event,
/// as a variant) or a generic lambda `[](const auto&)`.
template <class F>
event_callbacks make_event_callbacks(F f) {
  auto shared = std::make_shared<F>(std::move(f));
  event_callbacks cb;
  cb.raw = detail::callback_for<raw_event>(shared);
  cb.chat = detail::callback_for<chat_message>(shared);
  cb.join = detail::callback_for<user_join>(shared);
  cb.leave = detail::callback_for<user_leave>(shared);
  cb.media = detail::callback_for<change_media>(shared);
  cb.playlist = detail::callback_for<playlist_update>(shared);
  return cb;
}

}  // namespace kryten
