// Integration tests of kryten::client against a real nats-server: event
// dispatch, filters, commands (sending and serving), handler isolation and
// back-pressure, malformed input, request/reply, plain publish/subscribe,
// embedding in a user's actor system, health(), connect failures, reconnects
// and the run()/stop()/disconnect() lifecycle.
//
// Each test starts its own nats-server on a free loopback port. Waits are
// conditions with deadlines (kryten::test::wait_until, bus_client::wait_for);
// the only sleeps are inside handlers whose slowness is the subject of a test.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <sstream>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include "kryten/client.hpp"
#include "process_control.hpp"
#include "support/bot_fixtures.hpp"
#include "support/timestamps.hpp"
#include "support/nats_server.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::chat_event;
using kryten::test::nats_server;
using kryten::test::is_iso8601;
using kryten::test::is_uuid4;
using kryten::test::latch;
using kryten::test::lounge_chat;
using kryten::test::make_config;
using kryten::test::raw_event_json;
using kryten::test::recorder;
using kryten::test::stalling_sink;
using kryten::test::time_of;
using kryten::test::wait_until;

namespace {

using steady = std::chrono::steady_clock;

// Sanitizer builds replace the allocator: glibc's malloc_trim does not apply.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

}  // namespace

TEST_CASE("the format checks these tests use", "[client][helpers]") {
  CHECK(is_uuid4("3f2b6c1e-8d4a-4f5b-9c7e-1a2b3c4d5e6f"));
  CHECK_FALSE(is_uuid4("3f2b6c1e-8d4a-1f5b-9c7e-1a2b3c4d5e6f"));  // version 1
  CHECK_FALSE(is_uuid4("3f2b6c1e-8d4a-4f5b-7c7e-1a2b3c4d5e6f"));  // variant
  CHECK_FALSE(is_uuid4("3F2B6C1E-8D4A-4F5B-9C7E-1A2B3C4D5E6F"));  // uppercase
  CHECK_FALSE(is_uuid4("3f2b6c1e8d4a4f5b9c7e1a2b3c4d5e6f"));
  CHECK(is_iso8601("2024-01-15T10:30:00.123456+00:00"));
  CHECK(is_iso8601("2024-01-15T10:30:00Z"));
  CHECK_FALSE(is_iso8601("2024-01-15 10:30:00+00:00"));
  CHECK_FALSE(is_iso8601("2024-01-15T10:30:00.+00:00"));
  CHECK_FALSE(is_iso8601("2024-01-15T10:30:00.123456"));
  CHECK_FALSE(is_iso8601("2024-01-15T10:30:00+00:00x"));
}

// -- 1. dispatch ----------------------------------------------------------------

TEST_CASE("events reach handlers by lowercased name, typed or raw", "[client][dispatch]") {
  nats_server server;
  recorder<kryten::chat_message> chats;            // chat_message only
  recorder<std::string> upper;                     // registered as "CHATMSG"
  recorder<kryten::raw_event> unknown;             // raw handler for an unknown event
  recorder<kryten::raw_event> chat_raw;            // raw-only handler for chatmsg
  recorder<std::string> all;                       // "*"

  kryten::client client{make_config(server.url())};
  client.on("chatmsg", [&](const kryten::chat_message& m) { chats.add(m); });
  client.on("CHATMSG", [&](const kryten::chat_message& m) { upper.add(m.message); });
  client.on("fooBar", [&](const kryten::raw_event& e) { unknown.add(e); });
  client.on("chatmsg", [&](const kryten::raw_event& e) { chat_raw.add(e); });
  client.on("*", [&](const kryten::event_envelope& e) { all.add(e.event_name); });
  client.connect();

  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "hi"));
  bus.publish("kryten.events.cytube.lounge.foobar",
              raw_event_json("fooBar", {{"anything", {1, 2, 3}}}));
  // A chatMsg whose payload does not fit ChatMessage: raw handlers only.
  bus.publish(lounge_chat, raw_event_json("chatMsg", "just a string"));
  bus.publish(lounge_chat, chat_event("bob", "second"));
  bus.flush();

  REQUIRE(all.wait_size(4));
  REQUIRE(chats.wait_size(2));
  REQUIRE(upper.wait_size(2));
  REQUIRE(unknown.wait_size(1));
  REQUIRE(chat_raw.wait_size(1));
  // Handler runs: 4 ("*") + 1 (fooBar) + 2 x 3 (the chat_message-only ones:
  // two calls and the mismatched event, skipped) + 3 (the raw-only one: one
  // call, two typed chat messages skipped).
  REQUIRE(wait_until([&] { return client.health().events_handled >= 14; }, 5s));

  auto got = chats.items();
  REQUIRE(got.size() == 2);  // the mismatched event was not passed to it
  const auto& m = got[0];
  CHECK(m.event_name == "chatMsg");
  CHECK(m.username == "alice");
  CHECK(m.rank == 2);
  CHECK(m.message == "hi");
  CHECK(m.time_ms == 1700000000000LL);
  CHECK_FALSE(m.shadow);
  CHECK(m.channel == "lounge");
  CHECK(m.domain == "cytu.be");
  CHECK(m.timestamp == "2024-01-15T10:30:00.123456+00:00");
  CHECK(m.correlation_id == "3f2b6c1e-8d4a-4f5b-9c7e-1a2b3c4d5e6f");
  CHECK(m.subject == lounge_chat);
  CHECK(m.received_ns > 0);
  CHECK(m.payload()["user"]["name"] == "alice");
  CHECK(got[1].username == "bob");
  CHECK(got[1].message == "second");

  CHECK(upper.items() == std::vector<std::string>{"hi", "second"});

  auto u = unknown.items();
  REQUIRE(u.size() == 1);
  CHECK(u[0].event_name == "fooBar");
  CHECK(u[0].payload() == json{{"anything", {1, 2, 3}}});
  CHECK(u[0].subject == "kryten.events.cytube.lounge.foobar");

  auto r = chat_raw.items();
  REQUIRE(r.size() == 1);
  CHECK(r[0].event_name == "chatMsg");
  CHECK(r[0].payload() == json("just a string"));
  CHECK(r[0].channel == "lounge");

  CHECK(all.items() == std::vector<std::string>{"chatMsg", "fooBar", "chatMsg", "chatMsg"});

  auto h = client.health();
  CHECK(h.events_received == 4);
  CHECK(h.decode_errors == 0);
  CHECK(h.handler_exceptions == 0);
  CHECK(h.events_handled == 14);
  CHECK(h.handlers_registered == 5);
}

TEST_CASE("a generic handler receives each event as its typed view", "[client][dispatch]") {
  nats_server server;
  recorder<std::string> kinds;
  kryten::client client{make_config(server.url())};
  client.on("*", [&](const auto& e) {
    using T = std::decay_t<decltype(e)>;
    if constexpr (std::is_same_v<T, kryten::chat_message>)
      kinds.add("chat:" + e.username);
    else if constexpr (std::is_same_v<T, kryten::user_join>)
      kinds.add("join:" + e.username);
    else if constexpr (std::is_same_v<T, kryten::user_leave>)
      kinds.add("leave:" + e.username);
    else if constexpr (std::is_same_v<T, kryten::change_media>)
      kinds.add("media:" + e.title);
    else if constexpr (std::is_same_v<T, kryten::playlist_update>)
      kinds.add("playlist:" + e.action);
    else
      kinds.add("raw:" + e.event_name);
  });
  client.connect();

  bus_client bus(server.url());
  const std::string base = "kryten.events.cytube.lounge.";
  bus.publish(base + "pm", raw_event_json("pm", {{"username", "carol"}, {"msg", "psst"}}));
  bus.publish(base + "adduser", raw_event_json("addUser", {{"name", "dave"}, {"rank", 1}}));
  bus.publish(base + "userleave", raw_event_json("userLeave", {{"name", "dave"}}));
  bus.publish(base + "changemedia",
              raw_event_json("changeMedia", {{"type", "yt"},
                                             {"id", "abc"},
                                             {"title", "Song"},
                                             {"seconds", 212},
                                             {"uid", 7}}));
  bus.publish(base + "playlist", raw_event_json("playlist", {{"action", "add"}, {"uid", 3}}));
  bus.publish(base + "usercount", raw_event_json("usercount", 12));
  bus.flush();

  REQUIRE(kinds.wait_size(6));
  CHECK(kinds.items() == std::vector<std::string>{"chat:carol", "join:dave", "leave:dave",
                                                  "media:Song", "playlist:add",
                                                  "raw:usercount"});
}

// -- 2. filters -----------------------------------------------------------------

TEST_CASE("channel and domain filters narrow a handler's events", "[client][filters]") {
  nats_server server;
  recorder<std::string> any, movies, other_tv, movies_cytube;

  kryten::client client{
    make_config(server.url(), "test-bot", {{"cytu.be", "lounge"}, {"cytu.be", "movies"}})};
  auto record = [](recorder<std::string>& r) {
    return [&r](const kryten::chat_message& m) { r.add(m.message); };
  };
  client.on("chatmsg", record(any));
  client.on("chatmsg", record(movies), kryten::handler_filter{"movies", ""});
  client.on("chatmsg", record(other_tv), kryten::handler_filter{"", "other.tv"});
  client.on("chatmsg", record(movies_cytube), kryten::handler_filter{"movies", "cytu.be"});
  client.connect();

  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("u", "lounge@cytu.be", "lounge", "cytu.be"));
  bus.publish("kryten.events.cytube.movies.chatMsg",
              chat_event("u", "movies@cytu.be", "movies", "cytu.be"));
  bus.publish(lounge_chat, chat_event("u", "lounge@other.tv", "lounge", "other.tv"));
  bus.publish("kryten.events.cytube.movies.chatMsg",
              chat_event("u", "movies@other.tv", "movies", "other.tv"));
  bus.flush();

  REQUIRE(any.wait_size(4));
  REQUIRE(movies.wait_size(2));
  REQUIRE(other_tv.wait_size(2));
  REQUIRE(movies_cytube.wait_size(1));
  REQUIRE(wait_until([&] { return client.health().events_handled >= 9; }, 5s));

  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  // The two channels arrive on two subscriptions: no order between them.
  CHECK(sorted(any.items()) == std::vector<std::string>{"lounge@cytu.be", "lounge@other.tv",
                                                        "movies@cytu.be", "movies@other.tv"});
  CHECK(sorted(movies.items()) == std::vector<std::string>{"movies@cytu.be", "movies@other.tv"});
  CHECK(sorted(other_tv.items())
        == std::vector<std::string>{"lounge@other.tv", "movies@other.tv"});
  CHECK(movies_cytube.items() == std::vector<std::string>{"movies@cytu.be"});
  auto h = client.health();
  CHECK(h.events_received == 4);
  CHECK(h.events_handled == 9);
  CHECK(h.channels == std::vector<std::string>{"cytu.be/lounge", "cytu.be/movies"});
}

// -- 3. send_command ------------------------------------------------------------

TEST_CASE("send_command publishes PROTOCOL §2's request body", "[client][commands]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.robot.command");
  bus.subscribe("kryten.test-service.command");

  kryten::client client{
    make_config(server.url(), "my-bot", {{"cytu.be", "lounge"}, {"other.tv", "movies"}})};
  client.connect();

  auto check_shape = [](const json& body) {
    CHECK(body.size() == 3);
    CHECK(body.contains("command"));
    REQUIRE(body.contains("args"));
    CHECK(body["args"].is_object());
    REQUIRE(body.contains("meta"));
    const auto& meta = body["meta"];
    CHECK(meta.size() == 5);
    CHECK(meta.value("source", "") == "my-bot");
    auto ts = meta.value("timestamp", "");
    CHECK(is_iso8601(ts));
    CHECK(is_uuid4(meta.value("request_id", "")));
  };

  SECTION("object body, default domain and channel, token normalised") {
    auto id = client.send_command("Robot", "say", {{"message", "hello"}});
    CHECK(is_uuid4(id));
    auto msg = bus.wait_for("kryten.robot.command", 5s);
    REQUIRE(msg);
    auto body = json::parse(msg->data);
    check_shape(body);
    CHECK(body["command"] == "say");
    CHECK(body["args"] == json{{"message", "hello"}});
    CHECK(body["meta"]["domain"] == "cytu.be");
    CHECK(body["meta"]["channel"] == "lounge");
    CHECK(body["meta"]["request_id"] == id);
    CHECK(msg->reply.empty());
    REQUIRE(wait_until([&] { return client.health().commands_sent == 1; }, 5s));
  }

  SECTION("non-object bodies are wrapped as {\"value\": body}") {
    auto id1 = client.send_command("robot", "kick", "alice");
    auto id2 = client.send_command("robot", "seek", 42);
    auto id3 = client.send_command("robot", "queue", json::array({"a", "b"}));
    CHECK(id1 != id2);
    CHECK(id2 != id3);
    REQUIRE(bus.wait_for("kryten.robot.command", 5s, 3));
    auto msgs = bus.messages_on("kryten.robot.command");
    REQUIRE(msgs.size() == 3);
    std::vector<json> bodies;
    for (auto& m : msgs)
      bodies.push_back(json::parse(m.data));
    for (auto& b : bodies)
      check_shape(b);
    CHECK(bodies[0]["args"] == json{{"value", "alice"}});
    CHECK(bodies[0]["meta"]["request_id"] == id1);
    CHECK(bodies[1]["args"] == json{{"value", 42}});
    CHECK(bodies[1]["meta"]["request_id"] == id2);
    CHECK(bodies[2]["args"] == json{{"value", {"a", "b"}}});
    CHECK(bodies[2]["meta"]["request_id"] == id3);
    REQUIRE(wait_until([&] { return client.health().commands_sent == 3; }, 5s));
  }

  SECTION("explicit domain and channel; a service name with a space") {
    auto id = client.send_command("Test Service", "say", json::object(),
                                  std::string{"other.tv"}, std::string{"movies"});
    auto msg = bus.wait_for("kryten.test-service.command", 5s);
    REQUIRE(msg);
    auto body = json::parse(msg->data);
    check_shape(body);
    CHECK(body["args"] == json::object());
    CHECK(body["meta"]["domain"] == "other.tv");
    CHECK(body["meta"]["channel"] == "movies");
    CHECK(body["meta"]["request_id"] == id);
    REQUIRE(wait_until([&] { return client.health().commands_sent == 1; }, 5s));
  }

  SECTION("no service or no command name: \"\" returned, nothing sent") {
    CHECK(client.send_command("", "say", json::object()).empty());
    CHECK(client.send_command("robot", "", json::object()).empty());
    // A command sent after them is the first and only one on the bus.
    auto id = client.send_command("robot", "say", {{"message", "after"}});
    REQUIRE(bus.wait_for("kryten.robot.command", 5s));
    auto msgs = bus.messages_on("kryten.robot.command");
    REQUIRE(msgs.size() == 1);
    CHECK(json::parse(msgs[0].data)["meta"]["request_id"] == id);
    REQUIRE(wait_until([&] { return client.health().commands_sent == 1; }, 5s));
  }
}

TEST_CASE("publish and send_command before connect() or after run() returned are counted and "
          "logged, not lost silently",
          "[client][commands]") {
  nats_server server;
  std::ostringstream log_text;
  auto logger = std::make_shared<spdlog::logger>(
    "unsent-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
  bus_client bus(server.url());
  bus.subscribe("kryten.robot.command");
  bus.subscribe("early.subject");
  kryten::client client{make_config(server.url(), "my-bot"), logger};
  client.publish("early.subject", std::string_view{"too soon"});
  CHECK(is_uuid4(client.send_command("robot", "say", {{"message", "too soon"}})));
  client.connect();
  CHECK(client.health().publish_errors == 2);
  // Once connected, both go out.
  client.publish("early.subject", std::string_view{"in time"});
  client.send_command("robot", "say", {{"message", "in time"}});
  REQUIRE(bus.wait_for("early.subject", 5s));
  REQUIRE(bus.wait_for("kryten.robot.command", 5s));
  CHECK(bus.messages_on("early.subject").size() == 1);
  CHECK(bus.messages_on("early.subject")[0].data == "in time");
  CHECK(bus.messages_on("kryten.robot.command").size() == 1);
  CHECK(log_text.str().find("cannot publish to early.subject: not connected")
        != std::string::npos);
  // Once run() has returned, the runtime's actors are gone: neither vanishes either.
  client.stop("done");
  CHECK(client.run() == 0);
  client.publish("late.subject", std::string_view{"too late"});
  CHECK(is_uuid4(client.send_command("robot", "say", {{"message", "too late"}})));
  CHECK(log_text.str().find("cannot publish to late.subject: the client's runtime has stopped")
        != std::string::npos);
  // The second within 10 s is counted; its line is suppressed.
  CHECK(log_text.str().find("cannot publish to kryten.robot.command: the client's runtime")
        == std::string::npos);
}

// -- 4. serving commands --------------------------------------------------------

TEST_CASE("on_command answers requests on kryten.<service>.command", "[client][commands]") {
  nats_server server;
  recorder<kryten::command_request> seen;
  kryten::client client{make_config(server.url(), "cmd-bot")};
  client.on_command("echo", [&](const kryten::command_request& req) {
    seen.add(req);
    return req.args;
  });
  client.on_command("fail", [](const kryten::command_request&) -> json {
    throw kryten::command_error("bad args");
  });
  client.on_command("boom", [](const kryten::command_request&) -> json {
    throw std::runtime_error("secret internal detail");
  });
  client.on_command("nothing", [](const kryten::command_request&) { return json(); });
  client.connect();
  // Registered after connect: served as well.
  client.on_command("late", [](const kryten::command_request&) { return json{{"late", true}}; });

  bus_client bus(server.url());
  const std::string subject = "kryten.cmd-bot.command";
  auto ask = [&](const std::string& body) {
    auto reply = bus.request(subject, body, 5s);
    REQUIRE(reply);
    return json::parse(*reply);
  };

  SECTION("success") {
    json meta{{"source", "tester"}, {"request_id", "r-1"}};
    auto r = ask(json{{"command", "echo"}, {"args", {{"x", 1}, {"y", "z"}}}, {"meta", meta}}.dump());
    CHECK(r == json{{"service", "cmd-bot"},
                    {"command", "echo"},
                    {"success", true},
                    {"data", {{"x", 1}, {"y", "z"}}}});
    auto reqs = seen.items();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].command == "echo");
    CHECK(reqs[0].meta == meta);

    // A non-object args is handed over as {"value": args}.
    auto w = ask(R"({"command":"echo","args":"plain","meta":{}})");
    CHECK(w["success"] == true);
    CHECK(w["data"] == json{{"value", "plain"}});
    // No args at all: an empty object.
    auto e = ask(R"({"command":"echo"})");
    CHECK(e["success"] == true);
    CHECK(e["data"] == json::object());

    auto n = ask(R"({"command":"nothing","args":{},"meta":{}})");
    CHECK(n["success"] == true);
    CHECK(n.contains("data"));
    CHECK_FALSE(n.contains("error"));

    auto l = ask(R"({"command":"late","args":{},"meta":{}})");
    CHECK(l == json{{"service", "cmd-bot"},
                    {"command", "late"},
                    {"success", true},
                    {"data", {{"late", true}}}});
  }

  SECTION("unknown command") {
    auto r = ask(R"({"command":"nope","args":{},"meta":{}})");
    CHECK(r["service"] == "cmd-bot");
    CHECK(r["command"] == "nope");
    CHECK(r["success"] == false);
    REQUIRE(r.contains("error"));
    CHECK(r["error"].is_string());
    CHECK_FALSE(r["error"].get<std::string>().empty());
  }

  SECTION("invalid JSON") {
    auto r = ask("this is {not json");
    CHECK(r["error"] == "Invalid JSON");
    CHECK(r["success"] == false);
    CHECK(r["service"] == "cmd-bot");
  }

  SECTION("command_error text is the reply's error") {
    auto r = ask(R"({"command":"fail","args":{},"meta":{}})");
    CHECK(r["service"] == "cmd-bot");
    CHECK(r["command"] == "fail");
    CHECK(r["success"] == false);
    CHECK(r["error"] == "bad args");
  }

  SECTION("any other exception is an internal error") {
    auto r = ask(R"({"command":"boom","args":{},"meta":{}})");
    CHECK(r["command"] == "boom");
    CHECK(r["success"] == false);
    CHECK(r["error"] == "Internal error");
    // The client keeps serving.
    CHECK(ask(R"({"command":"echo","args":{"a":1}})")["success"] == true);
  }
}

TEST_CASE("the ecosystem's system.* commands are answered, and a user's own win",
          "[client][commands]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "sys-bot")};
  client.on_command("system.reload", [](const kryten::command_request&) {
    return json{{"reloaded", true}};
  });
  client.connect();
  bus_client bus(server.url());
  auto ask = [&](const std::string& command) {
    auto reply = bus.request("kryten.sys-bot.command",
                             json{{"service", "sys-bot"}, {"command", command}}.dump(), 5s);
    REQUIRE(reply);
    auto r = json::parse(*reply);
    INFO("reply: " << r.dump());
    CHECK(r["service"] == "sys-bot");
    CHECK(r["command"] == command);
    CHECK(r["success"] == true);
    REQUIRE(r.contains("data"));
    return r["data"];
  };

  for (const char* command : {"ping", "system.ping"}) {
    INFO(command);
    auto d = ask(command);
    CHECK(d["pong"] == true);
    CHECK(d["service"] == "sys-bot");
    CHECK(d["instance_id"] == client.instance_id());
    CHECK(is_iso8601(d.value("timestamp", "")));
  }
  for (const char* command : {"health", "system.health"}) {
    INFO(command);
    auto d = ask(command);
    CHECK(d["service"] == "sys-bot");
    CHECK(d["connected"] == true);
    CHECK(d.contains("events_received"));
    CHECK(d.contains("handlers"));
  }
  auto stats = ask("system.stats");
  CHECK(stats["service"] == "sys-bot");
  CHECK(stats["instance_id"] == client.instance_id());
  for (const char* field : {"uptime_seconds", "events_received", "events_handled",
                            "dropped_events", "commands_sent", "errors", "events_by_channel"}) {
    INFO(field);
    CHECK(stats.contains(field));
  }
  REQUIRE(stats["handlers"].is_object());
  for (auto& [label, counts] : stats["handlers"].items()) {
    INFO(label);
    CHECK(counts.contains("handled"));
    CHECK(counts.contains("dropped"));
  }
  CHECK(ask("system.reload") == json{{"reloaded", true}});

  SECTION("a user's system.ping overrides the built-in one") {
    client.on_command("system.ping", [](const kryten::command_request&) {
      return json{{"pong", "mine"}};
    });
    CHECK(ask("system.ping") == json{{"pong", "mine"}});
    CHECK(ask("ping")["pong"] == true);  // the short name is still the runtime's
  }
}

TEST_CASE("replicas of a service share command requests (queue group)", "[client][commands]") {
  nats_server server;
  kryten::client one{make_config(server.url(), "replica-bot")};
  kryten::client two{make_config(server.url(), "replica-bot")};
  REQUIRE(one.instance_id() != two.instance_id());
  for (auto* c : {&one, &two}) {
    c->on_command("who", [c](const kryten::command_request&) {
      return json{{"instance", c->instance_id()}};
    });
    c->connect();
  }

  bus_client bus(server.url());
  std::map<std::string, int> answered;
  constexpr int requests = 40;
  for (int i = 0; i < requests; ++i) {
    auto reply = bus.request("kryten.replica-bot.command",
                             json{{"command", "who"}, {"args", {{"i", i}}}, {"meta", json::object()}}
                               .dump(),
                             5s);
    REQUIRE(reply);
    auto r = json::parse(*reply);
    REQUIRE(r["success"] == true);
    ++answered[r["data"]["instance"].get<std::string>()];
  }
  CHECK(answered.size() == 2);
  CHECK(answered[one.instance_id()] > 0);
  CHECK(answered[two.instance_id()] > 0);
  CHECK(answered[one.instance_id()] + answered[two.instance_id()] == requests);
}

// -- 5. exceptions ----------------------------------------------------------------

TEST_CASE("a throwing handler is isolated and keeps being called", "[client][isolation]") {
  nats_server server;
  std::atomic<int> thrower_calls{0};
  recorder<std::string> others;
  kryten::client client{make_config(server.url())};
  client.on("chatmsg", [&](const kryten::chat_message&) {
    ++thrower_calls;
    throw std::runtime_error("handler failure");
  });
  client.on("chatmsg", [&](const kryten::chat_message& m) { others.add(m.message); });
  client.connect();

  constexpr int n = 20;
  bus_client bus(server.url());
  for (int i = 0; i < n; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();

  REQUIRE(others.wait_size(n));
  REQUIRE(wait_until([&] { return thrower_calls.load() == n; }, 5s));
  REQUIRE(wait_until([&] { return client.health().handler_exceptions == n; }, 5s));
  CHECK(others.size() == n);
  CHECK(others.items().back() == std::to_string(n - 1));
  auto h = client.health();
  CHECK(h.handler_exceptions == n);
  CHECK(h.errors >= n);
  CHECK(h.connected);

  // Still called after all that.
  bus.publish(lounge_chat, chat_event("alice", "after"));
  bus.flush();
  CHECK(wait_until([&] { return thrower_calls.load() == n + 1; }, 5s));
  CHECK(others.wait_size(n + 1));
}

// -- 6. slow handlers -------------------------------------------------------------

TEST_CASE("a slow handler does not delay other handlers", "[client][isolation]") {
  nats_server server;
  std::atomic<int> slow_done{0};
  recorder<steady::time_point> fast;
  kryten::client client{make_config(server.url())};
  client.on("chatmsg", [&](const kryten::chat_message&) {
    std::this_thread::sleep_for(300ms);
    ++slow_done;
  });
  client.on("chatmsg", [&](const kryten::chat_message&) { fast.add(steady::now()); });
  client.connect();

  bus_client bus(server.url());
  auto published = steady::now();
  for (int i = 0; i < 5; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();

  REQUIRE(fast.wait_size(5, 3s));
  auto last = fast.items().back();
  // The slow handler needs 1.5 s for the five; the fast one is not behind it.
  CHECK(last - published < 750ms);
  CHECK(slow_done.load() < 5);
  // And the slow one gets through all of them too.
  CHECK(wait_until([&] { return slow_done.load() == 5; }, 5s));
}

// -- 7. handler_timeout -----------------------------------------------------------

TEST_CASE("a handler over handler_timeout is counted", "[client][isolation]") {
  nats_server server;
  auto cfg = make_config(server.url());
  cfg.handler_timeout = 0.05;
  std::atomic<int> done{0};
  kryten::client client{cfg};
  client.on("chatmsg", [&](const kryten::chat_message&) {
    std::this_thread::sleep_for(100ms);
    ++done;
  });
  client.connect();
  CHECK(client.health().handler_timeouts == 0);

  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "slow"));
  bus.flush();
  REQUIRE(wait_until([&] { return client.health().handler_timeouts >= 1; }, 5s));
  CHECK(done.load() == 1);
  auto h = client.health();
  CHECK(h.handler_timeouts == 1);
  CHECK(h.errors >= 1);
  CHECK(h.avg_event_latency_ms >= 100.0);
}

// -- 8. bounded handler queues -----------------------------------------------------

TEST_CASE("a full handler queue drops and counts further events", "[client][backpressure]") {
  nats_server server;
  auto cfg = make_config(server.url());
  cfg.handler_queue_size = 5;
  recorder<std::string> handled;
  std::atomic<int> entered{0};
  kryten::client client{cfg};
  latch gate;  // declared after the client: opened before the client is destroyed
  client.on("chatmsg", [&](const kryten::chat_message& m) {
    ++entered;
    gate.future.wait();
    handled.add(m.message);
  });
  client.connect();

  bus_client bus(server.url());
  constexpr int n = 50;
  for (int i = 0; i < n; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();

  // The running event and four waiting ones fill the queue of five.
  REQUIRE(wait_until([&] { return client.health().events_received == n; }, 5s));
  REQUIRE(wait_until([&] { return client.health().dropped_events >= n - 5; }, 5s));
  auto h = client.health();
  CHECK(h.dropped_events == n - 5);
  CHECK(h.errors >= n - 5);
  CHECK(h.connected);
  CHECK(client.is_connected());
  // The first event is in the handler (or about to be), the rest wait.
  CHECK(wait_until([&] { return entered.load() == 1; }, 5s));
  CHECK(handled.size() == 0);

  gate.open();
  REQUIRE(handled.wait_size(5));
  CHECK(handled.items() == std::vector<std::string>{"0", "1", "2", "3", "4"});
  REQUIRE(wait_until([&] { return client.health().events_handled == 5; }, 5s));

  // Room again: new events are taken.
  bus.publish(lounge_chat, chat_event("alice", "later"));
  bus.flush();
  REQUIRE(handled.wait_size(6));
  CHECK(handled.items().back() == "later");
  CHECK(client.health().dropped_events == n - 5);
}

TEST_CASE("messages past cnats' pending limit are counted as dropped, episode after episode",
          "[client][backpressure]") {
  nats_server server;
  auto cfg = make_config(server.url());
  cfg.nats.pending_bytes_limit = 1024;  // every event of 2 KB is over it
  recorder<std::string> handled;
  kryten::client client{cfg};
  client.on("chatmsg", [&](const kryten::chat_message& m) { handled.add(m.message); });
  client.connect();

  bus_client bus(server.url());
  const std::string big(2048, 'x');
  auto burst = [&](int n) {
    for (int i = 0; i < n; ++i)
      bus.publish(lounge_chat, chat_event("alice", big));
    bus.flush();
  };
  burst(30);
  REQUIRE(wait_until([&] { return client.health().dropped_events == 30; }, 5s));
  CHECK(client.health().events_received == 0);

  // A small event gets through (cnats' slow-consumer episode ends) ...
  bus.publish(lounge_chat, chat_event("alice", "small"));
  bus.flush();
  REQUIRE(handled.wait_size(1));
  CHECK(handled.items()[0] == "small");
  // ... and the drops of the next episode are counted too.
  burst(10);
  REQUIRE(wait_until([&] { return client.health().dropped_events == 40; }, 5s));
  CHECK(client.health().events_handled == 1);
}

TEST_CASE("a burst far past the inbox's ring is handled whole with the default bounds",
          "[client][backpressure][burst]") {
  nats_server server;
  auto cfg = make_config(server.url());
  REQUIRE(cfg.handler_queue_bytes == (1LL << 30));  // the defaults, not a test's choice
  std::atomic<int> handled{0};
  std::atomic<bool> in_order{true};
  kryten::client client{cfg};
  latch gate;
  client.on("chatmsg", [&](const kryten::chat_message& m) {
    gate.future.wait();  // held until the whole burst is queued
    if (m.message != std::to_string(handled.load()))
      in_order = false;
    ++handled;
  });
  client.connect();

  bus_client bus(server.url());
  constexpr int n = 60000;  // the ring holds 16,384; the old bound was 10,000
  for (int i = 0; i < n; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();
  REQUIRE(wait_until([&] { return client.health().events_received == n; }, 20s));
  CHECK(client.health().dropped_events == 0);
  gate.open();
  REQUIRE(wait_until([&] { return handled.load() == n; }, 30s));
  CHECK(in_order.load());
  auto h = client.health();
  CHECK(h.events_handled == n);
  CHECK(h.dropped_events == 0);
}

TEST_CASE("once a large backlog is handled, the memory that held it goes back to the system",
          "[client][backpressure][burst][memory]") {
  nats_server server;
  std::ostringstream log_text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text);
  auto logger = std::make_shared<spdlog::logger>("memory-test", sink);
  logger->set_level(spdlog::level::info);
  std::atomic<int> handled{0};
  kryten::client client{make_config(server.url()), logger};
  latch gate;
  caf::actor user_actor;
  SECTION("a handler function") {
    client.on("chatmsg", [&](const kryten::chat_message&) {
      gate.future.wait();
      ++handled;
    });
  }
  SECTION("a user's actor (its forwarder holds the backlog)") {
    // Detached: it blocks until the gate opens, and must not hold a
    // scheduler thread meanwhile.
    user_actor = client.system().spawn<caf::detached>(
      [](caf::event_based_actor*, std::shared_future<void> opened,
         std::atomic<int>* n) -> caf::behavior {
        return {[opened, n](const kryten::chat_message&) {
          opened.wait();
          ++*n;
        }};
      },
      gate.future, &handled);
    client.on_actor("chatmsg", user_actor);
  }
  client.connect();
  auto rss_kb = [] { return kryten::process::status_kb(::getpid(), "VmRSS:"); };
  const long before_kb = rss_kb();

  // 60,000 chat events of ~1 KB: about 90 MB by the inbox's estimate, past
  // the 32 MB after which the runtime releases memory once caught up.
  bus_client bus(server.url());
  constexpr int n = 60000;
  const std::string text(600, 'x');
  for (int i = 0; i < n; ++i)
    bus.publish(lounge_chat, chat_event("alice", text));
  bus.flush();
  REQUIRE(wait_until([&] { return client.health().events_received == n; }, 20s));
  const long peak_kb = rss_kb();
  INFO("resident before " << before_kb << " kB, with the backlog " << peak_kb << " kB");
  gate.open();
  REQUIRE(wait_until([&] { return handled.load() == n; }, 30s));
  REQUIRE(wait_until([&] { return client.health().events_handled == n; }, 5s));
  if (!sanitized) {
    // glibc's heap: the freed pages go back (a sanitizer's allocator keeps its own).
    REQUIRE(peak_kb - before_kb > 40 * 1024);
    CHECK(wait_until([&] { return rss_kb() < before_kb + (peak_kb - before_kb) / 2; }, 5s));
  }
  client.disconnect();
  if (user_actor)
    caf::anon_send_exit(user_actor, caf::exit_reason::user_shutdown);
  auto text_out = log_text.str();
  CHECK(text_out.find("caught up with a backlog of") != std::string::npos);
  CHECK(text_out.find("MB of freed memory returned to the system") != std::string::npos);
}

TEST_CASE("a backlog that cnats held goes back to the system once it is delivered",
          "[client][backpressure][burst][memory]") {
  nats_server server;
  latch gate;
  auto sink = std::make_shared<stalling_sink>("skipped bad message", gate.future);
  auto logger = std::make_shared<spdlog::logger>("memory-test", sink);
  logger->set_level(spdlog::level::info);
  std::atomic<int> handled{0};
  kryten::client client{make_config(server.url()), logger};
  client.on("chatmsg", [&](const kryten::chat_message&) { ++handled; });
  client.connect();
  auto rss_kb = [] { return kryten::process::status_kb(::getpid(), "VmRSS:"); };
  const long before_kb = rss_kb();

  // A bad message stalls the delivery thread in its log line; meanwhile
  // cnats' reader buffers 60,000 events of ~1 KB (past the 32 MB after which
  // memory is released).
  bus_client bus(server.url());
  bus.publish(lounge_chat, "not json");
  constexpr int n = 60000;
  const std::string text(600, 'x');
  for (int i = 0; i < n; ++i)
    bus.publish(lounge_chat, chat_event("alice", text));
  bus.flush();
  REQUIRE(wait_until([&] { return rss_kb() - before_kb > 40 * 1024; }, 20s));
  CHECK(client.health().events_received == 1);  // the bad one, still being logged
  gate.open();
  REQUIRE(wait_until([&] { return handled.load() == n; }, 30s));
  CHECK(wait_until(
    [&] { return sink->logged("subscription kryten.events.cytube.lounge.> caught up with a "); },
    5s));
  client.disconnect();
  CHECK(client.health().decode_errors == 1);
}

TEST_CASE("handler_queue_bytes bounds a slow handler's queue: the rest is dropped and counted",
          "[client][backpressure][burst]") {
  nats_server server;
  auto cfg = make_config(server.url());
  // Each queued chat event counts as its payload plus 512 bytes: 64 KiB holds
  // about a hundred.
  cfg.handler_queue_bytes = 64 * 1024;
  recorder<std::string> handled;
  kryten::client client{cfg};
  latch gate;
  client.on("chatmsg", [&](const kryten::chat_message& m) {
    gate.future.wait();
    handled.add(m.message);
  });
  client.connect();

  bus_client bus(server.url());
  constexpr int n = 2000;
  for (int i = 0; i < n; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();
  REQUIRE(wait_until([&] { return client.health().events_received == n; }, 10s));
  auto dropped = client.health().dropped_events;
  CHECK(dropped > n / 2);
  CHECK(dropped < n);
  gate.open();
  REQUIRE(wait_until([&] { return client.health().events_handled + dropped == n; }, 10s));
  // What was kept is in order, from the first event on (an event frees its
  // room when the handler takes it, so a later one may fit in again).
  auto items = handled.items();
  REQUIRE(items.size() == static_cast<std::size_t>(n) - dropped);
  REQUIRE_FALSE(items.empty());
  CHECK(items.front() == "0");
  for (std::size_t i = 1; i < items.size(); ++i)
    CHECK(std::stoi(items[i]) > std::stoi(items[i - 1]));
  CHECK(client.health().dropped_events == dropped);
}

// -- 9. malformed input -----------------------------------------------------------

TEST_CASE("malformed bus input is counted and skipped", "[client][decode]") {
  nats_server server;
  recorder<kryten::chat_message> chats;
  recorder<std::size_t> big;
  kryten::client client{make_config(server.url())};
  client.on("chatmsg", [&](const kryten::chat_message& m) { chats.add(m); });
  client.on("big", [&](const kryten::raw_event& e) { big.add(e.payload_json.size()); });
  client.connect();

  std::string deep = "{\"event_name\":\"chatMsg\",\"payload\":" + std::string(10000, '[')
                     + std::string(10000, ']') + "}";
  std::vector<std::string> bad{
    "this is not json",
    "[1, 2, 3]",
    "\"a json string\"",
    R"({"event_name": 5})",
    R"({"event_name":"chatMsg","channel":7})",
    std::string{"{\"event_name\":\"chatMsg\",\"payload\":{\"msg\":\"\xff\xfe\xc3\"}}"},
    deep,
  };
  // Valid, and large (just under nats-server's default max_payload of 1 MiB).
  std::string big_body =
    json{{"event_name", "big"}, {"payload", {{"data", std::string(1000000, 'x')}}}}.dump();
  REQUIRE(big_body.size() < (1u << 20));

  bus_client bus(server.url());
  const std::string subject = "kryten.events.cytube.lounge.x";
  for (auto& b : bad)
    bus.publish(subject, b);
  bus.publish(subject, big_body);
  bus.publish(lounge_chat, chat_event("alice", "valid"));
  bus.flush();

  REQUIRE(chats.wait_size(1));
  REQUIRE(big.wait_size(1));
  CHECK(big.items()[0] > 1000000);
  auto got = chats.items();
  REQUIRE(got.size() == 1);
  CHECK(got[0].username == "alice");
  CHECK(got[0].message == "valid");
  REQUIRE(wait_until([&] { return client.health().events_received == bad.size() + 2; }, 5s));
  auto h = client.health();
  CHECK(h.decode_errors == bad.size());
  CHECK(h.events_received == bad.size() + 2);
  CHECK(h.errors >= bad.size());
  CHECK(h.connected);

  // Still decoding after all that.
  bus.publish(lounge_chat, chat_event("bob", "again"));
  bus.flush();
  REQUIRE(chats.wait_size(2));
  CHECK(chats.items()[1].username == "bob");
  CHECK(client.health().decode_errors == bad.size());
}

// -- 10. request ------------------------------------------------------------------

TEST_CASE("request() returns the parsed reply or throws request_error", "[client][request]") {
  nats_server server;
  kryten::client responder{make_config(server.url(), "responder")};
  responder.on_command("echo", [](const kryten::command_request& r) { return r.args; });
  responder.subscribe("svc.raw", [&responder](const kryten::bus_message& m) {
    responder.publish(m.reply, std::string_view{"not json"});
  });
  responder.subscribe("svc.silent", [](const kryten::bus_message&) {});
  responder.subscribe("svc.upper", [&responder](const kryten::bus_message& m) {
    auto body = json::parse(m.data);
    responder.publish(m.reply, json{{"upper", body["text"].get<std::string>() + "!"}});
  });
  responder.connect();

  kryten::client client{make_config(server.url(), "asker")};
  client.connect();

  SECTION("a command responder") {
    auto r = client.request("kryten.responder.command",
                            {{"command", "echo"}, {"args", {{"k", "v"}}}, {"meta", json::object()}},
                            5s);
    CHECK(r == json{{"service", "responder"},
                    {"command", "echo"},
                    {"success", true},
                    {"data", {{"k", "v"}}}});
  }
  SECTION("a plain subscription answering on the reply subject") {
    CHECK(client.request("svc.upper", {{"text", "hey"}}, 5s) == json{{"upper", "hey!"}});
    // Several in a row, each its own reply.
    for (int i = 0; i < 5; ++i)
      CHECK(client.request("svc.upper", {{"text", std::to_string(i)}}, 5s)
            == json{{"upper", std::to_string(i) + "!"}});
  }
  SECTION("nobody listening: request_error at once") {
    std::string what;
    auto took = time_of([&] {
      try {
        client.request("nobody.listens.here", {{"x", 1}}, 5s);
      } catch (const kryten::request_error& e) {
        what = e.what();
      }
    });
    CHECK_FALSE(what.empty());
    CHECK(what.find("nobody.listens.here") != std::string::npos);
    CHECK(took < 2s);
  }
  SECTION("no reply in time: request_error after the timeout") {
    std::string what;
    auto took = time_of([&] {
      try {
        client.request("svc.silent", json::object(), 300ms);
      } catch (const kryten::request_error& e) {
        what = e.what();
      }
    });
    CHECK_FALSE(what.empty());
    CHECK(took >= 300ms);
    CHECK(took < 2s);
  }
  SECTION("a reply that is not JSON: parse_error") {
    CHECK_THROWS_AS(client.request("svc.raw", json::object(), 5s), json::parse_error);
  }
}

// -- 11. publish / subscribe ---------------------------------------------------------

TEST_CASE("publish and subscribe on plain subjects", "[client][pubsub]") {
  nats_server server;
  recorder<kryten::bus_message> early, late;
  kryten::client client{make_config(server.url())};
  // Before connect: made on connect.
  client.subscribe("test.>", [&](const kryten::bus_message& m) { early.add(m); });
  client.connect();
  // After connect: made at once.
  client.subscribe("other.*", [&](const kryten::bus_message& m) { late.add(m); });

  bus_client bus(server.url());
  bus.subscribe("out.>");
  bus.publish("test.a.b", "hello");
  bus.publish("other.x", std::string("bin\0ary", 7));
  bus.publish("unrelated", "nope");
  bus.flush();
  REQUIRE(early.wait_size(1));
  REQUIRE(late.wait_size(1));
  auto e = early.items()[0];
  CHECK(e.subject == "test.a.b");
  CHECK(e.data == "hello");
  CHECK(e.reply.empty());
  auto l = late.items()[0];
  CHECK(l.subject == "other.x");
  CHECK(l.data == std::string("bin\0ary", 7));

  client.publish("out.text", std::string_view{"plain text"});
  client.publish("out.json", json{{"a", 1}, {"b", {true, nullptr}}});
  auto text = bus.wait_for("out.text", 5s);
  REQUIRE(text);
  CHECK(text->data == "plain text");
  auto js = bus.wait_for("out.json", 5s);
  REQUIRE(js);
  CHECK(json::parse(js->data) == json{{"a", 1}, {"b", {true, nullptr}}});
  CHECK(client.health().publish_errors == 0);
  CHECK(early.size() == 1);
  CHECK(late.size() == 1);
}

// -- 12. embedding ------------------------------------------------------------------

TEST_CASE("a client embedded in the user's actor system", "[client][embedding]") {
  nats_server server;
  caf::actor_system_config sys_cfg;
  kryten::add_message_types(sys_cfg);
  caf::actor_system sys{sys_cfg};

  recorder<std::string> lambda_seen;
  std::promise<kryten::chat_message> actor_got;
  auto actor_future = actor_got.get_future();
  std::atomic<int> actor_calls{0};
  std::atomic<int> second_actor_calls{0};
  {
    kryten::client client{sys, make_config(server.url())};
    CHECK(&client.system() == &sys);
    client.on("chatmsg", [&](const kryten::chat_message& m) { lambda_seen.add(m.username); });

    // The actors take their state as spawn arguments: CAF 0.17 dereferences
    // a null argument tuple for a function actor spawned without any (UBSan
    // reports it).
    auto user_actor = sys.spawn(
      [](caf::event_based_actor*, std::promise<kryten::chat_message>* got,
         std::atomic<int>* calls) -> caf::behavior {
        return {
          [got, calls](const kryten::chat_message& m) {
            if ((*calls)++ == 0)
              got->set_value(m);
          },
        };
      },
      &actor_got, &actor_calls);
    client.on_actor("chatmsg", user_actor);
    // on() with an actor handle registers it the same way.
    auto second = sys.spawn(
      [](caf::event_based_actor*, std::atomic<int>* calls) -> caf::behavior {
        return {
          [](const kryten::raw_event&) {},
          [calls](const kryten::chat_message&) { ++*calls; },
        };
      },
      &second_actor_calls);
    client.on("chatmsg", second);
    client.connect();
    CHECK(client.health().handlers_registered == 3);

    bus_client bus(server.url());
    bus.publish(lounge_chat, chat_event("alice", "to the actor"));
    bus.flush();

    REQUIRE(actor_future.wait_for(5s) == std::future_status::ready);
    auto m = actor_future.get();
    CHECK(m.username == "alice");
    CHECK(m.message == "to the actor");
    CHECK(m.channel == "lounge");
    REQUIRE(lambda_seen.wait_size(1));
    CHECK(lambda_seen.items()[0] == "alice");
    REQUIRE(wait_until([&] { return second_actor_calls.load() == 1; }, 5s));
    // The forwarder counts the user actor's answer as a handler run.
    REQUIRE(wait_until([&] { return client.health().events_handled == 3; }, 5s));
    CHECK(client.health().handler_exceptions == 0);
    CHECK(client.health().handler_timeouts == 0);

    caf::anon_send_exit(user_actor, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(second, caf::exit_reason::user_shutdown);
  }  // the client goes before the system
  CHECK(actor_calls.load() == 1);
}

// -- 13. health ---------------------------------------------------------------------

TEST_CASE("health() reports the connection, counters and timings", "[client][health]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "health-bot")};

  auto before = client.health();
  CHECK(before.service == "health-bot");
  CHECK_FALSE(before.connected);
  CHECK(before.state == "connecting");
  CHECK(before.handlers_registered == 0);
  CHECK(before.events_received == 0);
  CHECK_FALSE(before.last_event_time.has_value());
  CHECK(before.uptime_seconds == 0);
  CHECK_FALSE(client.is_connected());

  recorder<std::string> seen;
  client.on("chatmsg", [&](const kryten::chat_message& m) {
    std::this_thread::sleep_for(2ms);  // a measurable run time
    seen.add(m.message);
  });
  client.on("adduser", [](const kryten::user_join&) {});
  CHECK(client.health().handlers_registered == 2);

  client.connect();
  auto up = client.health();
  CHECK(up.connected);
  CHECK(up.state == "connected");
  CHECK(client.is_connected());
  CHECK(up.channels == std::vector<std::string>{"cytu.be/lounge"});
  CHECK(up.handlers_registered == 2);
  CHECK(up.uptime_seconds >= 0);
  CHECK_FALSE(up.last_event_time.has_value());
  CHECK(up.avg_event_latency_ms == 0);
  CHECK(up.errors == 0);

  bus_client bus(server.url());
  for (int i = 0; i < 3; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();
  REQUIRE(seen.wait_size(3));
  REQUIRE(wait_until([&] { return client.health().events_handled == 3; }, 5s));

  auto after = client.health();
  CHECK(after.events_received == 3);
  REQUIRE(after.last_event_time.has_value());
  CHECK(is_iso8601(*after.last_event_time));
  CHECK(after.avg_event_latency_ms > 0);
  CHECK(after.avg_event_latency_ms >= 2.0);
  CHECK(after.uptime_seconds > 0);
  CHECK(after.errors == 0);

  auto j = after.to_json();
  CHECK(j["service"] == "health-bot");
  CHECK(j["connected"] == true);
  CHECK(j["state"] == "connected");
  CHECK(j["channels"] == json::array({"cytu.be/lounge"}));
  CHECK(j["events_received"] == 3);
  CHECK(j["handlers_registered"] == 2);
  CHECK(j["last_event_time"].is_string());
  for (auto key : {"uptime_seconds", "commands_sent", "errors", "avg_event_latency_ms"})
    CHECK(j.contains(key));

  client.disconnect();
  auto down = client.health();
  CHECK_FALSE(down.connected);
  CHECK(down.state == "disconnected");
  CHECK_FALSE(client.is_connected());
  CHECK(down.to_json()["connected"] == false);
}

// -- 14. connect failure -------------------------------------------------------------

TEST_CASE("connect() to a port with no server throws connect_error", "[client][connect]") {
  int port = kryten::test::free_port();
  auto url = "nats://127.0.0.1:" + std::to_string(port);
  auto cfg = make_config(url);
  cfg.nats.connect_timeout = 1.0;
  kryten::client client{cfg};
  std::string what;
  auto took = time_of([&] {
    try {
      client.connect();
    } catch (const kryten::connect_error& e) {
      what = e.what();
    }
  });
  INFO(what);
  CHECK_FALSE(what.empty());
  CHECK(what.find(url) != std::string::npos);
  CHECK(took < 3s);
  CHECK_FALSE(client.is_connected());
  CHECK_FALSE(client.health().connected);
}

// -- 15. NATS restart ------------------------------------------------------------------

TEST_CASE("the client reconnects after a NATS restart", "[client][reconnect]") {
  nats_server server;
  recorder<std::string> seen;
  kryten::client client{make_config(server.url())};
  client.on("chatmsg", [&](const kryten::chat_message& m) { seen.add(m.message); });
  client.connect();

  {
    bus_client bus(server.url());
    bus.publish(lounge_chat, chat_event("alice", "before"));
    bus.flush();
    REQUIRE(seen.wait_size(1));
  }

  server.stop();
  REQUIRE(wait_until([&] { return !client.health().connected; }, 5s));
  CHECK(client.health().state == "disconnected");
  server.start();
  REQUIRE(wait_until(
    [&] {
      auto h = client.health();
      return h.connected && h.reconnects >= 1;
    },
    10s));
  CHECK(client.health().state == "connected");
  CHECK(client.is_connected());

  bus_client bus(server.url());
  REQUIRE(bus.wait_connected(5s));
  // The client's re-sent subscription reaches the server at about the time
  // it reports the reconnect: publish until an event gets through.
  int sent = 0;
  auto got_one = wait_until(
    [&] {
      bus.publish(lounge_chat, chat_event("alice", "after-" + std::to_string(sent++)));
      bus.flush();
      return seen.wait_size(2, 100ms);
    },
    10s, 0ms);
  REQUIRE(got_one);
  auto items = seen.items();
  CHECK(items[0] == "before");
  CHECK(items[1].rfind("after-", 0) == 0);
  CHECK(client.health().reconnects >= 1);
}

// -- 16. lifecycle ------------------------------------------------------------------------

TEST_CASE("disconnect() is idempotent", "[client][lifecycle]") {
  nats_server server;
  bus_client bus(server.url());
  kryten::client client{make_config(server.url())};
  client.connect();
  REQUIRE(client.is_connected());
  client.disconnect();
  CHECK_FALSE(client.is_connected());
  auto took = time_of([&] { client.disconnect(); });
  CHECK(took < 1s);
  client.disconnect("again");
  CHECK_FALSE(client.is_connected());
  CHECK(client.health().state == "disconnected");
}

TEST_CASE("stop() makes run() return 0", "[client][lifecycle]") {
  nats_server server;
  kryten::client client{make_config(server.url())};
  client.connect();

  SECTION("from another thread") {
    std::promise<int> result;
    auto done = result.get_future();
    std::thread runner{[&] { result.set_value(client.run()); }};
    // run() has to be waiting or not yet started; stop() works either way.
    client.stop("test over");
    bool returned = done.wait_for(5s) == std::future_status::ready;
    if (!returned)
      client.disconnect();  // so that the thread can be joined
    runner.join();
    REQUIRE(returned);
    CHECK(done.get() == 0);
    CHECK_FALSE(client.is_connected());
  }

  SECTION("from a handler") {
    client.on("chatmsg", [&](const kryten::chat_message&) { client.stop("handler said so"); });
    bus_client bus(server.url());
    std::promise<int> result;
    auto done = result.get_future();
    std::thread runner{[&] { result.set_value(client.run()); }};
    bus.publish(lounge_chat, chat_event("alice", "stop please"));
    bus.flush();
    bool returned = done.wait_for(5s) == std::future_status::ready;
    if (!returned)
      client.disconnect();
    runner.join();
    REQUIRE(returned);
    CHECK(done.get() == 0);
    CHECK_FALSE(client.is_connected());
  }
}

TEST_CASE("run() returns 1 when the connection is lost for good", "[client][lifecycle]") {
  nats_server server;
  auto cfg = make_config(server.url());
  cfg.nats.max_reconnect_attempts = 0;
  kryten::client client{cfg};
  client.connect();
  std::promise<int> result;
  auto done = result.get_future();
  std::thread runner{[&] { result.set_value(client.run()); }};
  server.stop();
  bool returned = done.wait_for(5s) == std::future_status::ready;
  if (!returned)
    client.disconnect();
  runner.join();
  REQUIRE(returned);
  CHECK(done.get() == 1);
  CHECK_FALSE(client.health().connected);
}
