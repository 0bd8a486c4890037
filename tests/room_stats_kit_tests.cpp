// room_stats_bot's actors tested with kryten::testing: no NATS server, the
// real runtime and the bot's real actors. This file is the README's example
// of the test kit, and a complete one: every feature a bot's test needs.
#include <catch2/catch.hpp>

#include <kryten/testing.hpp>

#include "room_stats.hpp"

using json = nlohmann::json;
using kryten::testing::eventually;

namespace {

json chat(const std::string& user, const std::string& msg) {
  return {{"user", {{"name", user}, {"rank", 1}}}, {"msg", msg}, {"meta", json::object()}};
}

/// The `stats` command's data, once it equals `expected`.
bool stats_become(kryten::testing::test_service& svc, const json& expected, json& seen) {
  return eventually([&] {
    auto reply = svc.command("stats");
    seen = reply ? reply->value("data", *reply) : json("no reply");
    return seen == expected;
  });
}

}  // namespace

TEST_CASE("room_stats_bot under kryten::testing: counts, !stats, the KV bucket, lifecycle",
          "[kit][examples]") {
  kryten::testing::test_service svc{"room-stats"};  // channel cytu.be/lounge
  // What a previous run stored: the bot starts from it.
  svc.kv_create("room_stats");
  svc.kv_put("room_stats", "messages.lounge", {{"alice", 5}});
  auto actors = add_room_stats(svc.client());
  svc.own(actors.presence);
  svc.own(actors.chatters);
  svc.start();

  auto startup = svc.wait_for_lifecycle("startup");
  REQUIRE(startup);
  CHECK((*startup)["service"] == "room-stats");

  svc.inject("addUser", {{"name", "alice"}, {"rank", 1}});
  svc.inject("addUser", {{"name", "bob"}, {"rank", 0}});
  svc.inject("chatMsg", chat("alice", "hi"));
  svc.inject("chatMsg", chat("bob", "hello"));
  svc.inject("userLeave", {{"name", "bob"}});

  json seen;
  const json expected{{"online", {"alice"}}, {"messages", {{"alice", 6}, {"bob", 1}}}};
  bool became = stats_become(svc, expected, seen);
  INFO("stats: " << seen.dump());
  REQUIRE(became);

  // Every change is written back, as kryten-py's kv_put(as_json=True) writes it.
  CHECK(eventually(
    [&] { return svc.kv_get("room_stats", "messages.lounge") == json{{"alice", 6}, {"bob", 1}}; }));

  // "!stats" makes the robot say the line: the command, with its real subject and body.
  svc.inject("chatMsg", chat("carol", "!stats"));
  auto say = svc.wait_for_command("robot");
  REQUIRE(say);
  CHECK((*say)["command"] == "say");
  CHECK((*say)["args"]["message"] == "Online (1): alice. Messages: alice 6, bob 1.");
  CHECK((*say)["meta"]["source"] == "room-stats");
  CHECK((*say)["meta"]["channel"] == "lounge");
  CHECK(svc.sent("kryten.robot.command").size() == 1);

  // After a robot restart the bot announces itself again.
  svc.robot_startup();
  CHECK(svc.wait_for_lifecycle("startup", std::chrono::seconds(5), 2));

  svc.stop();
  auto shutdown = svc.wait_for_lifecycle("shutdown");
  REQUIRE(shutdown);
  CHECK((*shutdown)["service"] == "room-stats");
}

TEST_CASE("kryten::testing answers the service's requests and commands", "[kit]") {
  kryten::testing::test_service svc{"asker"};
  svc.client().on_command("whois", [&](const kryten::command_request& req) {
    kryten::robot robot{svc.client()};
    auto user = robot.get_user(req.args.value("name", ""));
    return json{{"rank", user ? user->value("rank", -1) : -1}};
  });
  svc.answer("kryten.robot.command", [](const json& req) -> std::optional<json> {
    if (req.value("command", "") != "state.user")
      return std::nullopt;
    return json{{"service", "robot"}, {"command", "state.user"}, {"success", true},
                {"data", {{"user", {{"name", req["username"]}, {"rank", 3}}}}}};
  });
  svc.start();

  auto reply = svc.command("whois", {{"name", "alice"}});
  REQUIRE(reply);
  CHECK((*reply)["success"] == true);
  CHECK((*reply)["data"] == json{{"rank", 3}});
  // The request the service made, as the robot would have received it.
  auto asked = svc.wait_for("kryten.robot.command");
  REQUIRE(asked);
  CHECK(asked->json() == json{{"service", "robot"}, {"command", "state.user"}, {"username", "alice"}});
  CHECK_FALSE(asked->reply.empty());

  // Nobody answers other subjects: the service sees no_responders.
  CHECK_THROWS_AS(svc.client().request("kryten.nobody.command", json::object()),
                  kryten::request_error);
  // Unknown commands of its own get the runtime's error reply.
  auto unknown = svc.command("nope");
  REQUIRE(unknown);
  CHECK((*unknown)["success"] == false);
}

TEST_CASE("kryten::testing: a dropped connection is seen as on NATS", "[kit]") {
  kryten::testing::test_service svc{"flaky"};
  svc.start();
  svc.disconnect_bus("server restart");
  CHECK(eventually([&] { return !svc.client().health().connected; }));
  svc.reconnect_bus();
  // As on NATS: both are published once the connection is back, in order.
  auto down = svc.wait_for_lifecycle("disconnected");
  REQUIRE(down);
  auto up = svc.wait_for_lifecycle("connected");
  REQUIRE(up);
  CHECK(svc.wait_for_lifecycle("connected", std::chrono::seconds(5), 2));
  CHECK(eventually([&] { return svc.client().health().connected; }));
}
