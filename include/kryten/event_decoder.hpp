// Decoding RawEvents off the bus with simdjson's on-demand API (no DOM): the
// hot path of every service. One decoder per thread; it reuses its buffers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "kryten/events.hpp"

namespace kryten {

/// Why a message on an event subject was skipped.
enum class decode_error {
  none,
  invalid_json,      // not JSON at all, truncated, invalid UTF-8, too deep
  not_an_object,     // JSON, but not an object (array, string, number, ...)
  bad_event_name,    // event_name missing, not a string, or empty
  wrong_field_type,  // channel/domain/timestamp/correlation_id present but not a string
  too_large,         // over the decoder's size limit
};

/// A short, stable name for logs and metric labels ("invalid_json", ...).
const char* to_string(decode_error e);

class event_decoder {
public:
  /// Messages longer than max_bytes are rejected as too_large without parsing.
  explicit event_decoder(std::size_t max_bytes = 8u << 20);
  ~event_decoder();
  event_decoder(const event_decoder&) = delete;
  event_decoder& operator=(const event_decoder&) = delete;

  /// Decodes the RawEvent envelope of `body` into `out` (every field of `out`
  /// is overwritten; subject and received_ns are left to the caller).
  decode_error decode_envelope(std::string_view body, event_envelope& out);

  /// The typed view PROTOCOL.md §1 defines for the (lowercased) event name, or
  /// raw_event when there is none or the payload does not fit it.
  any_event to_typed(event_envelope&& envelope);

  /// decode_envelope followed by to_typed. On error `out` is unspecified.
  decode_error decode(std::string_view body, any_event& out);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kryten
