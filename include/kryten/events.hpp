// CyTube events as handlers receive them (PROTOCOL.md §1): the RawEvent
// envelope and the typed views built from its payload. Every type here is a
// CAF message type (see message_types.hpp), so actors receive them directly.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

namespace kryten {

/// What every event carries: the RawEvent fields plus where and when it arrived.
struct event_envelope {
  std::string event_name;      // as sent, e.g. "chatMsg"
  std::string channel;         // "" when the sender left it out
  std::string domain;          // "" when the sender left it out
  std::string timestamp;       // ISO 8601 as sent ("" when absent)
  std::string correlation_id;  // as sent ("" when absent)
  std::string payload_json;    // the payload's JSON text, "null" when absent
  std::string subject;         // NATS subject it arrived on
  std::int64_t received_ns = 0;  // steady_clock nanoseconds when the runtime received it

  /// The payload parsed with nlohmann::json (the payload was validated on arrival).
  nlohmann::json payload() const;
  /// The whole RawEvent as JSON.
  nlohmann::json to_json() const;
};

/// An event with no typed view, or whose payload did not fit its typed view.
struct raw_event : event_envelope {};

/// chatmsg and pm.
struct chat_message : event_envelope {
  std::string username;    // payload.user.name if user is an object, else payload.username
  std::int64_t rank = 0;   // likewise, default 0
  std::string message;     // payload.msg, else payload.message
  std::int64_t time_ms = 0;  // payload.time (epoch ms), else the envelope timestamp, else 0
  bool shadow = false;     // payload.meta.shadow
};

/// adduser.
struct user_join : event_envelope {
  std::string username;  // payload.name
  std::int64_t rank = 0;
  std::int64_t time_ms = 0;
};

/// userleave.
struct user_leave : event_envelope {
  std::string username;  // payload.name
  std::int64_t time_ms = 0;
};

/// changemedia.
struct change_media : event_envelope {
  std::string media_type;  // payload.type
  std::string media_id;    // payload.id
  std::string title;       // payload.title, default ""
  double duration = 0;     // payload.seconds, default 0
  std::int64_t uid = -1;   // payload.uid, -1 when absent
};

/// playlist.
struct playlist_update : event_envelope {
  std::string action;     // payload.action
  std::int64_t uid = -1;  // payload.uid, -1 when absent
};

/// Any event, owned: what the decoder makes.
using any_event = std::variant<raw_event, chat_message, user_join, user_leave, change_media,
                               playlist_update>;

/// Any event a handler can receive, by reference: a handler taking
/// `const kryten::event&` sees the runtime's own copy of the event (no copy
/// per event). Valid for the duration of the call only.
///
///   client.on("*", [](const kryten::event& e) {
///     if (auto* chat = e.get_if<kryten::chat_message>()) ...
///     e.visit([](const auto& typed) { ... });
///   });
class event {
public:
  event(const raw_event& e) noexcept : ref_(&e) {}
  event(const chat_message& e) noexcept : ref_(&e) {}
  event(const user_join& e) noexcept : ref_(&e) {}
  event(const user_leave& e) noexcept : ref_(&e) {}
  event(const change_media& e) noexcept : ref_(&e) {}
  event(const playlist_update& e) noexcept : ref_(&e) {}
  event(const any_event& e) noexcept
    : ref_(std::visit([](const auto& x) -> reference { return &x; }, e)) {}

  /// The event as T, or nullptr when it is another type.
  template <class T>
  const T* get_if() const noexcept {
    auto p = std::get_if<const T*>(&ref_);
    return p ? *p : nullptr;
  }
  template <class T>
  bool is() const noexcept {
    return std::holds_alternative<const T*>(ref_);
  }
  /// Calls f with the typed event (const T&).
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit([&](auto* p) -> decltype(auto) { return f(*p); }, ref_);
  }
  const event_envelope& envelope() const noexcept {
    return std::visit([](auto* p) -> const event_envelope& { return *p; }, ref_);
  }
  /// A copy the caller owns (to keep past the call).
  any_event copy() const {
    return std::visit([](auto* p) -> any_event { return *p; }, ref_);
  }

private:
  using reference = std::variant<const raw_event*, const chat_message*, const user_join*,
                                 const user_leave*, const change_media*,
                                 const playlist_update*>;
  reference ref_;
};

/// The envelope of any event.
const event_envelope& envelope_of(const event& e);

/// A message from a plain (non-event) subscription, e.g. a command request.
struct bus_message {
  std::string subject;
  std::string data;
  std::string reply;  // "" when the sender expects no reply
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bus_message& x) {
  return f(caf::meta::type_name("kryten::bus_message"), x.subject, x.data, x.reply);
}

// -- CAF inspection -----------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, raw_event& x) {
  return f(caf::meta::type_name("kryten::raw_event"), x.event_name, x.channel, x.domain,
           x.timestamp, x.correlation_id, x.payload_json, x.subject, x.received_ns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chat_message& x) {
  return f(caf::meta::type_name("kryten::chat_message"), x.event_name, x.channel, x.domain,
           x.timestamp, x.correlation_id, x.payload_json, x.subject, x.received_ns,
           x.username, x.rank, x.message, x.time_ms, x.shadow);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_join& x) {
  return f(caf::meta::type_name("kryten::user_join"), x.event_name, x.channel, x.domain,
           x.timestamp, x.correlation_id, x.payload_json, x.subject, x.received_ns,
           x.username, x.rank, x.time_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_leave& x) {
  return f(caf::meta::type_name("kryten::user_leave"), x.event_name, x.channel, x.domain,
           x.timestamp, x.correlation_id, x.payload_json, x.subject, x.received_ns,
           x.username, x.time_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, change_media& x) {
  return f(caf::meta::type_name("kryten::change_media"), x.event_name, x.channel, x.domain,
           x.timestamp, x.correlation_id, x.payload_json, x.subject, x.received_ns,
           x.media_type, x.media_id, x.title, x.duration, x.uid);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, playlist_update& x) {
  return f(caf::meta::type_name("kryten::playlist_update"), x.event_name, x.channel,
           x.domain, x.timestamp, x.correlation_id, x.payload_json, x.subject,
           x.received_ns, x.action, x.uid);
}

}  // namespace kryten
