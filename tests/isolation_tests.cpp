// Isolation and lifetimes: whatever user handlers do, the runtime's own
// actors keep working (heartbeats, built-in commands, probes, shutdown); a
// user's actor made by a factory is really restarted; one client lifecycle;
// the shutdown drain accounts for every event; untrusted delays are clamped.
//
// Each test starts its own nats-server on a free loopback port. Waits are
// conditions with deadlines; the sleeps are inside handlers whose blocking is
// the subject of a test.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include "kryten/client.hpp"
#include "kryten/lifecycle.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"
#include "support/timestamps.hpp"
#include "support/process.hpp"
#include "support/temp_file.hpp"
#include "support/text.hpp"

#ifndef KRYTEN_ISOLATION_BOT
#error "KRYTEN_ISOLATION_BOT must name the isolation_bot binary"
#endif

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::capture_sink;
using kryten::test::chat_event;
using kryten::test::child_process;
using kryten::test::contains;
using kryten::test::latch;
using kryten::test::lounge_chat;
using kryten::test::make_config;
using kryten::test::nats_server;
using kryten::test::recorder;
using kryten::test::temp_file;
using kryten::test::time_of;
using kryten::test::wait_until;

namespace {

using steady = std::chrono::steady_clock;

std::size_t scheduler_threads() {
  return std::max(2u, std::thread::hardware_concurrency());
}

json bot_config(const nats_server& server, const std::string& service, json service_extra) {
  json svc{{"name", service}, {"version", "1.0.0"}};
  for (auto& [k, v] : service_extra.items())
    svc[k] = v;
  return {{"nats", {{"servers", {server.url()}}, {"connect_timeout", 2}}},
          {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
          {"service", svc},
          {"log_level", "INFO"}};
}

/// The round trip of a built-in ping command; nullopt without an answer in 2 s.
std::optional<std::chrono::milliseconds> ping_command(bus_client& bus, const std::string& service) {
  std::optional<std::string> reply;
  auto took = time_of([&] {
    reply = bus.request("kryten." + service + ".command", R"({"command": "ping"})", 2s);
  });
  if (!reply || !json::parse(*reply).value("success", false))
    return std::nullopt;
  return took;
}

/// How long a "!ping" in the lounge takes to come back as a robot say command.
std::optional<std::chrono::milliseconds> chat_ping(bus_client& bus, std::size_t nth) {
  auto start = steady::now();
  bus.publish(lounge_chat, chat_event("alice", "!ping"));
  bus.flush();
  if (!bus.wait_for("kryten.robot.command", 2s, nth))
    return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
}

/// Seconds between consecutive payload timestamps (the sender's clock).
std::vector<double> heartbeat_gaps(const std::vector<kryten::test::bus_message>& beats) {
  std::vector<long long> at;
  for (auto& b : beats)
    if (auto us = kryten::test::iso8601_us(json::parse(b.data).value("timestamp", "")))
      at.push_back(*us);
  std::vector<double> gaps;
  for (std::size_t i = 1; i < at.size(); ++i)
    gaps.push_back((at[i] - at[i - 1]) / 1e6);
  return gaps;
}

}  // namespace

// -- the control plane never shares threads with user code ----------------------------

TEST_CASE("blocked handlers (2 x scheduler threads) stall nothing but themselves",
          "[isolation][process]") {
  nats_server server;
  bus_client bus(server.url());
  const std::string svc = "iso-block";
  bus.subscribe("kryten.lifecycle." + svc + ".>");
  bus.subscribe("kryten.robot.command");
  temp_file cfg{bot_config(server, svc, {{"heartbeat_interval", 5}, {"shutdown_timeout", 3},
                                           {"health_port", kryten::test::free_port()},
                                           {"health_host", "127.0.0.1"}})
                  .dump()};
  auto blockers = std::to_string(2 * scheduler_threads());
  child_process bot{{KRYTEN_ISOLATION_BOT, "--config", cfg.path(), "--block", blockers,
                     "--block-seconds", "20"}};
  REQUIRE(bus.wait_for("kryten.lifecycle." + svc + ".startup", 10s));
  INFO("bot stderr:\n" << bot.stderr_text());

  bus.publish(lounge_chat, chat_event("mallory", "block"));
  bus.flush();
  // Every blocker is in its sleep once a ping behind them is answered...
  auto first = chat_ping(bus, 1);
  REQUIRE(first);
  // ...and while they block, the runtime and the fast handler answer at once.
  for (int i = 0; i < 5; ++i) {
    auto cmd = ping_command(bus, svc);
    REQUIRE(cmd);
    CHECK(*cmd < 200ms);
    auto chat = chat_ping(bus, static_cast<std::size_t>(i + 2));
    REQUIRE(chat);
    CHECK(*chat < 100ms);
  }
  // Two heartbeats at the interval while the blockers hold their threads.
  const auto beat = "kryten.lifecycle." + svc + ".heartbeat";
  REQUIRE(bus.wait_for(beat, 12s, 2));
  for (auto gap : heartbeat_gaps(bus.messages_on(beat))) {
    INFO("heartbeat gap " << gap << " s");
    CHECK(std::abs(gap - 5.0) < 0.5);
  }
  // SIGTERM: the shutdown event goes out and the process exits within
  // shutdown_timeout + 1 s, naming the handlers it left behind.
  bot.signal(SIGTERM);
  std::optional<int> code;
  auto took = time_of([&] { code = bot.wait_for_exit(10s); });
  INFO("bot stderr:\n" << bot.stderr_text());
  CHECK(code == std::optional<int>(0));
  CHECK(took < 4s);
  REQUIRE(bus.wait_for("kryten.lifecycle." + svc + ".shutdown", 1s));
  CHECK(contains(bot.stderr_text(), "still busy"));
  CHECK(contains(bot.stderr_text(), "chatmsg#1"));
}

TEST_CASE("an embedded client works while the caller's actors hold every scheduler thread",
          "[isolation][embedding]") {
  nats_server server;
  bus_client bus(server.url());
  const std::string svc = "iso-embedded";
  bus.subscribe("kryten.lifecycle." + svc + ".>");
  bus.subscribe("kryten.robot.command");
  // Declared before the system: the caller's actors use them until it is gone.
  latch release;
  std::atomic<int> busy{0};
  caf::actor_system_config sys_cfg;
  kryten::add_message_types(sys_cfg);
  sys_cfg.set("scheduler.max-threads", static_cast<std::size_t>(2));
  caf::actor_system sys{sys_cfg};
  // The caller's own actors: each holds a scheduler thread until released.
  for (int i = 0; i < 4; ++i)
    caf::anon_send(sys.spawn(
                     [](caf::event_based_actor*, std::shared_future<void> released,
                        std::atomic<int>* started) -> caf::behavior {
                       return {[=](int) {
                         ++*started;
                         released.wait_for(30s);
                       }};
                     },
                     release.future, &busy),
                   1);
  REQUIRE(wait_until([&] { return busy.load() >= 2; }, 5s));
  {
    auto cfg = make_config(server.url(), svc);
    cfg.service->enable_lifecycle = true;
    cfg.service->enable_heartbeat = true;
    cfg.service->heartbeat_interval = 5;
    kryten::client client{sys, cfg};
    client.on("chatmsg", [&client](const kryten::chat_message& m) {
      if (m.message == "!ping")
        client.send_command("robot", "say", {{"message", "Pong! " + m.username}});
    });
    client.connect();
    auto cmd = ping_command(bus, svc);
    REQUIRE(cmd);
    CHECK(*cmd < 200ms);
    auto chat = chat_ping(bus, 1);
    REQUIRE(chat);
    CHECK(*chat < 100ms);
    CHECK(client.health().connected);
    auto startup = bus.wait_for("kryten.lifecycle." + svc + ".startup", 1s);
    REQUIRE(startup);
    auto beat = bus.wait_for("kryten.lifecycle." + svc + ".heartbeat", 7s);
    REQUIRE(beat);
    auto gaps = heartbeat_gaps({*startup, *beat});
    REQUIRE(gaps.size() == 1);
    CHECK(std::abs(gaps[0] - 5.0) < 0.5);
    auto took = time_of([&] { client.disconnect("embedded test"); });
    CHECK(took < 2s);
    REQUIRE(bus.wait_for("kryten.lifecycle." + svc + ".shutdown", 1s));
  }
  release.open();
}

TEST_CASE("a handler past handler_timeout shows as stuck in health()", "[isolation][health]") {
  nats_server server;
  auto cfg = make_config(server.url(), "iso-stuck");
  cfg.handler_timeout = 0.3;
  kryten::client client{cfg};
  latch release;
  std::atomic<bool> entered{false};
  client.on("chatmsg", [&](const kryten::chat_message&) {
    entered = true;
    release.future.wait_for(20s);
  });
  client.connect();
  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "hold"));
  bus.flush();
  REQUIRE(wait_until([&] { return entered.load(); }, 5s));
  REQUIRE(wait_until([&] { return client.health().degraded; }, 3s));
  auto h = client.health();
  REQUIRE(h.handlers.size() == 1);
  CHECK(h.handlers[0].stuck);
  REQUIRE(h.handlers[0].busy_since);
  CHECK(h.handlers[0].busy_seconds > 0.3);
  CHECK(h.stuck_handlers == std::vector<std::string>{h.handlers[0].label});
  auto j = h.to_json();
  CHECK(j["handlers"][0]["stuck"] == true);
  CHECK(j["handlers"][0]["busy_since"].is_string());
  CHECK(j["status"] == "degraded");
  release.open();
  REQUIRE(wait_until([&] { return !client.health().degraded; }, 3s));
  CHECK(client.health().stuck_handlers.empty());
}

// -- real supervision of user actors ------------------------------------------------

TEST_CASE("a factory-made user actor that crashes is replaced and gets the waiting events",
          "[isolation][supervision]") {
  nats_server server;
  auto cfg = make_config(server.url(), "iso-factory");
  auto sink = std::make_shared<capture_sink>();
  auto log = std::make_shared<spdlog::logger>("iso-factory", sink);
  kryten::client client{cfg, log};
  std::atomic<int> made{0};
  recorder<std::string> seen;  // "actor number: message"
  client.on_actor("chatmsg", [&](caf::actor_system& sys) {
    int number = ++made;
    return sys.spawn(
      [&seen, number](caf::event_based_actor* self, int) -> caf::behavior {
        return {
          [=, &seen](const kryten::chat_message& m) {
            if (m.message == "crash") {
              self->quit(caf::sec::runtime_error);
              return;
            }
            seen.add(std::to_string(number) + ": " + m.message);
          },
          [](const kryten::raw_event&) {},
        };
      },
      0);
  });
  client.connect();
  CHECK(made.load() == 1);
  CHECK(client.health().handlers.at(0).restartable);

  bus_client bus(server.url());
  for (const char* text : {"one", "crash", "two", "three"})
    bus.publish(lounge_chat, chat_event("alice", text));
  bus.flush();
  bool all = seen.wait_size(3);
  INFO("log:\n" << sink->text() << "\nhealth: " << client.health().to_json().dump());
  for (auto& x : seen.items())
    INFO("seen " << x);
  REQUIRE(all);
  CHECK(seen.items() == std::vector<std::string>{"1: one", "2: two", "2: three"});
  auto h = client.health();
  CHECK(h.handler_restarts == 1);
  CHECK(h.handlers.at(0).restarts == 1);
  CHECK(h.handlers.at(0).up);
  CHECK_FALSE(h.degraded);
  CHECK(made.load() == 2);
  // The queue counter came back to 0 with the inbox (not below, not above).
  REQUIRE(wait_until([&] { return client.health().handlers.at(0).queued == 0; }, 2s));
}

TEST_CASE("handlers registered from several threads at once get distinct labels",
          "[isolation][lifecycle]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "iso-labels")};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        client.on("chatmsg", [](const kryten::chat_message&) {});
    });
  for (auto& t : threads)
    t.join();
  std::set<std::string> labels;
  for (auto& h : client.health().handlers)
    labels.insert(h.label);
  CHECK(labels.size() == 40);
}

TEST_CASE("a crash-looping user actor backs off, then stays down", "[isolation][supervision]") {
  nats_server server;
  auto sink = std::make_shared<capture_sink>();
  auto log = std::make_shared<spdlog::logger>("iso-loop", sink);
  auto cfg = make_config(server.url(), "iso-loop");
  cfg.service->handler_restart_limit = 3;
  cfg.service->handler_restart_window = 30;
  cfg.service->handler_restart_backoff_min = 0.1;
  cfg.service->handler_restart_backoff_max = 1.0;
  kryten::client client{cfg, log};
  std::mutex mx;
  std::vector<steady::time_point> made_at;
  client.on_actor("chatmsg", [&](caf::actor_system& sys) {
    {
      std::lock_guard<std::mutex> guard{mx};
      made_at.push_back(steady::now());
    }
    return sys.spawn(
      [](caf::event_based_actor* self, int) -> caf::behavior {
        return {
          [=](const kryten::chat_message&) { self->quit(caf::sec::runtime_error); },
          [](const kryten::raw_event&) {},
        };
      },
      0);
  });
  client.connect();
  bus_client bus(server.url());
  // One event per incarnation: each crashes the actor it reaches.
  for (int i = 0; i < 6; ++i)
    bus.publish(lounge_chat, chat_event("alice", "boom " + std::to_string(i)));
  bus.flush();
  bool down = wait_until([&] { return client.health().degraded; }, 10s);
  INFO("log:\n" << sink->text());
  REQUIRE(down);
  auto h = client.health();
  CHECK(h.handler_restarts == 3);
  CHECK_FALSE(h.handlers.at(0).up);
  std::vector<double> gaps;
  {
    std::lock_guard<std::mutex> guard{mx};
    REQUIRE(made_at.size() == 4);
    for (std::size_t i = 1; i < made_at.size(); ++i)
      gaps.push_back(std::chrono::duration<double>(made_at[i] - made_at[i - 1]).count());
  }
  INFO("gaps between incarnations: " << gaps[0] << ", " << gaps[1] << ", " << gaps[2]);
  // 0.1, 0.2, 0.4 s (+ up to 20 % jitter)
  CHECK(gaps[0] >= 0.09);
  CHECK(gaps[1] >= 0.19);
  CHECK(gaps[2] >= 0.39);
  CHECK(gaps[2] > gaps[0]);
  CHECK(contains(sink->text(), "reached its restart limit"));
}

TEST_CASE("a plain user actor that dies cannot be restarted, and says so",
          "[isolation][supervision]") {
  nats_server server;
  auto sink = std::make_shared<capture_sink>();
  auto log = std::make_shared<spdlog::logger>("iso-plain", sink);
  kryten::client client{make_config(server.url(), "iso-plain"), log};
  auto crasher = client.system().spawn(
    [](caf::event_based_actor* self, int) -> caf::behavior {
      return {
        [=](const kryten::chat_message&) { self->quit(caf::sec::runtime_error); },
        [](const kryten::raw_event&) {},
      };
    },
    0);
  client.on_actor("chatmsg", crasher);
  client.connect();
  CHECK_FALSE(client.health().handlers.at(0).restartable);
  CHECK(contains(sink->text(), "cannot be restarted"));
  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "boom"));
  bus.flush();
  REQUIRE(wait_until([&] { return client.health().degraded; }, 5s));
  auto h = client.health();
  CHECK(h.handler_restarts == 0);
  CHECK_FALSE(h.handlers.at(0).up);
  CHECK(h.to_json()["handlers"][0]["restartable"] == false);
}

// -- one client lifecycle -----------------------------------------------------------------

TEST_CASE("a client is single-use: a second connect() or one after disconnect() throws",
          "[isolation][lifecycle]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "iso-once")};
  client.connect();
  CHECK_THROWS_AS(client.connect(), kryten::usage_error);
  client.disconnect();
  CHECK_THROWS_AS(client.connect(), kryten::usage_error);
  CHECK_FALSE(client.is_connected());
}

TEST_CASE("a failed connect() leaves nothing connected, and a retry subscribes once",
          "[isolation][lifecycle]") {
  nats_server server;
  const std::string svc = "iso-retry";
  auto cfg = make_config(server.url(), svc);
  cfg.nats.connect_timeout = 0.5;
  cfg.nats.max_reconnect_attempts = 0;
  server.stop();
  kryten::client client{cfg};
  recorder<std::string> seen;
  std::atomic<int> notices{0};
  client.on("chatmsg", [&](const kryten::chat_message& m) { seen.add(m.message); });
  client.on_group_restart([&](const json&) { ++notices; });
  CHECK_THROWS_AS(client.connect(), kryten::connect_error);
  CHECK_FALSE(client.is_connected());
  server.start();
  client.connect();
  CHECK(client.is_connected());
  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "once"));
  bus.publish("kryten.lifecycle.group.restart", R"({"reason": "check"})");
  auto reply = bus.request("kryten." + svc + ".command", R"({"command": "ping"})", 2s);
  REQUIRE(reply);
  REQUIRE(seen.wait_size(1));
  REQUIRE(wait_until([&] { return notices.load() == 1; }, 5s));
  // A marker after the checks: once it is through, duplicates would be too.
  bus.publish(lounge_chat, chat_event("alice", "marker"));
  bus.flush();
  REQUIRE(seen.wait_size(2));
  CHECK(seen.items() == std::vector<std::string>{"once", "marker"});
  CHECK(notices.load() == 1);
}

TEST_CASE("disconnect() from inside a handler returns at once and the shutdown completes",
          "[isolation][lifecycle]") {
  nats_server server;
  const std::string svc = "iso-self-stop";
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle." + svc + ".shutdown");
  auto cfg = make_config(server.url(), svc);
  cfg.service->enable_lifecycle = true;
  kryten::client client{cfg};
  std::promise<std::chrono::milliseconds> took;
  auto took_future = took.get_future();
  client.on("chatmsg", [&](const kryten::chat_message&) {
    took.set_value(time_of([&] { client.disconnect("asked by a handler"); }));
  });
  client.connect();
  bus.publish(lounge_chat, chat_event("alice", "quit"));
  bus.flush();
  REQUIRE(took_future.wait_for(5s) == std::future_status::ready);
  CHECK(took_future.get() < 500ms);
  auto shutdown = bus.wait_for("kryten.lifecycle." + svc + ".shutdown", 3s);
  REQUIRE(shutdown);
  CHECK(json::parse(shutdown->data).value("reason", "") == "asked by a handler");
  CHECK_FALSE(client.is_connected());
}

TEST_CASE("health() and request() from inside a handler answer", "[isolation][lifecycle]") {
  nats_server server;
  const std::string svc = "iso-inner";
  kryten::client client{make_config(server.url(), svc)};
  std::promise<std::pair<bool, bool>> got;
  auto result = got.get_future();
  client.on("chatmsg", [&](const kryten::chat_message&) {
    auto connected = client.health().connected;
    auto reply = client.request("kryten." + svc + ".command", json{{"command", "ping"}}, 2s);
    got.set_value({connected, reply.value("success", false)});
  });
  client.connect();
  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "ask"));
  bus.flush();
  REQUIRE(result.wait_for(5s) == std::future_status::ready);
  auto [connected, pong] = result.get();
  CHECK(connected);
  CHECK(pong);
}

// -- untrusted numbers --------------------------------------------------------------------

TEST_CASE("restart notice delays are clamped to [0, 3600] s", "[isolation][restart]") {
  SECTION("the parser") {
    std::string error;
    auto huge = kryten::parse_restart_notice(R"({"delay_seconds": 1e300})", error);
    REQUIRE(huge);
    CHECK(huge->delay_seconds == kryten::max_restart_delay_seconds);
    CHECK(huge->clamped_from == "1e+300");
    CHECK(huge->json()["delay_seconds"] == 3600.0);
    auto negative = kryten::parse_restart_notice(R"({"delay_seconds": -5})", error);
    REQUIRE(negative);
    CHECK(negative->delay_seconds == 0.0);
    CHECK(negative->clamped_from == "-5");
    auto fine = kryten::parse_restart_notice(R"({"delay_seconds": 2.5})", error);
    REQUIRE(fine);
    CHECK(fine->delay_seconds == 2.5);
    CHECK(fine->clamped_from.empty());
  }
  SECTION("restart_on_notice with 1e300: clamped and logged, no stop") {
    nats_server server;
    auto sink = std::make_shared<capture_sink>();
    auto log = std::make_shared<spdlog::logger>("iso-clamp", sink);
    auto cfg = make_config(server.url(), "iso-clamp");
    cfg.service->restart_on_notice = true;
    kryten::client client{cfg, log};
    client.connect();
    std::promise<int> code;
    auto code_future = code.get_future();
    std::thread runner{[&] { code.set_value(client.run()); }};
    bus_client bus(server.url());
    bus.publish("kryten.lifecycle.group.restart", R"({"reason": "huge", "delay_seconds": 1e300})");
    bus.flush();
    REQUIRE(wait_until([&] { return contains(sink->text(), "clamped to 3600"); }, 5s));
    CHECK(code_future.wait_for(1s) == std::future_status::timeout);
    CHECK(client.is_connected());
    client.stop();
    CHECK(code_future.get() == 0);
    runner.join();
  }
  SECTION("restart_on_notice with -5: clamped to 0, stops at once with 75") {
    nats_server server;
    auto cfg = make_config(server.url(), "iso-negative");
    cfg.service->restart_on_notice = true;
    kryten::client client{cfg};
    client.connect();
    std::promise<int> code;
    auto code_future = code.get_future();
    std::thread runner{[&] { code.set_value(client.run()); }};
    bus_client bus(server.url());
    bus.publish("kryten.lifecycle.group.restart", R"({"reason": "now", "delay_seconds": -5})");
    bus.flush();
    REQUIRE(code_future.wait_for(5s) == std::future_status::ready);
    CHECK(code_future.get() == 75);
    runner.join();
  }
}

// -- the shutdown drain ------------------------------------------------------------------

namespace {

struct accounting {
  std::uint64_t received = 0, buffered = 0, handled = 0, dropped = 0, abandoned = 0;
};

/// The numbers after `prefix` in `log`, read with `format` (sscanf).
template <class... Ts>
bool scan_after(const std::string& log, const std::string& prefix, const char* format,
                Ts*... out) {
  auto at = log.find(prefix);
  return at != std::string::npos
         && std::sscanf(log.c_str() + at + prefix.size(), format, out...)
              == static_cast<int>(sizeof...(Ts));
}

/// The shutdown's accounting lines for the handler labelled `label`.
/// (No std::regex: GCC 12 draws false warnings from it.)
std::optional<accounting> accounting_of(const std::string& log, const std::string& label) {
  accounting a;
  unsigned long long received = 0, buffered = 0, handled = 0, dropped = 0, abandoned = 0;
  if (!scan_after(log, "events received ", "%llu, abandoned in the NATS client's buffers %llu",
                  &received, &buffered)
      || !scan_after(log, "handler " + label + ": handled ", "%llu, dropped %llu, abandoned %llu",
                     &handled, &dropped, &abandoned))
    return std::nullopt;
  a.received = received;
  a.buffered = buffered;
  a.handled = handled;
  a.dropped = dropped;
  a.abandoned = abandoned;
  return a;
}

}  // namespace

TEST_CASE("SIGTERM with 50,000 events buffered: each is handled or counted",
          "[isolation][process][drain]") {
  constexpr int events = 50000;
  nats_server server;
  bus_client bus(server.url());
  const std::string svc = "iso-drain";
  bus.subscribe("kryten.lifecycle." + svc + ".>");
  // slow: 50,000 x 100 us = 5 s of work, 3 s allowed: some are abandoned.
  // fast enough: 50,000 x 10 us = 0.5 s of work, 10 s allowed: all handled.
  auto [slow_us, timeout, all_handled] = GENERATE(std::make_tuple(100, 3, false),
                                                  std::make_tuple(10, 10, true));
  temp_file cfg{bot_config(server, svc, {{"shutdown_timeout", timeout}}).dump()};
  auto c = json::parse(std::ifstream{cfg.path()});
  c["handler_queue_size"] = 100000;  // room for all: none dropped at the inbox
  std::ofstream{cfg.path()} << c.dump();
  child_process bot{{KRYTEN_ISOLATION_BOT, "--config", cfg.path(), "--slow-us",
                     std::to_string(slow_us)}};
  REQUIRE(bus.wait_for("kryten.lifecycle." + svc + ".startup", 10s));
  const auto body = chat_event("alice", "slow");
  for (int i = 0; i < events; ++i)
    bus.publish(lounge_chat, body);
  bus.flush();  // the server has them all: they are on their way to the bot
  bot.signal(SIGTERM);
  std::optional<int> code;
  auto took = time_of([&] { code = bot.wait_for_exit(20s); });
  auto log = bot.stderr_text();
  INFO("slow_us " << slow_us << ", exit after " << took.count() << " ms; bot stderr (tail):\n"
                  << log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
  CHECK(code == std::optional<int>(0));
  CHECK(took < std::chrono::seconds(timeout + 1));
  REQUIRE(bus.wait_for("kryten.lifecycle." + svc + ".shutdown", 2s));
  // The slow handler is the first one the bot registers.
  auto a = accounting_of(log, "chatmsg#1");
  REQUIRE(a);
  CHECK(a->received + a->buffered == static_cast<std::uint64_t>(events));
  CHECK(a->handled + a->dropped + a->abandoned + a->buffered
        == static_cast<std::uint64_t>(events));
  if (all_handled) {
    CHECK(a->handled == static_cast<std::uint64_t>(events));
  } else {
    CHECK(a->abandoned + a->buffered > 0);
    CHECK(contains(log, "abandoning"));
  }
}
