#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "kryten/event_decoder.hpp"
#include "kryten/events.hpp"

using kryten::decode_error;
using kryten::any_event;
using kryten::event;
using kryten::event_decoder;
using kryten::event_envelope;
using nlohmann::json;

namespace Catch {
template <>
struct StringMaker<decode_error> {
  static std::string convert(decode_error e) { return kryten::to_string(e); }
};
}  // namespace Catch

namespace {

constexpr const char* iso_timestamp = "2024-01-15T10:30:00.123456Z";
constexpr std::int64_t iso_timestamp_ms = 1705314600123;

// A RawEvent body as the bridge sends it.
std::string body(const std::string& name, const json& payload,
                 const std::string& timestamp = iso_timestamp) {
  return json{{"event_name", name},      {"payload", payload},
              {"channel", "lounge"},     {"domain", "cytu.be"},
              {"timestamp", timestamp}, {"correlation_id", "c0ffee"}}
      .dump();
}

any_event decode_ok(event_decoder& decoder, const std::string& text) {
  any_event out;
  REQUIRE(decoder.decode(text, out) == decode_error::none);
  return out;
}

decode_error envelope_error(const std::string& text, std::size_t max_bytes = 8u << 20) {
  event_decoder decoder(max_bytes);
  event_envelope out;
  return decoder.decode_envelope(text, out);
}

template <class T>
T as(const any_event& e) {
  REQUIRE(std::holds_alternative<T>(e));
  return std::get<T>(e);
}

}  // namespace

// -- envelope -------------------------------------------------------------

TEST_CASE("decode_envelope: all RawEvent fields", "[events]") {
  event_decoder decoder;
  event_envelope out;
  out.subject = "kept";
  REQUIRE(decoder.decode_envelope(body("chatMsg", {{"msg", "hi"}}), out) == decode_error::none);
  CHECK(out.event_name == "chatMsg");
  CHECK(out.channel == "lounge");
  CHECK(out.domain == "cytu.be");
  CHECK(out.timestamp == iso_timestamp);
  CHECK(out.correlation_id == "c0ffee");
  CHECK(out.payload_json == R"({"msg":"hi"})");
  CHECK(out.subject == "kept");
}

TEST_CASE("decode_envelope: field order, unknown fields, missing and null fields", "[events]") {
  event_decoder decoder;
  event_envelope out;
  const std::string text =
      R"({"extra": {"x": [1, {"y": null}]}, "payload": {"a": 1}, "domain": null,)"
      R"( "channel": "lo\u0075nge", "event_name": "adduser"})";
  REQUIRE(decoder.decode_envelope(text, out) == decode_error::none);
  CHECK(out.event_name == "adduser");
  CHECK(out.channel == "lounge");  // escapes are decoded
  CHECK(out.domain == "");
  CHECK(out.timestamp == "");
  CHECK(out.correlation_id == "");
  CHECK(out.payload_json == R"({"a": 1})");
}

TEST_CASE("decode_envelope: escaped keys and duplicate keys", "[events]") {
  event_decoder decoder;
  event_envelope out;
  REQUIRE(decoder.decode_envelope(R"({"event\u005fname":"x","chan\u006eel":"c"})", out) ==
          decode_error::none);
  CHECK(out.event_name == "x");
  CHECK(out.channel == "c");
  // The last valid occurrence wins; a wrongly typed occurrence is an error.
  REQUIRE(decoder.decode_envelope(R"({"event_name":"a","channel":"c1","event_name":"b",)"
                                  R"("channel":"c2"})",
                                  out) == decode_error::none);
  CHECK(out.event_name == "b");
  CHECK(out.channel == "c2");
  CHECK(decoder.decode_envelope(R"({"event_name":"a","event_name":""})", out) ==
        decode_error::bad_event_name);
  CHECK(decoder.decode_envelope(R"({"event_name":"a","channel":1,"channel":"c"})", out) ==
        decode_error::wrong_field_type);
}

TEST_CASE("decode_envelope: payload keeps its raw JSON text", "[events]") {
  event_decoder decoder;
  event_envelope out;
  auto payload_of = [&](const std::string& text) {
    REQUIRE(decoder.decode_envelope(text, out) == decode_error::none);
    return out.payload_json;
  };
  CHECK(payload_of(R"({"event_name":"x"})") == "null");
  CHECK(payload_of(R"({"event_name":"x","payload":null})") == "null");
  CHECK(payload_of(R"({"event_name":"x","payload": 42 })") == "42");
  CHECK(payload_of(R"({"event_name":"x","payload":-1.5e3,"channel":"c"})") == "-1.5e3");
  CHECK(payload_of(R"({"event_name":"x","payload":"a \"q\""})") == R"("a \"q\"")");
  CHECK(payload_of(R"({"event_name":"x","payload":true})") == "true");
  CHECK(payload_of(R"({"event_name":"x","payload":[]})") == "[]");
  CHECK(payload_of(R"({"event_name":"x","payload":{}})") == "{}");
  CHECK(payload_of("{\"payload\" :\n [1, [2, {\"k\": \"v\"}]] \n\t, \"event_name\":\"x\"}") ==
        R"([1, [2, {"k": "v"}]])");
  CHECK(payload_of("{\"event_name\":\"x\",\"payload\":{\"a\":{}}\r\n}") == R"({"a":{}})");
}

TEST_CASE("decode_envelope: not JSON or truncated is invalid_json", "[events]") {
  CHECK(envelope_error("") == decode_error::invalid_json);
  CHECK(envelope_error("   ") == decode_error::invalid_json);
  CHECK(envelope_error("not json") == decode_error::invalid_json);
  CHECK(envelope_error("{") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x")") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x","payload":{"a":[1,2)") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x","payload":"abc)") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name" "x"})") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x",})") == decode_error::invalid_json);
  CHECK(envelope_error(R"({event_name:"x"})") == decode_error::invalid_json);
}

TEST_CASE("decode_envelope: errors inside skipped or unknown values are found", "[events]") {
  const char* bad_values[] = {
      "[1 2]", "[1,,2]", "{\"a\" 1}", "{\"a\":1,}", "tru", "nul", "nullx", "falsey",
      "01", "1.", "-", "1e", "+1", "NaN", "Infinity", "[1e400]",
      "\"\\q\"", "\"\\u12\"", "\"\\ud800\"", "{\"\\x\":1}", "\"tab\tinside\"", "\"\x01\"",
      "{\"a\":[{\"b\":[tru]}]}", "[\"a\" \"b\"]", "{1:2}",
  };
  for (const char* bad : bad_values) {
    INFO("value " << bad);
    CHECK(envelope_error(std::string(R"({"event_name":"x","extra":)") + bad + "}") ==
          decode_error::invalid_json);
    CHECK(envelope_error(std::string(R"({"event_name":"x","payload":)") + bad + "}") ==
          decode_error::invalid_json);
    CHECK(envelope_error(std::string(R"({"channel":)") + bad + R"(,"event_name":"x"})") ==
          decode_error::invalid_json);
  }
}

TEST_CASE("decode_envelope: big integers and unusual valid values are accepted", "[events]") {
  event_decoder decoder;
  event_envelope out;
  const std::string text =
      R"({"event_name":"x","payload":{"big":123456789012345678901234567890,"e":-0.5E-3,)"
      R"("u":"\u00e9\ud83d\ude00","z":-0}})";
  REQUIRE(decoder.decode_envelope(text, out) == decode_error::none);
  CHECK(out.payload()["e"].get<double>() == Approx(-0.0005));
}

TEST_CASE("decode_envelope: invalid UTF-8 anywhere is invalid_json", "[events]") {
  CHECK(envelope_error("{\"event_name\":\"x\",\"payload\":{\"t\":\"\xff\"}}") ==
        decode_error::invalid_json);
  CHECK(envelope_error("{\"event_name\":\"x\",\"extra\":\"a\xc3\"}") ==
        decode_error::invalid_json);
  CHECK(envelope_error("{\"event_name\":\"x\",\"k\xff\":1}") == decode_error::invalid_json);
  CHECK(envelope_error("{\"event_name\":\"\xed\xa0\x80\"}") == decode_error::invalid_json);
  CHECK(envelope_error("{\"event_name\":\"x\"} \xff") == decode_error::invalid_json);
}

TEST_CASE("decode_envelope: trailing garbage is invalid_json", "[events]") {
  CHECK(envelope_error(R"({"event_name":"x"} x)") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x"}})") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x"} {})") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x"},)") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x"} 1)") == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x"} "s")") == decode_error::invalid_json);
  CHECK(envelope_error("{\"event_name\":\"x\"} \n\t") == decode_error::none);
  CHECK(envelope_error(R"([1] [2])") == decode_error::invalid_json);
  CHECK(envelope_error(R"(1 2)") == decode_error::invalid_json);
}

TEST_CASE("decode_envelope: deep nesting is invalid_json, without crashing", "[events]") {
  const std::string deep(100000, '[');
  CHECK(envelope_error(deep) == decode_error::invalid_json);
  CHECK(envelope_error(deep + std::string(100000, ']')) == decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x","payload":)" + deep + "}") ==
        decode_error::invalid_json);
  CHECK(envelope_error(R"({"event_name":"x","payload":)" + deep + std::string(100000, ']') +
                       "}") == decode_error::invalid_json);
  std::string objects;
  for (int i = 0; i < 5000; ++i)
    objects += R"({"a":)";
  CHECK(envelope_error(R"({"event_name":"x","extra":)" + objects + "1" +
                       std::string(5000, '}') + "}") == decode_error::invalid_json);
  // Moderate nesting is fine.
  CHECK(envelope_error(R"({"event_name":"x","payload":)" + std::string(500, '[') +
                       std::string(500, ']') + "}") == decode_error::none);
}

TEST_CASE("decode_envelope: JSON that is not an object", "[events]") {
  CHECK(envelope_error("[1,2]") == decode_error::not_an_object);
  CHECK(envelope_error("[]") == decode_error::not_an_object);
  CHECK(envelope_error(R"("event")") == decode_error::not_an_object);
  CHECK(envelope_error("42") == decode_error::not_an_object);
  CHECK(envelope_error("-1.5") == decode_error::not_an_object);
  CHECK(envelope_error("true") == decode_error::not_an_object);
  CHECK(envelope_error("null") == decode_error::not_an_object);
  CHECK(envelope_error(" [{\"event_name\":\"x\"}] ") == decode_error::not_an_object);
  // Invalid JSON wins over the wrong root type.
  CHECK(envelope_error("[1 2]") == decode_error::invalid_json);
  CHECK(envelope_error("nul") == decode_error::invalid_json);
  CHECK(envelope_error("\"\\q\"") == decode_error::invalid_json);
}

TEST_CASE("decode_envelope: event_name must be a non-empty string", "[events]") {
  CHECK(envelope_error(R"({"payload":{}})") == decode_error::bad_event_name);
  CHECK(envelope_error(R"({})") == decode_error::bad_event_name);
  CHECK(envelope_error(R"({"event_name":42})") == decode_error::bad_event_name);
  CHECK(envelope_error(R"({"event_name":null})") == decode_error::bad_event_name);
  CHECK(envelope_error(R"({"event_name":["chatMsg"]})") == decode_error::bad_event_name);
  CHECK(envelope_error(R"({"event_name":""})") == decode_error::bad_event_name);
  // Invalid JSON later in the body still wins.
  CHECK(envelope_error(R"({"event_name":42,"payload":[1 2]})") == decode_error::invalid_json);
}

TEST_CASE("decode_envelope: string fields of another type", "[events]") {
  CHECK(envelope_error(R"({"event_name":"x","channel":42})") == decode_error::wrong_field_type);
  CHECK(envelope_error(R"({"event_name":"x","domain":["a"]})") ==
        decode_error::wrong_field_type);
  CHECK(envelope_error(R"({"event_name":"x","timestamp":{"t":1}})") ==
        decode_error::wrong_field_type);
  CHECK(envelope_error(R"({"event_name":"x","correlation_id":true})") ==
        decode_error::wrong_field_type);
  CHECK(envelope_error(R"({"channel":42,"event_name":1})") == decode_error::bad_event_name);
  CHECK(envelope_error(R"({"event_name":"x","channel":42,"extra":"\q"})") ==
        decode_error::invalid_json);
}

TEST_CASE("decode_envelope: size limit", "[events]") {
  // A 1 MiB body decodes under the default limit.
  const std::string big(1u << 20, 'z');
  event_decoder decoder;
  event_envelope out;
  const std::string text = body("chatMsg", {{"username", "a"}, {"msg", big}});
  REQUIRE(text.size() > (1u << 20));
  REQUIRE(decoder.decode_envelope(text, out) == decode_error::none);
  CHECK(out.payload_json == json{{"username", "a"}, {"msg", big}}.dump());
  any_event typed;
  REQUIRE(decoder.decode(text, typed) == decode_error::none);
  CHECK(as<kryten::chat_message>(typed).message == big);

  const std::string small = R"({"event_name":"x"})";
  CHECK(envelope_error(small, small.size()) == decode_error::none);
  CHECK(envelope_error(small, small.size() - 1) == decode_error::too_large);
  CHECK(envelope_error(text, 1u << 20) == decode_error::too_large);
  CHECK(envelope_error("garbage that is too long", 4) == decode_error::too_large);
}

TEST_CASE("decode_envelope: every field is overwritten", "[events]") {
  event_decoder decoder;
  event_envelope out;
  REQUIRE(decoder.decode_envelope(body("chatMsg", {{"msg", "hi"}}), out) == decode_error::none);
  REQUIRE(decoder.decode_envelope(R"({"event_name":"y"})", out) == decode_error::none);
  CHECK(out.event_name == "y");
  CHECK(out.channel.empty());
  CHECK(out.domain.empty());
  CHECK(out.timestamp.empty());
  CHECK(out.correlation_id.empty());
  CHECK(out.payload_json == "null");
}

TEST_CASE("event_decoder: reused across many calls, state does not leak", "[events]") {
  event_decoder decoder;
  const std::string valid = body("chatMsg", {{"username", "alice"}, {"msg", "hi"}});
  const std::string invalid[] = {"{\"event_name\":", "[1 2]", std::string(3000, '['),
                                 "{\"event_name\":\"x\",\"p\":\"\xff\"}", "42",
                                 R"({"event_name":1})", R"({"event_name":"x","channel":1})"};
  for (int round = 0; round < 200; ++round) {
    for (const auto& bad : invalid) {
      any_event out;
      CHECK(decoder.decode(bad, out) != decode_error::none);
      const auto chat = as<kryten::chat_message>(decode_ok(decoder, valid));
      CHECK(chat.username == "alice");
      CHECK(chat.message == "hi");
      CHECK(chat.channel == "lounge");
    }
  }
  // Growing and shrinking bodies reuse the same buffers.
  const std::string large = body("chatMsg", {{"username", "b"}, {"msg", std::string(100000, 'm')}});
  CHECK(as<kryten::chat_message>(decode_ok(decoder, large)).message.size() == 100000);
  CHECK(as<kryten::chat_message>(decode_ok(decoder, valid)).message == "hi");
}

// -- typed views ----------------------------------------------------------

TEST_CASE("to_typed: chat message with a user object", "[events][typed]") {
  event_decoder decoder;
  const auto chat = as<kryten::chat_message>(decode_ok(
      decoder, body("chatMsg", {{"user", {{"name", "alice"}, {"rank", 3}}},
                                {"msg", "hello"},
                                {"time", 1705314600999},
                                {"meta", {{"shadow", true}, {"addClass", nullptr}}}})));
  CHECK(chat.username == "alice");
  CHECK(chat.rank == 3);
  CHECK(chat.message == "hello");
  CHECK(chat.time_ms == 1705314600999);
  CHECK(chat.shadow);
  CHECK(chat.event_name == "chatMsg");
  CHECK(chat.channel == "lounge");
  CHECK(chat.domain == "cytu.be");
  CHECK(chat.correlation_id == "c0ffee");
}

TEST_CASE("to_typed: chat message with username, defaults", "[events][typed]") {
  event_decoder decoder;
  const auto chat = as<kryten::chat_message>(
      decode_ok(decoder, body("chatMsg", {{"username", "bob"}, {"msg", "yo"}, {"meta", json::object()}})));
  CHECK(chat.username == "bob");
  CHECK(chat.rank == 0);
  CHECK(chat.message == "yo");
  CHECK_FALSE(chat.shadow);
  CHECK(chat.time_ms == iso_timestamp_ms);  // no payload.time: the envelope timestamp
}

TEST_CASE("to_typed: chat message field variants", "[events][typed]") {
  event_decoder decoder;
  auto chat = [&](const json& payload, const std::string& ts = iso_timestamp) {
    return as<kryten::chat_message>(decode_ok(decoder, body("chatMsg", payload, ts)));
  };
  CHECK(chat({{"username", "b"}, {"message", "long form"}}).message == "long form");
  CHECK(chat({{"username", "b"}, {"msg", "short"}, {"message", "long"}}).message == "short");
  CHECK(chat({{"username", "b"}, {"msg", nullptr}, {"message", "long"}}).message == "long");
  CHECK(chat({{"username", "b"}, {"msg", "m"}, {"rank", 2}}).rank == 2);
  CHECK(chat({{"username", "b"}, {"msg", "m"}, {"rank", 1.5}}).rank == 1);
  CHECK(chat({{"user", {{"name", "u"}}}, {"msg", "m"}, {"rank", 5}}).rank == 0);
  CHECK(chat({{"user", "not an object"}, {"username", "b"}, {"msg", "m"}}).username == "b");
  CHECK(chat({{"username", "b"}, {"msg", "m"}, {"meta", {{"shadow", false}}}}).shadow == false);
  CHECK(chat({{"username", "b"}, {"msg", "m"}, {"meta", "x"}}).shadow == false);
  CHECK(chat({{"msg", "m"}, {"username", "b"}, {"time", 1700000000000.7}}).time_ms ==
        1700000000000);
  // time that is not a number: the envelope timestamp.
  CHECK(chat({{"username", "b"}, {"msg", "m"}, {"time", "soon"}}).time_ms == iso_timestamp_ms);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "2024-01-15T10:30:00+00:00").time_ms ==
        1705314600000);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "2024-01-15T10:30:00.5").time_ms ==
        1705314600500);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "2024-01-15T11:30:00.000+01:00").time_ms ==
        1705314600000);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "2000-02-29T00:00:00Z").time_ms ==
        951782400000);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "1969-12-31T23:59:59Z").time_ms == -1000);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "").time_ms == 0);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "yesterday").time_ms == 0);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "2023-02-29T00:00:00Z").time_ms == 0);
  CHECK(chat({{"username", "b"}, {"msg", "m"}}, "2024-01-15T10:30:00Zjunk").time_ms == 0);
}

TEST_CASE("to_typed: pm and event name case", "[events][typed]") {
  event_decoder decoder;
  const json payload = {{"username", "carol"}, {"msg", "psst"}, {"to", "dave"}};
  CHECK(as<kryten::chat_message>(decode_ok(decoder, body("pm", payload))).message == "psst");
  CHECK(std::holds_alternative<kryten::chat_message>(decode_ok(decoder, body("CHATMSG", payload))));
  CHECK(std::holds_alternative<kryten::chat_message>(decode_ok(decoder, body("PM", payload))));
}

TEST_CASE("to_typed: adduser and userleave", "[events][typed]") {
  event_decoder decoder;
  const auto join = as<kryten::user_join>(
      decode_ok(decoder, body("addUser", {{"name", "erin"}, {"rank", 2}, {"time", 1234}})));
  CHECK(join.username == "erin");
  CHECK(join.rank == 2);
  CHECK(join.time_ms == 1234);
  const auto bare = as<kryten::user_join>(decode_ok(decoder, body("addUser", {{"name", "f"}})));
  CHECK(bare.rank == 0);
  CHECK(bare.time_ms == iso_timestamp_ms);

  const auto leave = as<kryten::user_leave>(
      decode_ok(decoder, body("userLeave", {{"name", "erin"}, {"time", 99}})));
  CHECK(leave.username == "erin");
  CHECK(leave.time_ms == 99);
  CHECK(leave.event_name == "userLeave");
}

TEST_CASE("to_typed: changemedia", "[events][typed]") {
  event_decoder decoder;
  const auto media = as<kryten::change_media>(decode_ok(
      decoder, body("changeMedia", {{"type", "yt"}, {"id", "dQw4w9WgXcQ"}, {"title", "Song"},
                                    {"seconds", 212.5}, {"uid", 7}, {"currentTime", -3}})));
  CHECK(media.media_type == "yt");
  CHECK(media.media_id == "dQw4w9WgXcQ");
  CHECK(media.title == "Song");
  CHECK(media.duration == 212.5);
  CHECK(media.uid == 7);
  const auto bare = as<kryten::change_media>(
      decode_ok(decoder, body("changeMedia", {{"type", "yt"}, {"id", "x"}})));
  CHECK(bare.title == "");
  CHECK(bare.duration == 0);
  CHECK(bare.uid == -1);
}

TEST_CASE("to_typed: playlist", "[events][typed]") {
  event_decoder decoder;
  const auto update =
      as<kryten::playlist_update>(decode_ok(decoder, body("playlist", {{"action", "add"}, {"uid", 5}})));
  CHECK(update.action == "add");
  CHECK(update.uid == 5);
  CHECK(as<kryten::playlist_update>(decode_ok(decoder, body("playlist", {{"action", "clear"}}))).uid ==
        -1);
}

TEST_CASE("to_typed: mismatches fall back to raw_event with the same envelope", "[events][typed]") {
  event_decoder decoder;
  auto expect_raw = [&](const std::string& name, const json& payload) {
    INFO(name << " " << payload.dump());
    const std::string text = body(name, payload);
    const auto raw = as<kryten::raw_event>(decode_ok(decoder, text));
    CHECK(raw.event_name == name);
    CHECK(raw.channel == "lounge");
    CHECK(raw.timestamp == iso_timestamp);
    CHECK(raw.payload() == payload);
  };
  expect_raw("chatMsg", "just a string");
  expect_raw("chatMsg", json::array({"username", "msg"}));
  expect_raw("chatMsg", nullptr);
  expect_raw("chatMsg", {{"username", 42}, {"msg", "m"}});
  expect_raw("chatMsg", {{"username", "b"}});
  expect_raw("chatMsg", {{"username", "b"}, {"msg", 1}});
  expect_raw("chatMsg", {{"username", "b"}, {"msg", 1}, {"message", "m"}});
  expect_raw("chatMsg", {{"username", "b"}, {"msg", "m"}, {"meta", {{"shadow", "yes"}}}});
  expect_raw("chatMsg", {{"username", "b"}, {"msg", "m"}, {"rank", "admin"}});
  expect_raw("chatMsg", {{"user", {{"rank", 1}}}, {"username", "b"}, {"msg", "m"}});
  expect_raw("chatMsg", {{"user", {{"name", "u"}, {"rank", true}}}, {"msg", "m"}});
  expect_raw("pm", {{"msg", "m"}});
  expect_raw("addUser", {{"rank", 1}});
  expect_raw("addUser", {{"name", "n"}, {"rank", "high"}});
  expect_raw("userLeave", {{"name", 7}});
  expect_raw("changeMedia", {{"type", "yt"}, {"id", 12345}});
  expect_raw("changeMedia", {{"type", "yt"}});
  expect_raw("changeMedia", {{"type", "yt"}, {"id", "x"}, {"seconds", "long"}});
  expect_raw("changeMedia", {{"type", "yt"}, {"id", "x"}, {"uid", 18446744073709551615u}});
  expect_raw("playlist", json::array({{{"action", "add"}}}));
  expect_raw("playlist", {{"uid", 5}});
  expect_raw("mediaUpdate", {{"currentTime", 12.5}, {"paused", false}});
  expect_raw("chatMsgs", {{"username", "b"}, {"msg", "m"}});
}

TEST_CASE("to_typed: envelopes built by hand", "[events][typed]") {
  event_decoder decoder;
  event_envelope envelope;
  envelope.event_name = "chatmsg";
  envelope.payload_json = R"({"username":"z","msg":"m"})";
  envelope.subject = "kryten.events.cytube.lounge.chatmsg";
  envelope.received_ns = 42;
  const auto chat = as<kryten::chat_message>(decoder.to_typed(std::move(envelope)));
  CHECK(chat.username == "z");
  CHECK(chat.subject == "kryten.events.cytube.lounge.chatmsg");
  CHECK(chat.received_ns == 42);
  CHECK(chat.time_ms == 0);  // neither payload time nor envelope timestamp

  // Strings move from the envelope into the typed view (no copies).
  event_envelope moved;
  moved.event_name = "changemedia";
  moved.payload_json = R"({"type":"yt","id":"abcdefghijk","title":"a long enough title"})";
  moved.subject = "kryten.events.cytube.lounge.changemedia";
  const char* payload_data = moved.payload_json.data();
  const char* subject_data = moved.subject.data();
  const any_event media = decoder.to_typed(std::move(moved));
  REQUIRE(std::holds_alternative<kryten::change_media>(media));
  CHECK(std::get<kryten::change_media>(media).payload_json.data() == payload_data);
  CHECK(std::get<kryten::change_media>(media).subject.data() == subject_data);
  event_envelope fallback;
  fallback.event_name = "changemedia";
  fallback.payload_json = R"({"type":"yt","id":12345678901234567890})";
  payload_data = fallback.payload_json.data();
  const any_event raw = decoder.to_typed(std::move(fallback));
  REQUIRE(std::holds_alternative<kryten::raw_event>(raw));
  CHECK(std::get<kryten::raw_event>(raw).payload_json.data() == payload_data);

  event_envelope broken;
  broken.event_name = "chatmsg";
  broken.payload_json = R"({"username":"z","msg":)";
  CHECK(std::holds_alternative<kryten::raw_event>(decoder.to_typed(std::move(broken))));
  event_envelope empty;
  empty.event_name = "adduser";
  CHECK(std::holds_alternative<kryten::raw_event>(decoder.to_typed(std::move(empty))));
}

// -- events.hpp helpers ---------------------------------------------------

TEST_CASE("event_envelope: payload(), to_json() and envelope_of", "[events]") {
  event_decoder decoder;
  const json payload = {{"username", "a"}, {"msg", "hi"}, {"n", {1, 2.5, nullptr}}};
  const any_event e = decode_ok(decoder, body("chatMsg", payload));
  const event_envelope& envelope = kryten::envelope_of(e);
  CHECK(envelope.event_name == "chatMsg");
  CHECK(envelope.payload() == payload);
  CHECK(envelope.to_json() == json::parse(body("chatMsg", payload)));

  event_envelope blank;
  CHECK(blank.payload().is_null());
  const any_event raw = kryten::raw_event{blank};
  CHECK(kryten::envelope_of(raw).payload_json.empty());
}

TEST_CASE("to_string(decode_error)", "[events]") {
  CHECK(std::string(kryten::to_string(decode_error::none)) == "none");
  CHECK(std::string(kryten::to_string(decode_error::invalid_json)) == "invalid_json");
  CHECK(std::string(kryten::to_string(decode_error::not_an_object)) == "not_an_object");
  CHECK(std::string(kryten::to_string(decode_error::bad_event_name)) == "bad_event_name");
  CHECK(std::string(kryten::to_string(decode_error::wrong_field_type)) == "wrong_field_type");
  CHECK(std::string(kryten::to_string(decode_error::too_large)) == "too_large");
}

TEST_CASE("event: a reference to the runtime's own copy, typed access without a copy",
          "[events]") {
  kryten::chat_message chat;
  chat.username = "alice";
  chat.message = "hi";
  const event e = chat;
  REQUIRE(e.get_if<kryten::chat_message>() == &chat);  // the same object, not a copy
  CHECK(e.is<kryten::chat_message>());
  CHECK_FALSE(e.is<kryten::user_join>());
  CHECK(e.get_if<kryten::user_join>() == nullptr);
  CHECK(&e.envelope() == static_cast<const event_envelope*>(&chat));
  CHECK(e.visit([](const auto& typed) { return static_cast<const void*>(&typed); }) == &chat);
  auto owned = e.copy();
  REQUIRE(std::holds_alternative<kryten::chat_message>(owned));
  CHECK(std::get<kryten::chat_message>(owned).username == "alice");
  const any_event value = kryten::user_join{};
  CHECK(event{value}.get_if<kryten::user_join>() == &std::get<kryten::user_join>(value));
}
