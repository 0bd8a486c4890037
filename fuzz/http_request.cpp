// Fuzz target: kryten::detail::parse_request_head (actors/http_request_parser.cpp),
// the first thing the HTTP probe does with bytes from anyone who can reach its port.
//
// The connection loop parses again each time more bytes arrive, so besides
// "never crashes, never reads past the input" the result must not depend on
// how the bytes were split: a prefix of a complete head is incomplete, and a
// prefix that is already complete gives the same head as the whole. Whatever
// comes in, the answer is a complete head inside the limits, "send more", or
// an error with a 4xx/505 status.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "actors/http_request_parser.hpp"
#include "fuzz_check.hpp"

namespace {

using kryten::detail::parse_request_head;
using kryten::detail::parse_state;
using kryten::detail::request_head;
using kryten::detail::request_head_limits;

volatile std::size_t sink;

bool is_token_char(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
    return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

void check_error(const request_head& r) {
  KRYTEN_FUZZ_CHECK(r.error_status == 400 || r.error_status == 431 || r.error_status == 505);
  KRYTEN_FUZZ_CHECK(!r.error.empty());
  KRYTEN_FUZZ_CHECK(r.head_bytes == 0 && r.headers.empty());
}

void check_complete(const request_head& r, std::string_view bytes, const request_head_limits& limits) {
  KRYTEN_FUZZ_CHECK(r.head_bytes > 0 && r.head_bytes <= bytes.size());
  KRYTEN_FUZZ_CHECK(r.head_bytes <= limits.max_head_bytes);
  KRYTEN_FUZZ_CHECK(bytes[r.head_bytes - 1] == '\n');
  KRYTEN_FUZZ_CHECK(!r.method.empty() && !r.target.empty());
  KRYTEN_FUZZ_CHECK(r.minor_version >= 0 && r.minor_version <= 9);
  KRYTEN_FUZZ_CHECK(r.headers.size() <= limits.max_headers);
  KRYTEN_FUZZ_CHECK(!(r.content_length && r.transfer_encoding));
  if (r.target.front() == '/')
    KRYTEN_FUZZ_CHECK(!r.path.empty() && r.path.size() <= r.target.size());
  for (const auto& [name, value] : r.headers) {
    KRYTEN_FUZZ_CHECK(!name.empty());
    for (unsigned char c : name)
      KRYTEN_FUZZ_CHECK(is_token_char(c));  // lowercased token characters
    for (unsigned char c : value)
      KRYTEN_FUZZ_CHECK(c != '\r' && c != '\n' && c != 0);
    KRYTEN_FUZZ_CHECK(r.header(name) != nullptr);
  }
  sink = sink + r.has_param("verbose") + r.query.size();
}

bool same_head(const request_head& a, const request_head& b) {
  return a.state == b.state && a.head_bytes == b.head_bytes && a.method == b.method
         && a.target == b.target && a.path == b.path && a.query == b.query
         && a.minor_version == b.minor_version && a.headers == b.headers
         && a.content_length == b.content_length && a.transfer_encoding == b.transfer_encoding;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first byte picks the split point and small limits, so both the limits
  // and the reparse-on-more-bytes path are reached with short inputs.
  if (size < 1)
    return 0;
  const unsigned char control = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  request_head_limits limits;
  if (control & 0x80) {
    limits.max_head_bytes = 64 + (control & 0x3f) * 4;
    limits.max_headers = control & 0x07;
  }

  const auto whole = parse_request_head(bytes, limits);
  switch (whole.state) {
    case parse_state::error:
      check_error(whole);
      break;
    case parse_state::complete:
      check_complete(whole, bytes, limits);
      break;
    case parse_state::incomplete:
      KRYTEN_FUZZ_CHECK(bytes.size() < limits.max_head_bytes);
      break;
  }

  // The same bytes as they might arrive: the first `split` of them.
  const std::size_t split = bytes.empty() ? 0 : (control * 131u) % bytes.size();
  const auto prefix = parse_request_head(bytes.substr(0, split), limits);
  if (whole.state == parse_state::complete) {
    if (split < whole.head_bytes)
      KRYTEN_FUZZ_CHECK(prefix.state == parse_state::incomplete);
    else
      KRYTEN_FUZZ_CHECK(same_head(prefix, whole));
  }
  if (prefix.state == parse_state::complete)
    KRYTEN_FUZZ_CHECK(same_head(prefix, whole));

  const auto decoded = kryten::detail::percent_decode(bytes);
  KRYTEN_FUZZ_CHECK(decoded.size() <= bytes.size());
  return 0;
}
