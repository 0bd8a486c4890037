#include "actors/http_request_parser.hpp"

#include <cstring>

namespace kryten::detail {

namespace {

bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size())
    return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[i]) != prefix[i])
      return false;
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

enum class line_result { ok, incomplete, bare_cr };

/// The line starting at `pos`: its text without CR LF, and where the next
/// one starts.
line_result next_line(std::string_view bytes, std::size_t pos, std::string_view& line,
                      std::size_t& next) {
  auto lf = bytes.find('\n', pos);
  auto end = lf == std::string_view::npos ? bytes.size() : lf;
  auto text_end = end;
  if (lf != std::string_view::npos && text_end > pos && bytes[text_end - 1] == '\r')
    --text_end;
  // A CR anywhere but right before the LF is a bare CR (a CR at the very end
  // of what arrived may still be followed by its LF).
  for (auto i = pos; i < text_end; ++i)
    if (bytes[i] == '\r' && !(lf == std::string_view::npos && i + 1 == bytes.size()))
      return line_result::bare_cr;
  if (lf == std::string_view::npos)
    return line_result::incomplete;
  line = bytes.substr(pos, text_end - pos);
  next = lf + 1;
  return line_result::ok;
}

/// A Content-Length value: 1*DIGIT, or a list of equal ones ("42, 42").
std::optional<std::uint64_t> parse_content_length(std::string_view v) {
  std::optional<std::uint64_t> out;
  while (true) {
    auto comma = v.find(',');
    auto item = trim_ows(v.substr(0, comma));
    if (item.empty() || item.size() > 18)
      return std::nullopt;
    std::uint64_t n = 0;
    for (char c : item) {
      if (!is_digit(c))
        return std::nullopt;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (out && *out != n)
      return std::nullopt;
    out = n;
    if (comma == std::string_view::npos)
      return out;
    v.remove_prefix(comma + 1);
  }
}

/// The method, target and version of a complete request line.
bool parse_request_line(std::string_view line, request_head& r) {
  auto fail = [&](int status, const char* why) {
    r.state = parse_state::error;
    r.error_status = status;
    r.error = why;
    return false;
  };
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0)
    return fail(400, "malformed request line");
  auto method = line.substr(0, sp1);
  for (unsigned char c : method)
    if (!is_tchar(c))
      return fail(400, "malformed method");
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos)
    return fail(400, "malformed request line");
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty())
    return fail(400, "empty request target");
  for (unsigned char c : target)
    if (c <= 0x20 || c == 0x7f)
      return fail(400, "malformed request target");
  auto version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5])
      || version[6] != '.' || !is_digit(version[7]))
    return fail(400, "malformed HTTP version");
  if (version[5] != '1')
    return fail(505, "HTTP version not supported");
  r.minor_version = version[7] - '0';
  r.method = std::string(method);
  r.target = std::string(target);

  // origin-form ("/health?verbose") and absolute-form ("http://h/health")
  // give a path and a query; authority-form and "*" are kept as the path,
  // which matches no route.
  std::string_view raw_path = target;
  bool has_path = target.front() == '/';
  if (!has_path) {
    std::size_t scheme = iequals_prefix(target, "http://")    ? 7
                         : iequals_prefix(target, "https://") ? 8
                                                              : 0;
    if (scheme > 0) {
      has_path = true;
      auto start = target.find_first_of("/?", scheme);
      raw_path = start == std::string_view::npos ? std::string_view{} : target.substr(start);
    }
  }
  if (has_path) {
    auto q = raw_path.find('?');
    if (q != std::string_view::npos) {
      r.query = std::string(raw_path.substr(q + 1));
      raw_path = raw_path.substr(0, q);
    }
    if (raw_path.empty())
      raw_path = "/";
  }
  r.path = percent_decode(raw_path);
  return true;
}

/// Checks the request line that has not fully arrived: a first word that
/// cannot be a method is an error already.
bool check_partial_request_line(std::string_view partial, request_head& r) {
  for (unsigned char c : partial) {
    if (c == ' ')
      return true;
    if (!is_tchar(c) && c != '\r') {
      r.state = parse_state::error;
      r.error_status = 400;
      r.error = "malformed method";
      return false;
    }
  }
  return true;
}

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

const std::string* request_head::header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers)
    if (name == lowercase_name)
      return &value;
  return nullptr;
}

bool request_head::has_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto item = q.substr(0, amp);
    if (percent_decode(item.substr(0, item.find('='))) == name)
      return true;
    if (amp == std::string_view::npos)
      break;
    q.remove_prefix(amp + 1);
  }
  return false;
}

request_head parse_request_head(std::string_view bytes, const request_head_limits& limits) {
  request_head r;
  auto fail = [&](int status, const char* why) {
    r = request_head{};
    r.state = parse_state::error;
    r.error_status = status;
    r.error = why;
    return r;
  };
  auto incomplete = [&] {
    if (bytes.size() >= limits.max_head_bytes)
      return fail(431, "request head too large");
    r = request_head{};
    r.state = parse_state::incomplete;
    return r;
  };

  // Empty lines before the request line are skipped (RFC 9112 §2.2).
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes[pos] == '\n')
      ++pos;
    else if (bytes[pos] == '\r' && pos + 1 < bytes.size() && bytes[pos + 1] == '\n')
      pos += 2;
    else
      break;
  }

  std::string_view line;
  std::size_t next = 0;
  switch (next_line(bytes, pos, line, next)) {
    case line_result::bare_cr:
      return fail(400, "bare CR in the request line");
    case line_result::incomplete:
      if (!check_partial_request_line(bytes.substr(pos), r))
        return r;
      return incomplete();
    case line_result::ok:
      break;
  }
  if (next > limits.max_head_bytes)
    return fail(431, "request head too large");
  if (!parse_request_line(line, r))
    return r;
  pos = next;

  bool first_field = true;
  while (true) {
    switch (next_line(bytes, pos, line, next)) {
      case line_result::bare_cr:
        return fail(400, "bare CR in a header field");
      case line_result::incomplete:
        return incomplete();
      case line_result::ok:
        break;
    }
    if (next > limits.max_head_bytes)
      return fail(431, "request head too large");
    pos = next;
    if (line.empty())
      break;
    if (line.front() == ' ' || line.front() == '\t')
      return fail(400, first_field ? "whitespace after the request line"
                                   : "obsolete line folding in a header field");
    first_field = false;
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return fail(400, "header field without a colon");
    auto name = line.substr(0, colon);
    if (name.empty())
      return fail(400, "empty header field name");
    for (unsigned char c : name)
      if (!is_tchar(c))
        return fail(400, c == ' ' || c == '\t' ? "whitespace before a header field's colon"
                                               : "malformed header field name");
    auto value = trim_ows(line.substr(colon + 1));
    for (unsigned char c : value)
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        return fail(400, "control character in a header field value");
    if (r.headers.size() >= limits.max_headers)
      return fail(431, "too many header fields");
    std::string lname(name);
    for (auto& c : lname)
      c = lower(c);
    if (lname == "content-length") {
      auto n = parse_content_length(value);
      if (!n || (r.content_length && *r.content_length != *n))
        return fail(400, "bad Content-Length");
      r.content_length = n;
    } else if (lname == "transfer-encoding") {
      r.transfer_encoding = true;
    }
    r.headers.emplace_back(std::move(lname), std::string(value));
  }
  if (r.content_length && r.transfer_encoding)
    return fail(400, "both Content-Length and Transfer-Encoding");
  r.head_bytes = pos;
  r.state = parse_state::complete;
  return r;
}

}  // namespace kryten::detail
