// Least privilege: the echo bot under exactly the permissions the README
// states (docs/nats-permissions.conf), and a permission violation reported by
// the server is logged at error level and counted.
#include <catch2/catch.hpp>

#include <csignal>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <kryten/kryten.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/temp_file.hpp"
#include "support/text.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::capture_sink;
using kryten::test::child_process;
using kryten::test::contains;
using kryten::test::nats_server;
using kryten::test::temp_file;
using kryten::test::wait_until;

namespace {

constexpr const char* bot_password = "pw-echo-Jx71";
constexpr const char* peer_password = "pw-peer-Lq42";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// nats-server with the documented permissions for user "echo-bot" and a
/// user "peer" (the test's own view of the bus) allowed everything.
nats_server least_privilege_server() {
  nats_server::options o;
  o.config = read_file(KRYTEN_SOURCE_DIR "/docs/nats-permissions.conf") +
             "\nauthorization { users = [\n"
             "  { user: \"echo-bot\", password: \"" + bot_password +
             "\", permissions: $KRYTEN_ECHO_BOT }\n"
             "  { user: \"peer\", password: \"" + peer_password + "\" }\n] }\n";
  return nats_server{o};
}

json bot_config(const std::string& url) {
  return {{"nats",
           {{"servers", {url}}, {"user", "echo-bot"}, {"password", bot_password},
            {"connect_timeout", 2}}},
          {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
          {"service", {{"name", "echo-bot"}, {"health_port", nullptr}}},
          {"log_level", "INFO"}};
}

std::string command(const std::string& name) {
  return json{{"command", name}, {"args", json::object()}, {"meta", json::object()}}.dump();
}

}  // namespace

TEST_CASE("the echo bot works under exactly the documented NATS permissions",
          "[permissions][process]") {
  auto server = least_privilege_server();
  bus_client peer{server.url(), "peer", peer_password};
  peer.subscribe("kryten.robot.command");
  peer.subscribe("kryten.lifecycle.echo-bot.>");
  temp_file cfg{bot_config(server.url()).dump()};
  child_process bot({KRYTEN_ECHO_BOT, "--config", cfg.path()});
  auto stderr_text = [&] { return bot.stderr_text(); };

  // Its own command, in queue group q, answered to the peer's inbox.
  std::optional<json> pong;
  REQUIRE(wait_until(
    [&] {
      auto r = peer.request("kryten.echo-bot.command", command("ping"), 250ms);
      if (r) pong = json::parse(*r, nullptr, false);
      return r.has_value() || !bot.running();
    },
    20s, 10ms));
  INFO("echo_bot stderr:\n" << stderr_text());
  REQUIRE(pong);
  CHECK(pong->value("success", false));
  CHECK(peer.wait_for("kryten.lifecycle.echo-bot.startup", 5s));

  // An event in, the robot's say command out.
  peer.publish("kryten.events.cytube.lounge.chatMsg",
               kryten::test::raw_event_json(
                 "chatMsg", kryten::test::chat_payload("alice", "!ping", 1, true, false),
                 "lounge", "cytu.be"));
  peer.flush();
  auto say = peer.wait_for("kryten.robot.command", 5s);
  REQUIRE(say);
  CHECK(json::parse(say->data).at("args").at("message") == "Pong! alice");

  // Discovery, the Service API and system.* commands.
  peer.publish("kryten.service.discovery.poll", "{}");
  CHECK(peer.wait_for("kryten.lifecycle.echo-bot.startup", 5s, 2));
  auto srv = peer.request("$SRV.PING.echo-bot", "", 2s);
  REQUIRE(srv);
  CHECK(json::parse(*srv).at("name") == "echo-bot");
  auto stats = peer.request("kryten.echo-bot.command", command("system.stats"), 2s);
  REQUIRE(stats);
  CHECK(json::parse(*stats).value("success", false));

  bot.signal(SIGTERM);
  CHECK(bot.wait_for_exit(10s) == 0);
  CHECK(peer.wait_for("kryten.lifecycle.echo-bot.shutdown", 5s));
  auto log = stderr_text();
  CHECK_FALSE(contains(log, "Permissions Violation"));
  CHECK_FALSE(contains(log, " error "));
}

TEST_CASE("a permission violation is logged at error level and counted",
          "[permissions][process]") {
  auto server = least_privilege_server();
  auto cfg = kryten::parse_config(bot_config(server.url()).dump());
  auto sink = std::make_shared<capture_sink>();
  auto logger = std::make_shared<spdlog::logger>("permissions-test", sink);
  kryten::client client{cfg, logger};
  client.connect();
  client.publish("kryten.lifecycle.someone-else.startup", std::string_view{"{}"});
  REQUIRE(wait_until([&] { return client.health().permission_errors == 1; }, 5s));
  auto h = client.health();
  CHECK(h.errors >= 1);
  CHECK(h.connected);  // a violation is reported, the connection stays
  auto log = sink->text();
  INFO(log);
  CHECK(contains(log, "error"));
  CHECK(contains(log, "Permissions Violation for Publish to"));
  CHECK(contains(log, "kryten.lifecycle.someone-else.startup"));
  client.disconnect();
}
