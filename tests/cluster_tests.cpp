// A service on a 3-node nats-server cluster: failover when the node it is
// connected to dies.
#include <chrono>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "kryten/kryten.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::capture_sink;
using kryten::test::make_config;
using kryten::test::nats_cluster;
using kryten::test::wait_until;

namespace {

using steady = std::chrono::steady_clock;

/// Answers "who" with "here"; the request goes through `bus`'s node.
bool who_answers(bus_client& bus, const std::string& service) {
  auto reply = bus.request("kryten." + service + ".command",
                           json{{"command", "who"}, {"args", json::object()}, {"meta", json::object()}}
                             .dump(),
                           2s);
  return reply && json::parse(*reply).value("data", json{}) == json{{"who", "here"}};
}

}  // namespace

TEST_CASE("a SIGKILL of the service's cluster node fails it over to the next node",
          "[cluster]") {
  nats_cluster cluster{3};
  const std::string svc = "cluster-bot";
  auto cfg = make_config(cluster.node(0).url(), svc);
  cfg.nats.servers = cluster.urls();  // tried in order: node 0 first
  cfg.nats.reconnect_time_wait = 0.5;
  cfg.service->enable_lifecycle = true;
  cfg.log_level = "INFO";
  auto sink = std::make_shared<capture_sink>();
  auto logger = std::make_shared<spdlog::logger>("cluster-test", sink);
  logger->set_level(spdlog::level::info);

  bus_client observer(cluster.node(2).url());
  observer.subscribe("kryten.lifecycle." + svc + ".>");
  const auto connected = "kryten.lifecycle." + svc + ".connected";
  const auto disconnected = "kryten.lifecycle." + svc + ".disconnected";

  kryten::client client{cfg, logger};
  client.on_command("who", [](const kryten::command_request&) { return json{{"who", "here"}}; });
  client.connect();
  auto first = observer.wait_for(connected, 5s);
  REQUIRE(first);
  CHECK(json::parse(first->data)["servers"] == json::array({cluster.node(0).url()}));
  REQUIRE(who_answers(observer, svc));

  cluster.node(0).kill();
  auto killed = steady::now();
  // A dead node's socket closes at once; cnats moves to the next server
  // without waiting (reconnect_time_wait is between tries of one server).
  auto healthy = [&] {
    auto h = client.health();
    return h.connected && h.reconnects >= 1;
  };
  REQUIRE(wait_until(healthy, 5s));
  auto back_in = std::chrono::duration<double>(steady::now() - killed).count();
  INFO("healthy again " << back_in << " s after the kill");
  CHECK(back_in <= cfg.nats.reconnect_time_wait + 0.5);

  // disconnected, then connected, each naming its server.
  auto again = observer.wait_for(connected, 5s, 2);
  REQUIRE(again);
  auto lost = observer.wait_for(disconnected, 1s);
  REQUIRE(lost);
  auto all = observer.messages();
  long lost_at = -1, again_at = -1, seen_connected = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].subject == disconnected && lost_at < 0) lost_at = static_cast<long>(i);
    if (all[i].subject == connected && ++seen_connected == 2) again_at = static_cast<long>(i);
  }
  CHECK(lost_at >= 0);
  CHECK(lost_at < again_at);
  CHECK(json::parse(lost->data)["servers"] == json::array({cluster.node(0).url()}));
  CHECK(json::parse(again->data)["servers"] == json::array({cluster.node(1).url()}));

  CHECK(who_answers(observer, svc));
  CHECK(client.health().handler_restarts == 0);

  auto log = sink->text();
  INFO(log);
  CHECK_THAT(log, Catch::Contains("disconnected from NATS (" + cluster.node(0).url() + ")"));
  CHECK_THAT(log, Catch::Contains("reconnected to NATS at " + cluster.node(1).url() + " (lost "
                                  + cluster.node(0).url() + ")"));
}
