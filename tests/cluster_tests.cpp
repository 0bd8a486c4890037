// A service on a 3-node nats-server cluster: failover when the node it is
// connected to dies.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

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
using kryten::test::lounge_chat;
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

namespace {

/// A replica of "shared-bot" that answers "who" with its name, on `url`.
/// Given only its own node, on a cluster that does not advertise the others,
/// its node's death takes it away (cnats would otherwise fail it over to a
/// node the cluster told it of, as in the test above).
/// `calls` counts the requests it handled.
std::unique_ptr<kryten::client> replica(const std::string& url, const std::string& name,
                                        std::atomic<int>& calls) {
  auto cfg = make_config(url, "shared-bot");
  auto c = std::make_unique<kryten::client>(cfg);
  c->on_command("who", [name, &calls](const kryten::command_request&) {
    ++calls;
    return json{{"who", name}};
  });
  c->connect();
  return c;
}

/// Who answered "who" on kryten.shared-bot.command; empty on no answer.
std::string who_answered(bus_client& bus) {
  auto reply = bus.request("kryten.shared-bot.command",
                           json{{"command", "who"}, {"args", json::object()}}.dump(), 2s);
  if (!reply) return {};
  return json::parse(*reply).value("data", json::object()).value("who", "");
}

}  // namespace

TEST_CASE("replicas on different cluster nodes share commands in queue group q",
          "[cluster]") {
  nats_cluster cluster{3, false};
  std::atomic<int> a_calls{0}, b_calls{0};
  auto a = replica(cluster.node(0).url(), "a", a_calls);
  auto b = replica(cluster.node(1).url(), "b", b_calls);
  bus_client requester(cluster.node(2).url());
  // Until node 2 has both queue subscriptions, every request may go to one.
  REQUIRE(wait_until(
    [&] {
      std::set<std::string> seen;
      for (int i = 0; i < 20; ++i) seen.insert(who_answered(requester));
      return seen == std::set<std::string>{"a", "b"};
    },
    10s, 1ms));

  std::map<std::string, int> count;
  a_calls = 0;
  b_calls = 0;
  constexpr int requests = 200;
  for (int i = 0; i < requests; ++i) ++count[who_answered(requester)];
  INFO("a " << count["a"] << ", b " << count["b"] << ", none " << count[""]);
  CHECK(count[""] == 0);  // each answered, by exactly one replica (one reply per request)
  CHECK(count["a"] + count["b"] == requests);
  CHECK(count["a"] >= requests / 10);  // nats-server picks a queue member at random
  CHECK(count["b"] >= requests / 10);
  CHECK(a_calls == count["a"]);  // none handled twice
  CHECK(b_calls == count["b"]);

  cluster.node(0).kill();
  // Once the cluster has dropped a's subscription, b gets every request.
  REQUIRE(wait_until([&] { return who_answered(requester) == "b"; }, 5s, 1ms));
  for (int i = 0; i < 50; ++i) CHECK(who_answered(requester) == "b");
  CHECK(b->health().connected);
  CHECK_FALSE(a->health().connected);
}

namespace {

using time_point = steady::time_point;
using span = std::pair<time_point, time_point>;

std::string join(const std::vector<std::string>& urls) {
  std::string out;
  for (auto& u : urls) out += (out.empty() ? "" : ",") + u;
  return out;
}

}  // namespace

TEST_CASE("a rolling restart of every node, with events flowing, loses none unaccounted for",
          "[cluster][rolling]") {
  nats_cluster cluster{3};
  auto cfg = make_config(cluster.node(0).url(), "rolling-bot");
  cfg.nats.servers = cluster.urls();
  cfg.nats.reconnect_time_wait = 0.2;
  std::mutex mx;        // before the client: its handler uses them until it is gone
  std::set<int> handled;
  kryten::client client{cfg};
  client.on("chatmsg", [&](const kryten::chat_message& m) {
    std::lock_guard<std::mutex> guard{mx};
    handled.insert(std::stoi(m.message));
  });
  client.connect();

  // The publisher starts on the last node, so the nodes it and the service use differ.
  auto urls = cluster.urls();
  bus_client publisher(join({urls[2], urls[1], urls[0]}));
  std::atomic<bool> running{true};
  std::vector<time_point> sent_at;  // by sequence number
  std::thread publish([&] {
    for (int seq = 0; running; ++seq) {
      sent_at.push_back(steady::now());
      publisher.publish(lounge_chat, kryten::test::chat_event("alice", std::to_string(seq)));
      std::this_thread::sleep_for(1ms);
    }
  });
  // Stops the publisher however the test ends (a failed REQUIRE throws).
  struct stopper {
    std::atomic<bool>& running;
    std::thread& t;
    ~stopper() {
      running = false;
      if (t.joinable()) t.join();
    }
  } stop_publisher{running, publish};
  auto handled_count = [&] {
    std::lock_guard<std::mutex> guard{mx};
    return handled.size();
  };

  // Each restart: from stopping the node to the cluster routing again with
  // the service connected. Core NATS may lose what is published meanwhile
  // (a connection closing under a publish, a subscription not yet routed).
  std::vector<span> restarts;
  std::uint64_t service_reconnects = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    INFO("restarting node " << i);
    auto before = handled_count();
    auto from = steady::now();
    cluster.node(i).stop();
    cluster.node(i).start();
    REQUIRE(cluster.wait_formed(10s));
    REQUIRE(wait_until([&] { return client.health().connected; }, 10s));
    restarts.emplace_back(from, steady::now());
    // Events reach the service again before the next node goes.
    REQUIRE(wait_until([&] { return handled_count() > before + 100; }, 10s));
  }
  running = false;
  publish.join();
  publisher.flush();
  const auto published = sent_at.size();
  // Everything still in flight arrives within a second once publishing stopped.
  wait_until([&] { return handled_count() == published; }, 2s);

  auto h = client.health();
  service_reconnects = h.reconnects;
  CHECK(h.connected);
  CHECK(service_reconnects >= 1);  // the service's own node was restarted
  CHECK(h.handler_restarts == 0);
  CHECK(h.dropped_events == 0);
  std::vector<int> unaccounted;
  std::size_t lost = 0;
  auto during_restart = [&](time_point t) {
    for (auto& [from, to] : restarts)
      if (t >= from - 20ms && t <= to + 50ms) return true;  // publishes are flushed a moment later
    return false;
  };
  {
    std::lock_guard<std::mutex> guard{mx};
    for (std::size_t seq = 0; seq < published; ++seq) {
      if (handled.count(static_cast<int>(seq)) != 0) continue;
      ++lost;
      if (!during_restart(sent_at[seq])) unaccounted.push_back(static_cast<int>(seq));
    }
  }
  INFO("published " << published << ", handled " << published - lost << ", lost during restarts "
                    << lost - unaccounted.size() << ", service reconnects " << service_reconnects);
  for (int seq : unaccounted) {
    auto ms = [&](time_point t) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(t - sent_at[0]).count();
    };
    std::string windows;
    for (auto& [from, to] : restarts)
      windows += " [" + std::to_string(ms(from)) + ", " + std::to_string(ms(to)) + "]";
    UNSCOPED_INFO("lost outside a restart: " << seq << " at " << ms(sent_at[static_cast<std::size_t>(seq)])
                                             << " ms; restarts at" << windows);
  }
  CHECK(unaccounted.empty());
  CHECK(lost < published / 4);
}
