// The examples as programs, end to end against a real nats-server:
// room_stats_bot (three cooperating actors) and embedded_bot (a program that
// owns its actor system and embeds the client).
#include <catch2/catch.hpp>

#include <csignal>
#include <string>

#include <nlohmann/json.hpp>

#include "kryten/client.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/temp_file.hpp"

#if !defined(KRYTEN_ROOM_STATS_BOT) || !defined(KRYTEN_EMBEDDED_BOT)
#error "KRYTEN_ROOM_STATS_BOT and KRYTEN_EMBEDDED_BOT must name the example binaries"
#endif

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::child_process;
using kryten::test::make_config;
using kryten::test::nats_server;
using kryten::test::temp_dir;
using kryten::test::temp_file;
using kryten::test::wait_until;

namespace {

const std::string events = "kryten.events.cytube.lounge.";
const std::string robot = "kryten.robot.command";

/// A PROTOCOL.md §7 configuration file for `service`.
std::string config_for(const std::string& url, const std::string& service) {
  return json{{"nats", {{"servers", {url}}, {"connect_timeout", 2}}},
              {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
              {"service", {{"name", service}, {"heartbeat_interval", 30}, {"shutdown_timeout", 3}}},
              {"log_level", "INFO"}}
    .dump();
}

std::string event(const std::string& name, const json& payload) {
  return json{{"event_name", name},
              {"payload", payload},
              {"channel", "lounge"},
              {"domain", "cytu.be"},
              {"timestamp", "2024-01-15T10:30:00.123456+00:00"}}
    .dump();
}

std::string chat(const std::string& user, const std::string& msg) {
  return event("chatMsg", {{"user", {{"name", user}, {"rank", 1}}}, {"msg", msg},
                           {"meta", json::object()}});
}

/// Sends `command` to `service` until it answers (the bot is up) or the deadline.
std::optional<json> command(bus_client& bus, const std::string& service,
                            const std::string& name, std::chrono::milliseconds deadline = 10s) {
  std::optional<json> reply;
  wait_until(
    [&] {
      auto r = bus.request("kryten." + service + ".command",
                           json{{"command", name}}.dump(), 500ms);
      if (r)
        reply = json::parse(*r);
      return reply.has_value();
    },
    deadline);
  return reply;
}

}  // namespace

TEST_CASE("room_stats_bot: presence, counts, !stats and the stats command", "[examples]") {
  nats_server server;  // without JetStream: the bot counts in memory
  temp_file config{config_for(server.url(), "room-stats")};
  child_process bot{{KRYTEN_ROOM_STATS_BOT, "--config", config.path()}};
  bus_client bus{server.url()};
  bus.subscribe(robot);
  REQUIRE(command(bus, "room-stats", "ping"));

  for (auto* user : {"alice", "bob", "carol"})
    bus.publish(events + "addUser", event("addUser", {{"name", user}, {"rank", 1}}));
  bus.publish(events + "chatMsg", chat("alice", "hi"));
  bus.publish(events + "chatMsg", chat("bob", "hello"));
  bus.publish(events + "chatMsg", chat("alice", "how is everyone"));
  bus.publish(events + "chatMsg", chat("carol", "bye"));
  bus.publish(events + "userLeave", event("userLeave", {{"name", "carol"}}));

  const json expected{{"online", json::array({"alice", "bob"})},
                      {"messages", {{"alice", 2}, {"bob", 1}, {"carol", 1}}}};
  json data;
  // Each actor takes its events in order; wait until all have been taken.
  bool matched = wait_until(
    [&] {
      auto reply = command(bus, "room-stats", "stats", 1s);
      if (!reply || !(*reply)["success"].get<bool>())
        return false;
      data = (*reply)["data"];
      return data == expected;
    },
    10s);
  INFO(data.dump());
  REQUIRE(matched);
  CHECK(data["online"] == json::array({"alice", "bob"}));
  CHECK(data["messages"]["alice"] == 2);
  CHECK(data["messages"]["bob"] == 1);
  CHECK(data["messages"]["carol"] == 1);
  CHECK(data["messages"].size() == 3);

  bus.publish(events + "chatMsg", chat("bob", "!stats"));
  auto say = bus.wait_for(robot, 5s);
  REQUIRE(say);
  auto body = json::parse(say->data);
  CHECK(body["command"] == "say");
  CHECK(body["args"]["message"] == "Online (2): alice, bob. Messages: alice 2, bob 1, carol 1.");
  CHECK(body["meta"]["source"] == "room-stats");
  CHECK(body["meta"]["channel"] == "lounge");
  CHECK(body["meta"]["domain"] == "cytu.be");
  // Without JetStream it says, once, that the counts live in memory only.
  CHECK(wait_until(
    [&] { return bot.stderr_text().find("counts kept in memory only") != std::string::npos; },
    10s));

  bot.signal(SIGTERM);
  auto code = bot.wait_for_exit(5s);
  REQUIRE(code);
  CHECK(*code == 0);
}

namespace {

/// The bot's `stats` data once it equals `expected` (nullopt at the deadline).
std::optional<json> stats_when(bus_client& bus, const json& expected) {
  json data;
  bool matched = wait_until(
    [&] {
      auto reply = command(bus, "room-stats", "stats", 1s);
      if (!reply || !(*reply)["success"].get<bool>())
        return false;
      data = (*reply)["data"];
      return data["messages"] == expected;
    },
    10s);
  INFO("last stats: " << data.dump());
  CHECK(matched);
  if (!matched)
    return std::nullopt;
  return data;
}

}  // namespace

TEST_CASE("room_stats_bot keeps its counts in a KV bucket across a restart", "[examples][kv]") {
  temp_dir store;
  nats_server server{nats_server::options{"", "", "", "", store.path()}};
  temp_file config{config_for(server.url(), "room-stats")};
  bus_client bus{server.url()};
  // Reads the bucket as another service would (kryten-py: kv_get(parse_json=True)).
  kryten::client reader{make_config(server.url(), "reader")};
  reader.connect();
  auto stored_counts = [&] {
    try {
      return reader.kv("room_stats").get_json("messages.lounge").value_or(json());
    } catch (const kryten::kv_error&) {
      return json();  // no bucket yet
    }
  };
  auto stored_when = [&](const json& expected) {
    json seen;
    bool ok = wait_until([&] { return (seen = stored_counts()) == expected; }, 10s);
    INFO("stored: " << seen.dump());
    CHECK(ok);
    return ok;
  };
  {
    child_process bot{{KRYTEN_ROOM_STATS_BOT, "--config", config.path()}};
    REQUIRE(command(bus, "room-stats", "ping"));
    bus.publish(events + "chatMsg", chat("alice", "hi"));
    bus.publish(events + "chatMsg", chat("alice", "again"));
    bus.publish(events + "chatMsg", chat("bob", "hello"));
    REQUIRE(stats_when(bus, {{"alice", 2}, {"bob", 1}}));
    REQUIRE(stored_when({{"alice", 2}, {"bob", 1}}));
    bot.signal(SIGTERM);
    auto code = bot.wait_for_exit(5s);
    REQUIRE(code);
    CHECK(*code == 0);
    CHECK(bot.stderr_text().find("memory only") == std::string::npos);
  }
  // The restarted bot starts from the stored counts and adds to them.
  child_process bot{{KRYTEN_ROOM_STATS_BOT, "--config", config.path()}};
  REQUIRE(command(bus, "room-stats", "ping"));
  REQUIRE(stats_when(bus, {{"alice", 2}, {"bob", 1}}));
  bus.publish(events + "chatMsg", chat("bob", "back"));
  bus.publish(events + "chatMsg", chat("carol", "new here"));
  const json after{{"alice", 2}, {"bob", 2}, {"carol", 1}};
  REQUIRE(stats_when(bus, after));
  CHECK(stored_when(after));
  bot.signal(SIGTERM);
  auto code = bot.wait_for_exit(5s);
  REQUIRE(code);
  CHECK(*code == 0);
  reader.disconnect();
}

TEST_CASE("embedded_bot: !ping answered, SIGTERM gives the shutdown event and exit 0",
          "[examples]") {
  nats_server server;
  temp_file config{config_for(server.url(), "embedded")};
  bus_client bus{server.url()};
  bus.subscribe(robot);
  bus.subscribe("kryten.lifecycle.embedded.>");
  child_process bot{{KRYTEN_EMBEDDED_BOT, "--config", config.path()}};
  auto startup = bus.wait_for("kryten.lifecycle.embedded.startup", 10s);
  REQUIRE(startup);

  bus.publish(events + "chatMsg", chat("dave", "!ping"));
  auto say = bus.wait_for(robot, 5s);
  REQUIRE(say);
  auto body = json::parse(say->data);
  CHECK(body["command"] == "say");
  CHECK(body["args"]["message"] == "Pong! dave");
  CHECK(body["meta"]["source"] == "embedded");

  auto sent = std::chrono::steady_clock::now();
  bot.signal(SIGTERM);
  auto code = bot.wait_for_exit(4s);  // shutdown_timeout (3 s) + 1 s
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - sent < 4s);
  auto shutdown = bus.wait_for("kryten.lifecycle.embedded.shutdown", 2s);
  REQUIRE(shutdown);
  CHECK(json::parse(shutdown->data)["reason"] == "Received SIGTERM");
  CHECK(bot.stderr_text().find("received SIGTERM") != std::string::npos);
}
