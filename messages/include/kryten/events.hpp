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

/// Any event a handler can receive.
using event = std::variant<raw_event, chat_message, user_join, user_leave, change_media,
                           playlist_update>;

/// The envelope of any event.
const event_envelope& envelope_of(const event& e);

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
