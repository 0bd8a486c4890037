// An answer of the HTTP probe and its bytes on the wire (http_server.hpp).
// Every answer closes the connection (`Connection: close`: one request per
// connection) and must not be cached (`Cache-Control: no-store`).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kryten::detail {

struct http_response {
  int status = 200;
  std::string content_type;  // none when empty
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more fields, e.g. Allow
};

/// "OK", "Not Found", ...; "Unknown" for a status it does not know.
const char* reason_phrase(int status);

/// The status line, the fields (Content-Type, Content-Length, Cache-Control,
/// Connection, then `headers`), the empty line and, unless `head_only` (an
/// answer to HEAD), the body.
std::string serialize(const http_response& response, bool head_only = false);

/// {"status": "error", "error": message} as application/json.
http_response error_response(int status, const std::string& message);

}  // namespace kryten::detail
