// The echo bot (examples/echo_bot.cpp) as a subprocess against a real
// nats-server: !ping answers, shadow mutes, the ping command, the warning on a
// group restart notice, signals, exit codes for bad configurations and an
// unreachable server.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "support/bot_fixtures.hpp"
#include "support/temp_file.hpp"
#include "support/timestamps.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/text.hpp"

#ifndef KRYTEN_ECHO_BOT
#error "KRYTEN_ECHO_BOT must name the echo_bot binary"
#endif

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::child_process;
using kryten::test::contains;
using kryten::test::is_uuid4;
using kryten::test::line_with;
using kryten::test::nats_server;
using kryten::test::time_of;

namespace {

constexpr const char* service_name = "echo-test";
constexpr const char* own_command_subject = "kryten.echo-test.command";
constexpr const char* robot_subject = "kryten.robot.command";
constexpr const char* chat_subject = "kryten.events.cytube.lounge.chatMsg";

using kryten::test::temp_file;

json bot_config(const std::string& url) {
  return {{"nats", {{"servers", {url}}, {"connect_timeout", 2}, {"reconnect_time_wait", 0.1}}},
          {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
          {"service", {{"name", service_name}, {"heartbeat_interval", 30}}},
          {"log_level", "INFO"}};
}

/// A chatMsg RawEvent from a user of rank 1, with this file's timestamp and
/// correlation id; `user_object` and `shadow` as kryten::test::chat_payload's.
std::string chat_event(const std::string& user, const std::string& msg, bool user_object = true,
                       bool shadow = false) {
  return kryten::test::raw_event_json(
      "chatMsg", kryten::test::chat_payload(user, msg, 1, user_object, shadow), "lounge",
      "cytu.be", "0b6f7a4e-3f0e-4a53-9a38-4b1d2f0c9e11", "2024-01-02T03:04:05.123456Z");
}

/// A nats-server, an observer on the robot's command subject, and the echo
/// bot, ready (its "ping" command answers) on return.
struct running_bot {
  nats_server server;
  bus_client bus{server.url()};
  temp_file config{bot_config(server.url()).dump(2)};
  std::unique_ptr<child_process> bot;

  running_bot() {
    bus.subscribe(robot_subject);
    bot = std::make_unique<child_process>(
        std::vector<std::string>{KRYTEN_ECHO_BOT, "--config", config.path()});
    std::optional<json> reply;
    bool ready = kryten::test::wait_until(
        [&] {
          if (!bot->running()) return true;  // fail below, with its output
          auto r = bus.request(own_command_subject, R"({"command":"ping"})", 250ms);
          if (!r) return false;
          reply = json::parse(*r, nullptr, false);
          return reply->is_object() && reply->value("success", false);
        },
        20s, 10ms);
    INFO("echo_bot stderr:\n" << bot->stderr_text());
    REQUIRE(bot->running());
    REQUIRE(ready);
    CHECK(reply->at("service") == service_name);
    CHECK(reply->at("command") == "ping");
    CHECK(reply->at("data").at("pong") == true);
    CHECK(reply->at("data").at("instance_id").is_string());
    // Signal handlers go in when run() starts, a moment after the command
    // subscription; the bot says so on stderr.
    REQUIRE(kryten::test::wait_until(
        [&] { return contains(bot->stderr_text(), "running until stopped"); }, 10s));
  }

  /// Stops the bot with `sig`; returns its exit code (nullopt if it hangs 10 s).
  std::optional<int> stop(int sig, std::chrono::milliseconds* took = nullptr) {
    std::optional<int> code;
    bot->signal(sig);
    auto t = time_of([&] { code = bot->wait_for_exit(10s); });
    if (took != nullptr) *took = t;
    return code;
  }
};

/// Runs the bot to completion (20 s deadline) with `args`.
struct finished_bot {
  std::optional<int> code;
  std::string err;
  std::chrono::milliseconds took{0};
};

finished_bot run_bot(std::vector<std::string> args) {
  args.insert(args.begin(), KRYTEN_ECHO_BOT);
  child_process p(args);
  finished_bot out;
  out.took = time_of([&] { out.code = p.wait_for_exit(20s); });
  out.err = p.stderr_text();
  return out;
}

}  // namespace

TEST_CASE("echo bot answers !ping with the robot's say command", "[echo_bot][process]") {
  running_bot b;
  b.bus.publish(chat_subject, chat_event("alice", "!ping"));
  b.bus.flush();
  auto msg = b.bus.wait_for(robot_subject, 5s);
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  REQUIRE(msg);
  auto body = json::parse(msg->data, nullptr, false);
  INFO("body: " << msg->data);
  REQUIRE(body.is_object());
  CHECK(body.at("command") == "say");
  CHECK(body.at("args") == json{{"message", "Pong! alice"}});
  auto& meta = body.at("meta");
  CHECK(meta.at("source") == service_name);
  CHECK(meta.at("channel") == "lounge");
  CHECK(meta.at("domain") == "cytu.be");
  CHECK(is_uuid4(meta.at("request_id").get<std::string>()));
  CHECK(meta.at("timestamp").is_string());
  CHECK(msg->reply.empty());

  SECTION("a message that merely starts with !ping counts") {
    b.bus.publish(chat_subject, chat_event("bob", "!ping please"));
    b.bus.flush();
    auto second = b.bus.wait_for(robot_subject, 5s, 2);
    REQUIRE(second);
    CHECK(json::parse(second->data).at("args").at("message") == "Pong! bob");
  }
}

TEST_CASE("echo bot reads payload.username when there is no user object",
          "[echo_bot][process]") {
  running_bot b;
  b.bus.publish(chat_subject, chat_event("dave", "!ping", /*user_object=*/false));
  b.bus.flush();
  auto msg = b.bus.wait_for(robot_subject, 5s);
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  REQUIRE(msg);
  auto body = json::parse(msg->data);
  CHECK(body.at("command") == "say");
  CHECK(body.at("args").at("message") == "Pong! dave");
  CHECK(body.at("meta").at("source") == service_name);
}

TEST_CASE("echo bot ignores shadow-muted users and ordinary chat", "[echo_bot][process]") {
  running_bot b;
  // One subscription, one handler actor: events are handled in publishing
  // order, so once the last ping is answered the earlier ones have been seen.
  b.bus.publish(chat_subject, chat_event("mallory", "!ping", true, /*shadow=*/true));
  b.bus.publish(chat_subject, chat_event("trent", "!ping", false, /*shadow=*/true));
  b.bus.publish(chat_subject, chat_event("bob", "hello there"));
  b.bus.publish(chat_subject, chat_event("bob", "say !ping"));
  b.bus.publish(chat_subject, chat_event("carol", "!ping"));
  b.bus.flush();
  auto msg = b.bus.wait_for(robot_subject, 5s);
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  REQUIRE(msg);
  CHECK(json::parse(msg->data).at("args").at("message") == "Pong! carol");
  // Any answer to an earlier event went out on the bot's connection before
  // carol's, and NATS keeps one publisher's order: it would be here by now.
  auto all = b.bus.messages_on(robot_subject);
  REQUIRE(all.size() == 1);
  CHECK(json::parse(all[0].data).at("args").at("message") == "Pong! carol");
}

TEST_CASE("echo bot serves unknown commands with success false", "[echo_bot][process]") {
  running_bot b;
  auto reply = b.bus.request(own_command_subject, R"({"command":"nope"})", 5s);
  REQUIRE(reply);
  auto body = json::parse(*reply);
  CHECK(body.at("success") == false);
  CHECK(body.at("service") == service_name);
  CHECK(body.at("error").get<std::string>().find("nope") != std::string::npos);
}

TEST_CASE("echo bot logs a warning naming a group restart's initiator and reason",
          "[echo_bot][process][restart]") {
  running_bot b;
  // PROTOCOL §5. The bot's restart_on_notice is off: it logs and keeps running.
  const std::string initiator = "ops-console-7f3q";
  const std::string reason = "rolling deploy of build 4711";
  b.bus.publish("kryten.lifecycle.group.restart",
                json{{"initiator", initiator},
                     {"reason", reason},
                     {"delay_seconds", 30},
                     {"timestamp", "2024-01-02T03:04:05.123456+00:00"}}
                    .dump());
  b.bus.flush();
  std::string line;
  bool logged = kryten::test::wait_until(
      [&] {
        line = line_with(b.bot->stderr_text(), initiator);
        return !line.empty();
      },
      5s);
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  REQUIRE(logged);
  INFO("line: " << line);
  CHECK(contains(line, "warning"));
  CHECK(contains(line, reason));
  CHECK(b.bot->running());
}

TEST_CASE("SIGTERM stops the echo bot with exit code 0", "[echo_bot][process][signals]") {
  running_bot b;
  std::chrono::milliseconds took{0};
  auto code = b.stop(SIGTERM, &took);
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  CHECK(code == std::optional<int>(0));
  CHECK(took < 2s);
  CHECK(contains(b.bot->stderr_text(), "SIGTERM"));
}

TEST_CASE("SIGINT stops the echo bot with exit code 0", "[echo_bot][process][signals]") {
  running_bot b;
  std::chrono::milliseconds took{0};
  auto code = b.stop(SIGINT, &took);
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  CHECK(code == std::optional<int>(0));
  CHECK(took < 2s);
  CHECK(contains(b.bot->stderr_text(), "SIGINT"));
}

TEST_CASE("echo bot exits with 2 on a bad configuration, naming the field",
          "[echo_bot][process][config]") {
  // No server needed: the configuration is checked before any connection.
  json cfg = bot_config("nats://127.0.0.1:4222");
  std::string expect;
  std::string text;
  SECTION("heartbeat_interval out of range") {
    cfg["service"]["heartbeat_interval"] = 2;
    expect = "service.heartbeat_interval";
  }
  SECTION("no channels") {
    cfg["channels"] = json::array();
    expect = "channels";
  }
  SECTION("missing nats.servers") {
    cfg["nats"].erase("servers");
    expect = "nats.servers";
  }
  SECTION("invalid JSON") {
    text = R"({"nats": {"servers": ["nats://127.0.0.1:4222"]}, "channels": [)";
    expect = "invalid JSON";
  }
  if (text.empty()) text = cfg.dump(2);
  temp_file file{text};
  auto r = run_bot({"--config", file.path()});
  INFO("stderr:\n" << r.err);
  CHECK(r.code == std::optional<int>(2));
  CHECK(contains(r.err, expect));
  CHECK(contains(r.err, "config error"));
}

TEST_CASE("echo bot exits with 2 when the configuration file is missing",
          "[echo_bot][process][config]") {
  std::string missing = "/nonexistent-kryten-dir/bot.json";
  auto r = run_bot({"--config", missing});
  INFO("stderr:\n" << r.err);
  CHECK(r.code == std::optional<int>(2));
  CHECK(contains(r.err, missing));
}

TEST_CASE("echo bot exits with 2 without --config", "[echo_bot][process][config]") {
  ::unsetenv("KRYTEN_CONFIG");  // the bot's fallback; the child inherits our environment
  SECTION("no arguments") {
    auto r = run_bot({});
    INFO("stderr:\n" << r.err);
    CHECK(r.code == std::optional<int>(2));
    CHECK(contains(r.err, "--config"));
  }
  SECTION("--config without a value") {
    auto r = run_bot({"--config"});
    INFO("stderr:\n" << r.err);
    CHECK(r.code == std::optional<int>(2));
    CHECK(contains(r.err, "--config"));
  }
}

TEST_CASE("echo bot exits with 1 when NATS cannot be reached", "[echo_bot][process]") {
  int port = kryten::test::free_port();  // nothing listens there
  std::string url = "nats://127.0.0.1:" + std::to_string(port);
  json cfg = bot_config(url);
  cfg["nats"]["connect_timeout"] = 1;
  temp_file file{cfg.dump()};
  auto r = run_bot({"--config", file.path()});
  INFO("stderr:\n" << r.err);
  CHECK(r.code == std::optional<int>(1));
  CHECK(r.took < 5s);
  CHECK(contains(r.err, url));
}
