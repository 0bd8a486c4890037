// RawEvent decoding with simdjson's on-demand API.
//
// On-demand only checks what is read: a skipped value is bracket-counted, not
// parsed. So every value of the body is walked and read once (strings
// unescaped, numbers and literals parsed), which validates the whole document
// in the same single pass that extracts the envelope. Stage 1 (run by
// iterate()) has already checked UTF-8 and string termination for all bytes.
#include "kryten/event_decoder.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kryten {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;
using simdjson::SUCCESS;

// Bounds the recursion of the validating walk (simdjson's own default limit).
constexpr std::size_t max_depth = simdjson::DEFAULT_MAX_DEPTH;

// -- input buffer -----------------------------------------------------------

// simdjson reads up to SIMDJSON_PADDING bytes past the input; the buffer is
// kept between calls so a warm decoder does not allocate for it.
class padded_buffer {
public:
  void assign(std::string_view text) {
    const std::size_t needed = text.size() + simdjson::SIMDJSON_PADDING;
    if (needed > capacity_) {
      capacity_ = std::max(needed, capacity_ * 2);
      data_.reset(new char[capacity_]);
    }
    if (!text.empty())
      std::memcpy(data_.get(), text.data(), text.size());
    // Padding content does not matter to simdjson; zeroing keeps reads defined.
    std::memset(data_.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
    size_ = text.size();
  }
  const char* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }

private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// -- validation -------------------------------------------------------------

error_code validate(od::value& value, std::size_t depth);

error_code validate_array(od::array& array, std::size_t depth) {
  for (auto element : array) {
    od::value value;
    if (auto error = element.get(value))
      return error;
    if (auto error = validate(value, depth + 1))
      return error;
  }
  return SUCCESS;
}

error_code validate_object(od::object& object, std::size_t depth) {
  for (auto field : object) {
    std::string_view key;  // unescaping validates the key's escapes
    od::value value;
    if (auto error = field.unescaped_key().get(key))
      return error;
    if (auto error = field.value().get(value))
      return error;
    if (auto error = validate(value, depth + 1))
      return error;
  }
  return SUCCESS;
}

// "nullx" is typed null by its first letter but is_null() says false.
error_code expect_null(simdjson::simdjson_result<bool> is_null) {
  bool null = false;
  if (auto error = std::move(is_null).get(null))
    return error;
  return null ? SUCCESS : simdjson::INCORRECT_TYPE;
}

// Reads a scalar fully. get_double (not get_number) because it also takes
// integers beyond 64 bits, as nlohmann does, and it advances past the value.
template <class Value>
error_code validate_scalar(Value& value, od::json_type type) {
  switch (type) {
    case od::json_type::number: {
      double number = 0;
      return value.get_double().get(number);
    }
    case od::json_type::string: {
      std::string_view text;
      return value.get_string().get(text);
    }
    case od::json_type::boolean: {
      bool flag = false;
      return value.get_bool().get(flag);
    }
    case od::json_type::null:
      return expect_null(value.is_null());
    default:
      return simdjson::INCORRECT_TYPE;
  }
}

error_code validate(od::value& value, std::size_t depth) {
  if (depth > max_depth)
    return simdjson::DEPTH_ERROR;
  od::json_type type;
  if (auto error = value.type().get(type))
    return error;
  if (type == od::json_type::array) {
    od::array array;
    if (auto error = value.get_array().get(array))
      return error;
    return validate_array(array, depth);
  }
  if (type == od::json_type::object) {
    od::object object;
    if (auto error = value.get_object().get(object))
      return error;
    return validate_object(object, depth);
  }
  return validate_scalar(value, type);
}

// After the root value, anything but the end of input is trailing garbage
// (current_location() is OUT_OF_BOUNDS exactly at the end).
error_code expect_end(od::document& doc) {
  const char* location = nullptr;
  return doc.current_location().get(location) == SUCCESS ? simdjson::TRAILING_CONTENT
                                                          : SUCCESS;
}

// A root that is not an object: only tells valid JSON from invalid JSON.
// Root scalar getters check for trailing content themselves.
error_code validate_root(od::document& doc, od::json_type type) {
  if (type == od::json_type::array) {
    od::array array;
    if (auto error = doc.get_array().get(array))
      return error;
    if (auto error = validate_array(array, 1))
      return error;
    return expect_end(doc);
  }
  if (type == od::json_type::object)
    return simdjson::INCORRECT_TYPE;  // not reached: objects are decoded
  return validate_scalar(doc, type);
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// -- envelope ---------------------------------------------------------------

// Reads the RawEvent fields of the root object into `out`, validating every
// value. Semantic problems are noted, not returned: invalid JSON anywhere in
// the body wins over them.
class envelope_reader {
public:
  envelope_reader(od::document& doc, event_envelope& out) : doc_(doc), out_(out) {
    out_.event_name.clear();
    out_.channel.clear();
    out_.domain.clear();
    out_.timestamp.clear();
    out_.correlation_id.clear();
    out_.payload_json.assign("null");
  }

  error_code read(od::object& root) {
    for (auto field : root) {
      std::string_view key;
      od::value value;
      if (auto error = field.unescaped_key().get(key))
        return error;
      if (auto error = field.value().get(value))
        return error;
      if (auto error = read_field(key, value))
        return error;
    }
    return SUCCESS;
  }

  decode_error verdict() const {
    if (bad_event_name_ || !has_event_name_)
      return decode_error::bad_event_name;
    return wrong_field_type_ ? decode_error::wrong_field_type : decode_error::none;
  }

private:
  error_code read_field(std::string_view key, od::value& value) {
    if (key == "event_name")
      return read_event_name(value);
    if (key == "payload")
      return read_payload(value);
    if (key == "channel")
      return read_text(value, out_.channel);
    if (key == "domain")
      return read_text(value, out_.domain);
    if (key == "timestamp")
      return read_text(value, out_.timestamp);
    if (key == "correlation_id")
      return read_text(value, out_.correlation_id);
    return validate(value, 2);  // unknown fields are ignored, but must be valid
  }

  error_code read_event_name(od::value& value) {
    od::json_type type;
    if (auto error = value.type().get(type))
      return error;
    if (type != od::json_type::string) {
      bad_event_name_ = true;
      return validate(value, 2);
    }
    std::string_view name;
    if (auto error = value.get_string().get(name))
      return error;
    bad_event_name_ = bad_event_name_ || name.empty();
    has_event_name_ = true;
    out_.event_name.assign(name);
    return SUCCESS;
  }

  // A string, or null meaning "".
  error_code read_text(od::value& value, std::string& out) {
    od::json_type type;
    if (auto error = value.type().get(type))
      return error;
    if (type == od::json_type::null) {
      out.clear();
      return expect_null(value.is_null());
    }
    if (type != od::json_type::string) {
      wrong_field_type_ = true;
      return validate(value, 2);
    }
    std::string_view text;
    if (auto error = value.get_string().get(text))
      return error;
    out.assign(text);
    return SUCCESS;
  }

  // simdjson 3.0.1 has no value::raw_json(): the text runs from the value's
  // first token to the next token after the walk (',' or '}'), minus the
  // whitespace in between.
  error_code read_payload(od::value& value) {
    const char* begin = value.raw_json_token().data();
    if (auto error = validate(value, 2))
      return error;
    const char* end = nullptr;
    if (auto error = doc_.current_location().get(end))
      return error;
    while (end > begin && is_json_space(end[-1]))
      --end;
    out_.payload_json.assign(begin, static_cast<std::size_t>(end - begin));
    return SUCCESS;
  }

  od::document& doc_;
  event_envelope& out_;
  bool has_event_name_ = false;
  bool bad_event_name_ = false;
  bool wrong_field_type_ = false;
};

// -- payload fields for typed views -----------------------------------------

enum class found { absent, ok, bad };

// Payload fields: absent or null -> absent; the expected type -> ok; else bad.
template <class T>
struct slot {
  found state = found::absent;
  T value{};
};

// The value's type, or nullopt when it cannot be read.
std::optional<od::json_type> type_of(od::value& value) {
  od::json_type type;
  if (value.type().get(type) != SUCCESS)
    return std::nullopt;
  return type;
}

found get(od::value& value, std::string_view& out) {
  const auto type = type_of(value);
  if (type == od::json_type::null)
    return found::absent;
  if (type != od::json_type::string)
    return found::bad;
  return value.get_string().get(out) == SUCCESS ? found::ok : found::bad;
}

found get(od::value& value, bool& out) {
  const auto type = type_of(value);
  if (type == od::json_type::null)
    return found::absent;
  if (type != od::json_type::boolean)
    return found::bad;
  return value.get_bool().get(out) == SUCCESS ? found::ok : found::bad;
}

found get(od::value& value, double& out) {
  const auto type = type_of(value);
  if (type == od::json_type::null)
    return found::absent;
  if (type != od::json_type::number)
    return found::bad;
  return value.get_double().get(out) == SUCCESS ? found::ok : found::bad;
}

// Any JSON number that fits: doubles are truncated toward zero (CyTube sends
// some ranks and times as floats).
found get(od::value& value, std::int64_t& out) {
  const auto type = type_of(value);
  if (type == od::json_type::null)
    return found::absent;
  od::number number;
  if (type != od::json_type::number || value.get_number().get(number) != SUCCESS)
    return found::bad;
  switch (number.get_number_type()) {
    case od::number_type::signed_integer:
      out = number.get_int64();
      return found::ok;
    case od::number_type::unsigned_integer:
      return found::bad;  // only values >= 2^63 are typed unsigned
    case od::number_type::floating_point_number: {
      const double real = number.get_double();
      if (!(real >= -9223372036854775808.0 && real < 9223372036854775808.0))
        return found::bad;
      out = static_cast<std::int64_t>(real);
      return found::ok;
    }
  }
  return found::bad;
}

template <class T>
void fill(slot<T>& s, od::value& value) {
  s.state = get(value, s.value);
}

template <class T, class U>
bool required(const slot<T>& s, U& out) {
  if (s.state != found::ok)
    return false;
  out = U(s.value);
  return true;
}

template <class T, class U>
bool optional(const slot<T>& s, U& out) {
  if (s.state == found::ok)
    out = U(s.value);
  return s.state != found::bad;
}

// Calls on_field(key, value) for every field; false on a parse error or when
// on_field returns false.
template <class F>
bool for_each_field(od::object& object, F&& on_field) {
  for (auto field : object) {
    std::string_view key;
    od::value value;
    if (field.unescaped_key().get(key) != SUCCESS || field.value().get(value) != SUCCESS)
      return false;
    if (!on_field(key, value))
      return false;
  }
  return true;
}

// Runs on_field over `value`'s fields when it is an object; otherwise does
// nothing and reports whether it was one.
template <class F>
bool if_object(od::value& value, bool& was_object, F&& on_field) {
  was_object = type_of(value) == od::json_type::object;
  if (!was_object)
    return true;
  od::object object;
  return value.get_object().get(object) == SUCCESS && for_each_field(object, on_field);
}

// -- ISO 8601 timestamps ----------------------------------------------------

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool is_leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int y, int m) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

class text_cursor {
public:
  explicit text_cursor(std::string_view text) : text_(text) {}
  bool at_end() const { return pos_ == text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  bool skip(char c) {
    if (peek() != c)
      return false;
    ++pos_;
    return true;
  }
  bool is_digit() const { return peek() >= '0' && peek() <= '9'; }
  // Exactly `count` digits.
  bool number(int count, int& out) {
    out = 0;
    for (int i = 0; i < count; ++i, ++pos_) {
      if (!is_digit())
        return false;
      out = out * 10 + (text_[pos_] - '0');
    }
    return true;
  }
  // Digits after the decimal point as milliseconds (truncated).
  bool fraction_ms(int& ms) {
    if (!is_digit())
      return false;
    ms = 0;
    for (int scale = 100; is_digit(); ++pos_, scale /= 10)
      ms += (text_[pos_] - '0') * scale;
    return true;
  }

private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// "Z", "+HH:MM", "+HHMM", "+HH" (or '-') -> offset in minutes east of UTC;
// no zone at all means UTC.
bool parse_zone(text_cursor& in, int& minutes) {
  minutes = 0;
  if (in.at_end() || in.skip('Z') || in.skip('z'))
    return true;
  const int sign = in.skip('+') ? 1 : in.skip('-') ? -1 : 0;
  int hours = 0, mins = 0;
  if (sign == 0 || !in.number(2, hours))
    return false;
  if (!in.at_end()) {
    in.skip(':');  // optional: "+HHMM" is accepted too
    if (!in.number(2, mins))
      return false;
  }
  minutes = sign * (hours * 60 + mins);
  return hours < 24 && mins < 60;
}

// "2024-01-15T10:30:00.123456Z" (also "+00:00" or no zone) -> epoch ms.
std::optional<std::int64_t> iso8601_ms(std::string_view text) {
  text_cursor in(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0, zone = 0;
  const bool shape = in.number(4, y) && in.skip('-') && in.number(2, mo) && in.skip('-') &&
                     in.number(2, d) && (in.skip('T') || in.skip('t') || in.skip(' ')) &&
                     in.number(2, h) && in.skip(':') && in.number(2, mi) && in.skip(':') &&
                     in.number(2, s) && (!in.skip('.') || in.fraction_ms(ms)) &&
                     parse_zone(in, zone) && in.at_end();
  if (!shape || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
      s > 60)
    return std::nullopt;
  const std::int64_t seconds =
      days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - zone * 60;
  return seconds * 1000 + ms;
}

// payload.time when it is a usable number, else the envelope timestamp, else 0.
std::int64_t event_time_ms(const slot<std::int64_t>& time, std::string_view timestamp) {
  if (time.state == found::ok)
    return time.value;
  return iso8601_ms(timestamp).value_or(0);
}

// -- typed views ------------------------------------------------------------
// Each reads the payload object once, in any field order, then checks.

bool read_view(od::object& payload, const event_envelope& env, chat_message& out) {
  bool user_is_object = false;
  slot<std::string_view> user_name, username, msg, message;
  slot<std::int64_t> user_rank, rank, time;
  slot<bool> shadow;
  const bool parsed = for_each_field(payload, [&](std::string_view key, od::value& v) {
    if (key == "user") {
      return if_object(v, user_is_object, [&](std::string_view k, od::value& uv) {
        if (k == "name")
          fill(user_name, uv);
        else if (k == "rank")
          fill(user_rank, uv);
        return true;
      });
    }
    if (key == "meta") {
      bool meta_is_object = false;
      return if_object(v, meta_is_object, [&](std::string_view k, od::value& mv) {
        if (k == "shadow")
          fill(shadow, mv);
        return true;
      });
    }
    if (key == "username")
      fill(username, v);
    else if (key == "rank")
      fill(rank, v);
    else if (key == "msg")
      fill(msg, v);
    else if (key == "message")
      fill(message, v);
    else if (key == "time")
      fill(time, v);
    return true;
  });
  const auto& text = msg.state == found::absent ? message : msg;
  out.time_ms = event_time_ms(time, env.timestamp);
  return parsed && required(user_is_object ? user_name : username, out.username) &&
         optional(user_is_object ? user_rank : rank, out.rank) &&
         required(text, out.message) && optional(shadow, out.shadow);
}

bool read_view(od::object& payload, const event_envelope& env, user_join& out) {
  slot<std::string_view> name;
  slot<std::int64_t> rank, time;
  const bool parsed = for_each_field(payload, [&](std::string_view key, od::value& v) {
    if (key == "name")
      fill(name, v);
    else if (key == "rank")
      fill(rank, v);
    else if (key == "time")
      fill(time, v);
    return true;
  });
  out.time_ms = event_time_ms(time, env.timestamp);
  return parsed && required(name, out.username) && optional(rank, out.rank);
}

bool read_view(od::object& payload, const event_envelope& env, user_leave& out) {
  slot<std::string_view> name;
  slot<std::int64_t> time;
  const bool parsed = for_each_field(payload, [&](std::string_view key, od::value& v) {
    if (key == "name")
      fill(name, v);
    else if (key == "time")
      fill(time, v);
    return true;
  });
  out.time_ms = event_time_ms(time, env.timestamp);
  return parsed && required(name, out.username);
}

bool read_view(od::object& payload, const event_envelope&, change_media& out) {
  slot<std::string_view> type, id, title;
  slot<double> seconds;
  slot<std::int64_t> uid;
  const bool parsed = for_each_field(payload, [&](std::string_view key, od::value& v) {
    if (key == "type")
      fill(type, v);
    else if (key == "id")
      fill(id, v);
    else if (key == "title")
      fill(title, v);
    else if (key == "seconds")
      fill(seconds, v);
    else if (key == "uid")
      fill(uid, v);
    return true;
  });
  return parsed && required(type, out.media_type) && required(id, out.media_id) &&
         optional(title, out.title) && optional(seconds, out.duration) &&
         optional(uid, out.uid);
}

bool read_view(od::object& payload, const event_envelope&, playlist_update& out) {
  slot<std::string_view> action;
  slot<std::int64_t> uid;
  const bool parsed = for_each_field(payload, [&](std::string_view key, od::value& v) {
    if (key == "action")
      fill(action, v);
    else if (key == "uid")
      fill(uid, v);
    return true;
  });
  return parsed && required(action, out.action) && optional(uid, out.uid);
}

// ASCII case-insensitive equality against an already lowercase name; avoids
// allocating a lowercased copy per event.
bool equals_lower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size())
    return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != lower[i])
      return false;
  }
  return true;
}

}  // namespace

// -- event_decoder ----------------------------------------------------------

struct event_decoder::impl {
  explicit impl(std::size_t max) : max_bytes(max) {}

  // Copies `text` into the padded buffer and starts an on-demand parse.
  error_code iterate(std::string_view text, od::document& doc) {
    buffer.assign(text);
    return parser.iterate(buffer.data(), buffer.size(), buffer.capacity()).get(doc);
  }

  // The typed view T, or raw_event when the payload does not fit it.
  template <class T>
  any_event typed_or_raw(event_envelope&& envelope) {
    T typed;
    od::document doc;
    od::object payload;
    if (iterate(envelope.payload_json, doc) != SUCCESS ||
        doc.get_object().get(payload) != SUCCESS || !read_view(payload, envelope, typed))
      return raw_event{std::move(envelope)};
    static_cast<event_envelope&>(typed) = std::move(envelope);
    return any_event(std::in_place_type<T>, std::move(typed));
  }

  std::size_t max_bytes;
  od::parser parser;
  padded_buffer buffer;
};

event_decoder::event_decoder(std::size_t max_bytes) : impl_(std::make_unique<impl>(max_bytes)) {}

event_decoder::~event_decoder() = default;

decode_error event_decoder::decode_envelope(std::string_view body, event_envelope& out) {
  if (body.size() > impl_->max_bytes)
    return decode_error::too_large;
  od::document doc;
  od::json_type type;
  if (impl_->iterate(body, doc) != SUCCESS || doc.type().get(type) != SUCCESS)
    return decode_error::invalid_json;
  if (type != od::json_type::object)
    return validate_root(doc, type) == SUCCESS ? decode_error::not_an_object
                                               : decode_error::invalid_json;
  od::object root;
  if (doc.get_object().get(root) != SUCCESS)
    return decode_error::invalid_json;
  envelope_reader reader(doc, out);
  if (reader.read(root) != SUCCESS || expect_end(doc) != SUCCESS)
    return decode_error::invalid_json;
  return reader.verdict();
}

any_event event_decoder::to_typed(event_envelope&& envelope) {
  const std::string_view name = envelope.event_name;
  if (equals_lower(name, "chatmsg") || equals_lower(name, "pm"))
    return impl_->typed_or_raw<chat_message>(std::move(envelope));
  if (equals_lower(name, "adduser"))
    return impl_->typed_or_raw<user_join>(std::move(envelope));
  if (equals_lower(name, "userleave"))
    return impl_->typed_or_raw<user_leave>(std::move(envelope));
  if (equals_lower(name, "changemedia"))
    return impl_->typed_or_raw<change_media>(std::move(envelope));
  if (equals_lower(name, "playlist"))
    return impl_->typed_or_raw<playlist_update>(std::move(envelope));
  return raw_event{std::move(envelope)};
}

decode_error event_decoder::decode(std::string_view body, any_event& out) {
  event_envelope envelope;
  const decode_error error = decode_envelope(body, envelope);
  if (error == decode_error::none)
    out = to_typed(std::move(envelope));
  return error;
}

const char* to_string(decode_error e) {
  switch (e) {
    case decode_error::none: return "none";
    case decode_error::invalid_json: return "invalid_json";
    case decode_error::not_an_object: return "not_an_object";
    case decode_error::bad_event_name: return "bad_event_name";
    case decode_error::wrong_field_type: return "wrong_field_type";
    case decode_error::too_large: return "too_large";
  }
  return "unknown";
}

}  // namespace kryten
