// Fuzz target: kryten::event_decoder (messages/event_decoder.cpp), the RawEvent
// envelope and every typed view (include/kryten/events.hpp, api/events.cpp).
//
// The input is one message body as it would arrive on kryten.events.cytube.>.
// Beyond "no crash, no sanitizer report", an event that decodes must keep the
// promises handlers rely on:
//   - event_name is not empty;
//   - payload() parses (the decoder validated the payload: a handler calling
//     payload() or to_json() must never get a parse_error);
//   - a typed view (not raw_event) came from an object payload;
//   - decode() is decode_envelope() followed by to_typed(), on a decoder that
//     has seen other inputs before (state does not leak between calls).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "kryten/event_decoder.hpp"
#include "kryten/events.hpp"

namespace {

using kryten::any_event;
using kryten::decode_error;
using kryten::event_envelope;

// Keeps the optimiser from dropping reads of the fields.
volatile std::size_t sink;

void touch(const std::string& s) { sink = sink + s.size() + (s.empty() ? 0 : s.back()); }
void touch(std::int64_t v) { sink = sink + static_cast<std::size_t>(v); }
void touch(double v) { sink = sink + (v == v ? 1 : 2); }
void touch(bool v) { sink = sink + (v ? 1 : 0); }

nlohmann::json checked_payload(const event_envelope& e) {
  try {
    return e.payload();
  } catch (const nlohmann::json::exception& ex) {
    std::fprintf(stderr, "payload() threw on a decoded event: %s\npayload_json: %s\n", ex.what(),
                 e.payload_json.c_str());
    std::abort();
  }
}

// Every accessor of the envelope: fields, payload(), to_json() and its dump.
void check_envelope(const event_envelope& e) {
  KRYTEN_FUZZ_CHECK(!e.event_name.empty());
  KRYTEN_FUZZ_CHECK(!e.payload_json.empty());
  touch(e.event_name);
  touch(e.channel);
  touch(e.domain);
  touch(e.timestamp);
  touch(e.correlation_id);
  touch(e.subject);
  touch(e.received_ns);
  const auto payload = checked_payload(e);
  nlohmann::json whole;
  try {
    whole = e.to_json();
    touch(whole.dump());
  } catch (const nlohmann::json::exception& ex) {
    std::fprintf(stderr, "to_json()/dump() threw on a decoded event: %s\n", ex.what());
    std::abort();
  }
  KRYTEN_FUZZ_CHECK(whole.at("event_name") == e.event_name);
  KRYTEN_FUZZ_CHECK(whole.at("payload") == payload);
}

void check_typed(const kryten::raw_event& e) { check_envelope(e); }

void check_typed(const kryten::chat_message& e) {
  check_envelope(e);
  KRYTEN_FUZZ_CHECK(checked_payload(e).is_object());
  touch(e.username);
  touch(e.rank);
  touch(e.message);
  touch(e.time_ms);
  touch(e.shadow);
}

void check_typed(const kryten::user_join& e) {
  check_envelope(e);
  KRYTEN_FUZZ_CHECK(checked_payload(e).is_object());
  touch(e.username);
  touch(e.rank);
  touch(e.time_ms);
}

void check_typed(const kryten::user_leave& e) {
  check_envelope(e);
  KRYTEN_FUZZ_CHECK(checked_payload(e).is_object());
  touch(e.username);
  touch(e.time_ms);
}

void check_typed(const kryten::change_media& e) {
  check_envelope(e);
  KRYTEN_FUZZ_CHECK(checked_payload(e).is_object());
  touch(e.media_type);
  touch(e.media_id);
  touch(e.title);
  touch(e.duration);
  touch(e.uid);
}

void check_typed(const kryten::playlist_update& e) {
  check_envelope(e);
  KRYTEN_FUZZ_CHECK(checked_payload(e).is_object());
  touch(e.action);
  touch(e.uid);
}

bool same_envelope(const event_envelope& a, const event_envelope& b) {
  return a.event_name == b.event_name && a.channel == b.channel && a.domain == b.domain &&
         a.timestamp == b.timestamp && a.correlation_id == b.correlation_id &&
         a.payload_json == b.payload_json;
}

// The handler-facing wrapper: kryten::event over the owned variant.
template <class T>
void check_event_ref(const kryten::event& ev, const any_event& owned) {
  const bool holds = std::holds_alternative<T>(owned);
  KRYTEN_FUZZ_CHECK(ev.is<T>() == holds);
  KRYTEN_FUZZ_CHECK((ev.get_if<T>() != nullptr) == holds);
  if (holds)
    KRYTEN_FUZZ_CHECK(ev.get_if<T>() == &std::get<T>(owned));
}

void check_event(const any_event& owned) {
  std::visit([](const auto& typed) { check_typed(typed); }, owned);
  const kryten::event ev(owned);
  check_event_ref<kryten::raw_event>(ev, owned);
  check_event_ref<kryten::chat_message>(ev, owned);
  check_event_ref<kryten::user_join>(ev, owned);
  check_event_ref<kryten::user_leave>(ev, owned);
  check_event_ref<kryten::change_media>(ev, owned);
  check_event_ref<kryten::playlist_update>(ev, owned);
  KRYTEN_FUZZ_CHECK(&ev.envelope() == &kryten::envelope_of(ev));
  ev.visit([](const auto& typed) { touch(typed.event_name); });
  const any_event copy = ev.copy();
  KRYTEN_FUZZ_CHECK(copy.index() == owned.index());
  KRYTEN_FUZZ_CHECK(same_envelope(kryten::envelope_of(kryten::event(copy)), ev.envelope()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Warm decoders, as in the runtime (one per thread, buffers reused).
  static kryten::event_decoder decoder;
  static kryten::event_decoder second;
  // A small limit: exercises too_large next to every other verdict.
  static kryten::event_decoder small(64);
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  any_event out;
  const decode_error error = decoder.decode(body, out);
  touch(std::string(kryten::to_string(error)));

  event_envelope envelope;
  envelope.subject = "kryten.events.cytube.fuzz.x";
  KRYTEN_FUZZ_CHECK(second.decode_envelope(body, envelope) == error);
  KRYTEN_FUZZ_CHECK(envelope.subject == "kryten.events.cytube.fuzz.x");

  event_envelope limited;
  const decode_error small_error = small.decode_envelope(body, limited);
  if (size > 64)
    KRYTEN_FUZZ_CHECK(small_error == decode_error::too_large);
  else
    KRYTEN_FUZZ_CHECK(small_error == error);

  if (error != decode_error::none)
    return 0;
  check_event(out);
  const any_event typed = second.to_typed(std::move(envelope));
  KRYTEN_FUZZ_CHECK(typed.index() == out.index());
  KRYTEN_FUZZ_CHECK(same_envelope(kryten::envelope_of(kryten::event(typed)),
                                  kryten::envelope_of(kryten::event(out))));
  return 0;
}
