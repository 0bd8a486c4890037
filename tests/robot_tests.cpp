// kryten::robot against a real nats-server: every helper's subject and JSON
// are kryten-py v0.17's (client.py), chat and PMs are spaced by the throttle
// without blocking the caller, and the request/reply helpers read Kryten-
// Robot's replies (a kryten client named "robot" plays the robot).
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "kryten/client.hpp"
#include "kryten/robot.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"
#include "support/timestamps.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::capture_sink;
using kryten::test::is_iso8601;
using kryten::test::is_uuid4;
using kryten::test::make_config;
using kryten::test::nats_server;

namespace {

const std::string robot_subject = "kryten.robot.command";

/// The n-th body on kryten.robot.command, with PROTOCOL §2's meta checked
/// (its channel by the caller: it depends on the command).
json command_body(bus_client& bus, std::size_t n) {
  auto m = bus.wait_for(robot_subject, 5s, n);
  REQUIRE(m);
  auto body = json::parse(m->data);
  INFO(body.dump());
  CHECK(body.size() == 3);  // command, args, meta: nothing else
  CHECK(body["meta"]["source"] == "bot");
  CHECK(body["meta"]["domain"] == "cytu.be");
  CHECK(is_uuid4(body["meta"].value("request_id", "")));
  CHECK(is_iso8601(body["meta"].value("timestamp", "")));
  return body;
}

}  // namespace

TEST_CASE("robot helpers send kryten-py's commands", "[robot]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe(robot_subject);
  auto cfg = make_config(server.url(), "bot");
  cfg.chat_min_delay = 0;  // spacing is the next test's subject
  cfg.chat_jitter = 0;
  kryten::client client{cfg};
  client.connect();
  kryten::robot robot{client};

  robot.send_chat("Hello!");
  robot.send_pm("alice", "psst", {"", "cinema"});
  robot.mute_user("spammer");
  robot.shadow_mute_user("troll");
  robot.unmute_user("reformed");
  robot.kick_user("rude", "be nice");
  robot.kick_user("quiet");
  robot.ban_user("worse", "spam");
  robot.unban(12345);
  robot.move_media(7, 3);
  robot.move_media(8, "prepend");
  robot.delete_media(9);
  robot.clear_playlist();

  // In kryten-py's words: (command, args) of each call above.
  const std::vector<std::pair<std::string, json>> expected{
    {"say", {{"message", "Hello!"}}},
    {"pm", {{"to", "alice"}, {"msg", "psst"}}},
    {"chat", {{"message", "/mute spammer"}}},
    {"chat", {{"message", "/smute troll"}}},
    {"chat", {{"message", "/unmute reformed"}}},
    {"kick", {{"name", "rude"}, {"reason", "be nice"}}},
    {"kick", {{"name", "quiet"}}},
    {"ban", {{"name", "worse"}, {"reason", "spam"}}},
    {"unban", {{"id", 12345}}},
    {"mvvideo", {{"from", 7}, {"after", 3}}},
    {"mvvideo", {{"from", 8}, {"after", "prepend"}}},
    {"rmvideo", {{"uid", 9}}},
    {"clear", json::object()}};
  // Chat goes through the throttle actor, the rest straight out: match by content.
  // The PM names its own channel; every other command goes to the client's.
  std::vector<json> seen;
  for (std::size_t n = 1; n <= expected.size(); ++n) {
    auto body = command_body(bus, n);
    INFO(body.dump());
    CHECK(body["meta"]["channel"] == (body["command"] == "pm" ? "cinema" : "lounge"));
    seen.push_back(std::move(body));
  }
  for (auto& [command, args] : expected) {
    INFO(command << " " << args.dump());
    CHECK(std::count_if(seen.begin(), seen.end(), [&](const json& b) {
            return b["command"] == command && b["args"] == args;
          }) == 1);
  }
  CHECK(client.health().commands_sent == expected.size());
}

TEST_CASE("send_chat after run() returned throws not_connected instead of losing the message",
          "[robot]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "bot")};
  client.connect();
  client.stop("done");
  REQUIRE(client.run() == 0);
  kryten::robot robot{client};
  try {
    robot.send_chat("too soon");
    FAIL("send_chat did not throw");
  } catch (const kryten::request_error& e) {
    CHECK(e.code() == kryten::error_code::not_connected);
  }
}

TEST_CASE("send_chat and send_pm are spaced by the throttle, and callers do not wait", "[robot]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe(robot_subject);
  auto cfg = make_config(server.url(), "bot");
  cfg.chat_min_delay = 0.3;
  cfg.chat_jitter = 0.2;
  kryten::client client{cfg};
  client.connect();
  kryten::robot robot{client};

  auto start = std::chrono::steady_clock::now();
  robot.send_chat("one");
  robot.send_pm("bob", "two");
  robot.send_chat("three");
  robot.kick_user("x");  // not a chat message: not throttled
  CHECK(std::chrono::steady_clock::now() - start < 200ms);

  std::vector<std::chrono::steady_clock::time_point> chat_at;
  std::vector<std::string> order;
  for (std::size_t n = 1; n <= 4; ++n) {
    auto m = bus.wait_for(robot_subject, 5s, n);
    REQUIRE(m);
    auto body = json::parse(m->data);
    if (body["command"] == "kick") {
      CHECK(n <= 2);  // it did not wait behind the chat queue
      continue;
    }
    chat_at.push_back(std::chrono::steady_clock::now());
    order.push_back(body["args"].value("message", body["args"].value("msg", "")));
  }
  CHECK(order == std::vector<std::string>{"one", "two", "three"});
  REQUIRE(chat_at.size() == 3);
  for (std::size_t i = 1; i < chat_at.size(); ++i) {
    auto gap = chat_at[i] - chat_at[i - 1];
    INFO("gap " << i << ": " << std::chrono::duration<double>(gap).count() << " s");
    CHECK(gap >= 250ms);  // 0.3 s, less the arrival timing's slack
    CHECK(gap <= 900ms);  // 0.3 + 0.2 s, plus slack
  }
}

TEST_CASE("chat messages still waiting in the throttle at shutdown are logged, and do not hold it",
          "[robot]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe(robot_subject);
  auto sink = std::make_shared<capture_sink>();
  auto logger = std::make_shared<spdlog::logger>("throttle-test", sink);
  auto cfg = make_config(server.url(), "bot");
  cfg.chat_min_delay = 60;  // the second and third wait past the shutdown
  std::chrono::steady_clock::time_point stopping;
  {
    kryten::client client{cfg, logger};
    client.connect();
    kryten::robot robot{client};
    robot.send_chat("one");
    robot.send_chat("two");
    robot.send_pm("bob", "three");
    REQUIRE(bus.wait_for(robot_subject, 5s, 1));
    stopping = std::chrono::steady_clock::now();
    client.stop("done");
    REQUIRE(client.run() == 0);
  }
  // The throttle's timer (60 s away) does not hold the shutdown.
  CHECK(std::chrono::steady_clock::now() - stopping < 10s);
  INFO(sink->text());
  CHECK(sink->text().find("chat throttle: stopping with 2 chat message(s) waiting for their turn; "
                          "they are not sent (the first to kryten.robot.command)")
        != std::string::npos);
}

TEST_CASE("robot requests: add_media's uid, get_user, get_channels, get_services", "[robot]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe(robot_subject);
  // Kryten-Robot's replies (robot_command_handler.py, 1.8.0).
  kryten::client fake_robot{make_config(server.url(), "robot")};
  bool refuse = false;
  fake_robot.on_command("addvideo", [&](const kryten::command_request&) -> json {
    if (refuse)
      return {{"success", false}, {"error", "Video not found"}, {"queue_fail", json::object()}};
    return {{"success", true}, {"uid", 42}};
  });
  fake_robot.on_command("state.user", [](const kryten::command_request&) {
    return json{{"user", {{"name", "alice"}, {"rank", 2}}}, {"profile", {{"image", ""}}}};
  });
  fake_robot.on_command("system.channels", [](const kryten::command_request&) {
    return json{{"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}, {"connected", true}}}}};
  });
  fake_robot.on_command("system.services", [](const kryten::command_request&) {
    return json{{"services", json::array({{{"name", "bot"}}})}, {"count", 1}, {"active_count", 1}};
  });
  fake_robot.connect();
  kryten::client client{make_config(server.url(), "bot")};
  client.connect();
  kryten::robot robot{client};

  CHECK(robot.add_media("yt", "dQw4w9WgXcQ") == 42);
  auto add = json::parse(bus.wait_for(robot_subject, 5s, 1)->data);
  INFO(add.dump());
  CHECK(add["command"] == "addvideo");
  CHECK(add["service"] == "robot");
  CHECK(add["args"] == json{{"type", "yt"}, {"id", "dQw4w9WgXcQ"}, {"pos", "end"}, {"temp", true}});
  CHECK(add["meta"]["source"] == "bot");
  CHECK(add["meta"]["domain"] == "cytu.be");
  CHECK(add["meta"]["channel"] == "lounge");
  CHECK(is_iso8601(add["meta"].value("timestamp", "")));

  refuse = true;
  CHECK_THROWS_AS(robot.add_media("yt", "nope", "next", false), kryten::robot_error);

  auto user = robot.get_user("alice");
  REQUIRE(user);
  CHECK((*user)["rank"] == 2);
  CHECK(json::parse(bus.wait_for(robot_subject, 5s, 3)->data)
        == json{{"service", "robot"}, {"command", "state.user"}, {"username", "alice"}});

  auto channels = robot.get_channels();
  REQUIRE(channels.is_array());
  CHECK(channels[0]["channel"] == "lounge");
  CHECK(json::parse(bus.wait_for(robot_subject, 5s, 4)->data)
        == json{{"service", "robot"}, {"command", "system.channels"}});

  auto services = robot.get_services();
  CHECK(services["count"] == 1);
  CHECK(json::parse(bus.wait_for(robot_subject, 5s, 5)->data)
        == json{{"service", "robot"}, {"command", "system.services"}});

  // No robot at all: the transport's error, typed.
  fake_robot.disconnect();
  try {
    robot.get_services(500ms);
    FAIL("no robot answered, yet get_services returned");
  } catch (const kryten::request_error& e) {
    CHECK((e.code() == kryten::error_code::no_responders || e.code() == kryten::error_code::timeout));
  }
}
