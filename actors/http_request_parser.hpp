// The HTTP/1.x request-head parser of the probe (http_server.hpp): the
// request line and the header fields, from the bytes received so far.
//
// parse_request_head is a pure function of its input (no I/O, no globals,
// no exceptions for any input): the connection loop calls it again each time
// more bytes arrive, and it is fuzzed. Whatever the bytes, the result is
// complete, incomplete (send more) or an error with the status to answer:
//
// - 400: a malformed request line, a bare CR, obsolete line folding, a space
//   before a header's colon, a control character in a value, a bad or
//   conflicting Content-Length, Content-Length together with Transfer-Encoding;
// - 431: a head longer than max_head_bytes, or more than max_headers fields;
// - 505: an HTTP version other than 1.x.
//
// Lines end in CRLF or a bare LF; empty lines before the request line are
// skipped. A malformed request line is reported as soon as it can be told
// (a TLS handshake on the plain port gets 400 at once, not at the deadline).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kryten::detail {

struct request_head_limits {
  std::size_t max_head_bytes = 8 * 1024;  // request line, fields and the empty line
  std::size_t max_headers = 100;
};

enum class parse_state { complete, incomplete, error };

struct request_head {
  parse_state state = parse_state::incomplete;
  int error_status = 0;        // when error: 400, 431 or 505
  std::string error;           // when error: why, for the log and the answer
  std::size_t head_bytes = 0;  // when complete: bytes up to and including the empty line

  std::string method;  // as sent (methods are case-sensitive)
  std::string target;  // the request target as sent
  std::string path;    // percent-decoded, without the query ("/health")
  std::string query;   // after the '?' (not decoded), "" when none
  int minor_version = 1;  // HTTP/1.<minor>
  /// Field names lowercased, values without surrounding whitespace, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::uint64_t> content_length;
  bool transfer_encoding = false;  // a Transfer-Encoding field was sent

  /// The first value of a field; `lowercase_name` must be lowercase.
  const std::string* header(std::string_view lowercase_name) const;
  /// Whether the query has parameter `name` ("verbose" in "?verbose",
  /// "?verbose=1", "?a=b&verbose"); keys are percent-decoded.
  bool has_param(std::string_view name) const;
};

/// Parses the head at the start of `bytes` (which may hold more, e.g. a body).
request_head parse_request_head(std::string_view bytes, const request_head_limits& limits = {});

/// %XX sequences decoded (an invalid one is kept as it is); '+' is kept.
std::string percent_decode(std::string_view s);

}  // namespace kryten::detail
