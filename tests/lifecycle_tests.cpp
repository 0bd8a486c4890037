// Lifecycle integration tests against a real nats-server: the lifecycle
// events of PROTOCOL.md §3 (payloads, heartbeats, the order of disconnected
// and connected after a NATS restart), discovery polls (§4), group restart
// notices (§5), the NATS Service API (§8), handler crashes and restarts,
// signals and restart_on_notice in the echo bot subprocess, and the graceful
// shutdown (stuck handlers, draining queued work).
//
// Each test starts its own nats-server on a free loopback port. Waits are
// conditions with deadlines (kryten::test::wait_until, bus_client::wait_for);
// the only sleeps are inside handlers whose slowness is the subject of a test.
// Checks that something does NOT happen necessarily wait out a bound.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include "kryten/client.hpp"
#include "kryten/lifecycle.hpp"
#include "support/temp_file.hpp"
#include "support/bot_fixtures.hpp"
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
using kryten::test::nats_server;
using kryten::test::capture_sink;
using kryten::test::is_iso8601;
using kryten::test::is_timestamp;
using kryten::test::is_uuid4;
using kryten::test::iso8601_us;
using kryten::test::latch;
using kryten::test::line_with;
using kryten::test::lounge_chat;
using kryten::test::make_config;
using kryten::test::raw_event_json;
using kryten::test::recorder;
using kryten::test::time_of;
using kryten::test::wait_until;

namespace {

using steady = std::chrono::steady_clock;

// -- formats --------------------------------------------------------------------

/// RFC 3339 UTC with fractional seconds and a literal Z, as micro's STATS
/// `started` must be: ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}Z$
bool is_rfc3339_z(const std::string& s) {
  return is_timestamp(s, true, true);
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0)
    return "unknown";
  return buf;
}

// -- configuration ------------------------------------------------------------------

/// A service built in code: lifecycle and discovery on, heartbeats off (the
/// tests about them turn them on with a 1 s interval, below the JSON loader's
/// minimum of 5 s, to stay short).
kryten::kryten_config lifecycle_config(const std::string& url, const std::string& service) {
  auto cfg = make_config(url, service);
  cfg.service->version = "1.2.3";
  cfg.service->enable_lifecycle = true;
  cfg.service->heartbeat_interval = 1;
  cfg.service->enable_discovery = true;
  return cfg;
}

std::string lifecycle_subject(const std::string& service, const std::string& kind) {
  return "kryten.lifecycle." + service + "." + kind;
}

constexpr const char* discovery_poll = "kryten.service.discovery.poll";
constexpr const char* group_restart = "kryten.lifecycle.group.restart";

json parse(const kryten::test::bus_message& m) {
  return json::parse(m.data, nullptr, false);
}

/// PROTOCOL §3's base payload.
void check_base(const json& p, const std::string& service, const std::string& version,
                const std::string& instance_id) {
  INFO("payload: " << p.dump());
  REQUIRE(p.is_object());
  CHECK(p.value("service", "") == service);
  CHECK(p.value("version", "") == version);
  REQUIRE(p.contains("hostname"));
  REQUIRE(p["hostname"].is_string());
  CHECK(p["hostname"].get<std::string>() == host_name());
  REQUIRE(p.contains("timestamp"));
  REQUIRE(p["timestamp"].is_string());
  CHECK(is_iso8601(p["timestamp"].get<std::string>()));
  REQUIRE(p.contains("uptime_seconds"));
  CHECK(p["uptime_seconds"].is_number());
  CHECK(p.value("instance_id", "") == instance_id);
}

// -- events ---------------------------------------------------------------------------

/// kryten::test::chat_event's body from a user of rank 1.
std::string chat_event(const std::string& user, const std::string& msg) {
  return raw_event_json("chatMsg", kryten::test::chat_payload(user, msg, 1));
}

// -- recording ------------------------------------------------------------------------


long long ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// -- the echo bot as a subprocess -----------------------------------------------------

using kryten::test::temp_file;

constexpr const char* bot_service = "lc-echo";

/// The echo bot against `server`, observed by `bus` (kryten.lifecycle.>),
/// ready for signals on return.
struct running_bot {
  std::unique_ptr<temp_file> config_path;
  std::unique_ptr<child_process> bot;

  running_bot(const nats_server& server, bus_client& bus, const json& service_extra) {
    json svc{{"name", bot_service}, {"heartbeat_interval", 30}};
    for (auto& [k, v] : service_extra.items())
      svc[k] = v;
    json cfg{
      {"nats", {{"servers", {server.url()}}, {"connect_timeout", 2}, {"reconnect_time_wait", 0.1}}},
      {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
      {"service", svc},
      {"log_level", "INFO"}};
    config_path = std::make_unique<temp_file>(cfg.dump(2));
    bot = std::make_unique<child_process>(
      std::vector<std::string>{KRYTEN_ECHO_BOT, "--config", config_path->path()});
    // startup is published before connect() returns, so it comes before
    // "running until stopped" (signal handlers in place).
    auto startup = bus.wait_for(lifecycle_subject(bot_service, "startup"), 20s);
    INFO("echo_bot stderr:\n" << bot->stderr_text());
    REQUIRE(startup);
    REQUIRE(wait_until(
      [&] { return !bot->running() || contains(bot->stderr_text(), "running until stopped"); },
      10s));
    REQUIRE(bot->running());
  }
};

}  // namespace

TEST_CASE("the timestamp checks these tests use", "[lifecycle][helpers]") {
  CHECK(is_iso8601("2024-01-15T10:30:00.123456+00:00"));
  CHECK(is_iso8601("2024-01-15T10:30:00Z"));
  CHECK_FALSE(is_iso8601("2024-01-15 10:30:00Z"));
  CHECK(is_rfc3339_z("2026-01-02T03:04:05.123456789Z"));
  CHECK_FALSE(is_rfc3339_z("2026-01-02T03:04:05Z"));        // no fraction
  CHECK_FALSE(is_rfc3339_z("2026-01-02T03:04:05.123+00:00"));  // no Z
  CHECK_FALSE(is_rfc3339_z("2026-01-02T03:04:05.1234567890Z"));
  CHECK(is_uuid4("3f2b6c1e-8d4a-4f5b-9c7e-1a2b3c4d5e6f"));
  CHECK(iso8601_us("1970-01-01T00:00:01.5Z") == std::optional<long long>(1500000));
  CHECK(iso8601_us("2024-01-15T10:30:00.123456+00:00") == 1705314600123456LL);
  CHECK(iso8601_us("2024-01-15T12:30:00.123456789+02:00") == 1705314600123456LL);
  CHECK(iso8601_us("2024-01-15T08:00:00-02:30") == 1705314600000000LL);
  CHECK_FALSE(iso8601_us("2024-01-15 10:30:00Z"));
}

// -- 1. payloads -----------------------------------------------------------------------

TEST_CASE("lifecycle events carry PROTOCOL §3's payload", "[lifecycle][payload]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle.>");
  int port = kryten::test::free_port();
  // Through the JSON loader: it normalises the name and lets metrics_port
  // fall back to health_port.
  auto cfg = kryten::parse_config(
    json{{"nats", {{"servers", {server.url()}}, {"connect_timeout", 2}, {"reconnect_time_wait", 0.1}}},
         {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
         {"service",
          {{"name", "  LC.Bot "}, {"version", "2.3.4"}, {"heartbeat_interval", 5},
           {"health_port", port}}},
         {"log_level", kryten::test::test_log_level()}}
      .dump());
  REQUIRE(cfg.service);
  const std::string svc = "lc-bot";
  REQUIRE(cfg.service->name == svc);
  cfg.service->heartbeat_interval = 1;  // below the loader's 5..300, to keep this short
  const json endpoints{{"health", {{"port", port}, {"path", "/health"}}},
                       {"metrics", {{"port", port}, {"path", "/metrics"}}}};

  kryten::client client{cfg};
  client.connect();
  const auto id = client.instance_id();
  CHECK(is_uuid4(id));

  // startup: published before connect() returned (the bus subscribed first).
  auto startup = bus.wait_for(lifecycle_subject(svc, "startup"), 1s);
  REQUIRE(startup);
  auto s = parse(*startup);
  check_base(s, svc, "2.3.4", id);
  CHECK(s.value("uptime_seconds", -1.0) >= 0.0);
  CHECK(s.value("uptime_seconds", -1.0) < 1.0);
  REQUIRE(s.contains("metadata"));
  CHECK(s["metadata"].value("endpoints", json{}) == endpoints);
  CHECK_FALSE(s["metadata"].contains("team"));

  // connected: target and the server it reached.
  auto connected = bus.wait_for(lifecycle_subject(svc, "connected"), 1s);
  REQUIRE(connected);
  auto c = parse(*connected);
  check_base(c, svc, "2.3.4", id);
  CHECK(c.value("target", "") == "NATS");
  REQUIRE(c.contains("servers"));
  REQUIRE(c["servers"].is_array());
  REQUIRE(c["servers"].size() == 1);
  REQUIRE(c["servers"][0].is_string());
  CHECK(contains(c["servers"][0].get<std::string>(), std::to_string(server.port())));

  // set_metadata is merged into every later event, next to endpoints.
  client.set_metadata("team", "x");
  auto beat = bus.wait_for(lifecycle_subject(svc, "heartbeat"), 3s);
  REQUIRE(beat);
  auto h = parse(*beat);
  check_base(h, svc, "2.3.4", id);
  CHECK(h.value("heartbeat_count", 0) == 1);
  CHECK(h.value("uptime_seconds", 0.0) > 0.5);
  REQUIRE(h.contains("metadata"));
  CHECK(h["metadata"].value("team", "") == "x");
  CHECK(h["metadata"].value("endpoints", json{}) == endpoints);

  // A second instance of the same service has an instance_id of its own
  // (and HTTP ports of its own: the probe binds them).
  std::string other_id;
  {
    auto other_cfg = cfg;
    other_cfg.service->health_port = kryten::test::free_port();
    other_cfg.service->metrics_port = other_cfg.service->health_port;
    kryten::client other{other_cfg};
    other.connect();
    other_id = other.instance_id();
    CHECK(is_uuid4(other_id));
    CHECK(other_id != id);
    auto second = bus.wait_for(lifecycle_subject(svc, "startup"), 1s, 2);
    REQUIRE(second);
    auto o = parse(*second);
    check_base(o, svc, "2.3.4", other_id);
    CHECK_FALSE(o["metadata"].contains("team"));  // metadata is per client
  }

  // shutdown: the disconnect reason, published before the connection closed.
  client.disconnect("test over");
  std::optional<json> shutdown;
  REQUIRE(wait_until(
    [&] {
      for (auto& m : bus.messages_on(lifecycle_subject(svc, "shutdown"))) {
        auto p = parse(m);
        if (p.is_object() && p.value("instance_id", "") == id)
          shutdown = p;
      }
      return shutdown.has_value();
    },
    1s));
  check_base(*shutdown, svc, "2.3.4", id);
  CHECK(shutdown->value("reason", "") == "test over");
  CHECK(shutdown->value("uptime_seconds", 0.0) > 0.5);
  CHECK((*shutdown)["metadata"].value("team", "") == "x");
  CHECK((*shutdown)["metadata"].value("endpoints", json{}) == endpoints);

  // Every event of one client carries its instance_id.
  std::set<std::string> ids;
  for (auto& m : bus.messages()) {
    auto p = parse(m);
    INFO(m.subject << ": " << m.data);
    REQUIRE(p.is_object());
    ids.insert(p.value("instance_id", ""));
  }
  CHECK(ids == std::set<std::string>{id, other_id});
}

// -- 2. heartbeats -----------------------------------------------------------------------

TEST_CASE("heartbeats come every heartbeat_interval, counted from 1", "[lifecycle][heartbeat]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle.>");
  auto cfg = lifecycle_config(server.url(), "lc-beat");
  const auto beat_subject = lifecycle_subject("lc-beat", "heartbeat");

  SECTION("enabled, 1 s interval") {
    cfg.service->enable_heartbeat = true;
    cfg.service->heartbeat_interval = 1;
    kryten::client client{cfg};
    client.connect();
    auto started = steady::now();  // the heartbeat actor starts just before connect() returns
    std::vector<steady::time_point> at;
    std::vector<json> beats;
    for (std::size_t n = 1; n <= 4; ++n) {
      auto m = bus.wait_for(beat_subject, 3s, n);
      REQUIRE(m);
      at.push_back(steady::now());
      beats.push_back(parse(*m));
    }
    std::vector<long long> sent_us;  // each beat's timestamp, on the sender's clock
    for (std::size_t i = 0; i < beats.size(); ++i) {
      INFO("beat " << i + 1 << ": " << beats[i].dump());
      check_base(beats[i], "lc-beat", "1.2.3", client.instance_id());
      CHECK(beats[i].value("heartbeat_count", 0) == static_cast<int>(i + 1));
      auto us = iso8601_us(beats[i].value("timestamp", ""));
      REQUIRE(us);
      sent_us.push_back(*us);
    }
    // The first beat, one interval after start, is timed on this side (the
    // sender's clock has no reading of the start): it includes the delivery
    // over the bus and this loaded test machine's scheduling, so allow 150 ms.
    auto first = ms_between(started, at[0]);
    INFO("first beat received " << first << " ms after connect() returned");
    CHECK(std::llabs(first - 1000) <= 150);
    // The issue's bound, 50 ms of jitter per interval, holds for the intervals
    // between the payloads' timestamps: the sender's own clock, without the
    // bus delivery's noise.
    constexpr long long jitter_us = 50000;
    for (std::size_t i = 1; i < sent_us.size(); ++i) {
      auto gap_us = sent_us[i] - sent_us[i - 1];
      INFO("beat " << i << " -> " << i + 1 << ": " << gap_us / 1000.0 << " ms apart (timestamps "
                   << beats[i - 1].value("timestamp", "") << ", " << beats[i].value("timestamp", "")
                   << ")");
      CHECK(std::llabs(gap_us - 1000000) <= jitter_us);
    }
  }

  SECTION("disabled") {
    cfg.service->enable_heartbeat = false;
    cfg.service->heartbeat_interval = 1;
    kryten::client client{cfg};
    client.connect();
    REQUIRE(bus.wait_for(lifecycle_subject("lc-beat", "startup"), 1s));  // lifecycle is on
    CHECK_FALSE(bus.wait_for(beat_subject, 2500ms));
  }
}

TEST_CASE("a heartbeat that cannot be published is counted, logged, and beating goes on",
          "[lifecycle][heartbeat][errors]") {
  // The server takes at most 600 bytes a message, and cnats refuses a bigger
  // publish at once (NATS_MAX_PAYLOAD): a large metadata value makes every
  // heartbeat too big to publish, a small one makes them fit again.
  nats_server::options opts;
  opts.config = "max_payload: 600\n";
  nats_server server(opts);
  bus_client bus(server.url());
  const std::string svc = "lc-beat-fail";
  const auto beat_subject = lifecycle_subject(svc, "heartbeat");
  bus.subscribe(beat_subject);
  auto sink = std::make_shared<capture_sink>();
  auto log = std::make_shared<spdlog::logger>(svc, sink);
  log->set_level(spdlog::level::info);
  auto cfg = lifecycle_config(server.url(), svc);
  cfg.service->enable_heartbeat = true;
  cfg.service->heartbeat_interval = 1;
  kryten::client client{cfg, log};
  client.connect();
  const std::string failure_line = "cannot publish heartbeat event";
  auto failures_logged = [&] {
    std::size_t n = 0;
    const auto text = sink->text();
    for (auto pos = text.find(failure_line); pos != std::string::npos;
         pos = text.find(failure_line, pos + 1))
      ++n;
    return n;
  };

  // A first beat goes out, and nothing failed so far.
  auto first = bus.wait_for(beat_subject, 3s);
  REQUIRE(first);
  auto before = client.health();
  INFO("log:\n" << sink->text());
  REQUIRE(before.publish_errors == 0);
  REQUIRE(before.errors == 0);

  // Too big: the beats fail, each is counted and logged, and they go on.
  client.set_metadata("blob", std::string(1000, 'x'));
  REQUIRE(wait_until([&] { return failures_logged() >= 2; }, 5s));
  auto failing = client.health();
  CHECK(failing.publish_errors >= 2);
  CHECK(failing.errors >= 2);
  CHECK(failing.connected);  // the connection itself is fine
  CHECK(failing.to_json().value("publish_errors", std::uint64_t{0}) == failing.publish_errors);
  // Logged at error level (spdlog's default pattern: "[time] [name] [error] text").
  INFO("log:\n" << sink->text());
  CHECK(contains(line_with(sink->text(), failure_line), "[error]"));

  // Small again: beats arrive again, their count still rising across the gap.
  client.set_metadata("blob", "small");
  std::optional<json> back;
  REQUIRE(wait_until(
    [&] {
      for (auto& m : bus.messages_on(beat_subject)) {
        auto p = parse(m);
        if (p.is_object() && p.contains("metadata") && p["metadata"].value("blob", "") == "small") {
          back = p;
          return true;
        }
      }
      return false;
    },
    3s));
  auto ok_beats = bus.messages_on(beat_subject);
  // The beat before `back` on the bus is the last one that went out before the gap.
  std::optional<json> last_before;
  for (auto& m : ok_beats) {
    auto p = parse(m);
    if (p.value("heartbeat_count", 0) < back->value("heartbeat_count", 0))
      last_before = p;
  }
  REQUIRE(last_before);
  check_base(*back, svc, "1.2.3", client.instance_id());
  const auto count_before = last_before->value("heartbeat_count", 0);
  const auto count_back = back->value("heartbeat_count", 0);
  INFO("last beat before the gap: " << count_before << ", first after: " << count_back);
  const auto failed = count_back - count_before - 1;  // the beats that never arrived
  CHECK(failed >= 2);
  // Each failed beat is one error, no more: once the next good beat is out,
  // every failure has been counted.
  auto counted = [&] {
    auto h = client.health();
    return h.publish_errors - before.publish_errors;
  };
  CHECK(wait_until([&] { return counted() >= static_cast<std::uint64_t>(failed); }, 2s));
  CHECK(counted() == static_cast<std::uint64_t>(failed));
  CHECK(client.health().errors - before.errors == static_cast<std::uint64_t>(failed));
  CHECK(failures_logged() == static_cast<std::size_t>(failed));

  // And the next one comes on time, counted on.
  auto next_index = bus.messages_on(beat_subject).size() + 1;
  auto next = bus.wait_for(beat_subject, 3s, next_index);
  REQUIRE(next);
  CHECK(parse(*next).value("heartbeat_count", 0) > count_back);
  CHECK(counted() == static_cast<std::uint64_t>(failed));
}

// -- 3. lifecycle off ------------------------------------------------------------------------

TEST_CASE("enable_lifecycle false publishes no lifecycle event at all", "[lifecycle][config]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle.>");
  auto cfg = lifecycle_config(server.url(), "lc-quiet");
  cfg.service->enable_lifecycle = false;
  cfg.service->enable_heartbeat = true;  // no lifecycle publisher: no beats either
  cfg.service->heartbeat_interval = 1;
  {
    kryten::client client{cfg};
    client.connect();
    REQUIRE(client.is_connected());
    bus.publish(discovery_poll, "{}");
    bus.flush();
    // Long enough for a startup, a poll's answer and a first heartbeat.
    CHECK_FALSE(bus.wait_for(lifecycle_subject("lc-quiet", "heartbeat"), 1500ms));
    client.disconnect("quiet over");
  }
  CHECK_FALSE(bus.wait_for(lifecycle_subject("lc-quiet", "shutdown"), 300ms));
  auto all = bus.messages();
  for (auto& m : all)
    UNSCOPED_INFO("unexpected " << m.subject << ": " << m.data);
  CHECK(all.empty());
}

// -- 4. discovery ----------------------------------------------------------------------------

TEST_CASE("a discovery poll is answered with a new startup event", "[lifecycle][discovery]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle.>");
  auto cfg = lifecycle_config(server.url(), "lc-disco");
  const auto startup_subject = lifecycle_subject("lc-disco", "startup");

  SECTION("enable_discovery true") {
    kryten::client client{cfg};
    client.connect();
    auto first = bus.wait_for(startup_subject, 1s);
    REQUIRE(first);
    bus.publish(discovery_poll, "{}");
    bus.flush();
    auto second = bus.wait_for(startup_subject, 2s, 2);
    REQUIRE(second);
    auto p = parse(*second);
    check_base(p, "lc-disco", "1.2.3", client.instance_id());
    CHECK(p.value("uptime_seconds", -1.0) >= parse(*first).value("uptime_seconds", 0.0));
    // Any body will do, an empty one included.
    bus.publish(discovery_poll, "");
    bus.flush();
    auto third = bus.wait_for(startup_subject, 2s, 3);
    REQUIRE(third);
    check_base(parse(*third), "lc-disco", "1.2.3", client.instance_id());
  }

  SECTION("enable_discovery false") {
    cfg.service->enable_discovery = false;
    kryten::client client{cfg};
    client.connect();
    REQUIRE(bus.wait_for(startup_subject, 1s));
    bus.publish(discovery_poll, "{}");
    bus.flush();
    CHECK_FALSE(bus.wait_for(startup_subject, 1s, 2));
  }
}

TEST_CASE("a robot startup is answered with a new startup event (re-registration)",
          "[lifecycle][discovery]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle.>");
  auto cfg = lifecycle_config(server.url(), "lc-rereg");
  cfg.service->enable_discovery = false;  // the robot's startup alone must do it
  const auto startup_subject = lifecycle_subject("lc-rereg", "startup");
  const std::string robot_startup = lifecycle_subject("robot", "startup");
  const json robot_payload{{"service", "robot"}, {"version", "0.9.0"}, {"hostname", "cytube-1"}};

  SECTION("reregister_on_robot_startup true (the default)") {
    CHECK(cfg.service->reregister_on_robot_startup);
    kryten::client client{cfg};
    client.connect();
    REQUIRE(bus.wait_for(startup_subject, 1s));
    bus.publish(robot_startup, robot_payload.dump());
    bus.flush();
    auto second = bus.wait_for(startup_subject, 2s, 2);
    REQUIRE(second);
    check_base(parse(*second), "lc-rereg", "1.2.3", client.instance_id());
    // A robot that restarts twice is answered twice.
    bus.publish(robot_startup, "not even json");
    bus.flush();
    CHECK(bus.wait_for(startup_subject, 2s, 3));
  }

  SECTION("reregister_on_robot_startup false") {
    cfg.service->reregister_on_robot_startup = false;
    kryten::client client{cfg};
    client.connect();
    REQUIRE(bus.wait_for(startup_subject, 1s));
    bus.publish(robot_startup, robot_payload.dump());
    bus.flush();
    CHECK_FALSE(bus.wait_for(startup_subject, 1s, 2));
  }
}

// -- 5. NATS Service API ------------------------------------------------------------------------

namespace {

/// The fields every micro reply has (PROTOCOL §8).
void check_micro_base(const json& r, const std::string& type, const std::string& name,
                      const std::string& id, const std::string& version) {
  INFO("reply: " << r.dump());
  REQUIRE(r.is_object());
  CHECK(r.value("type", "") == type);
  CHECK(r.value("name", "") == name);
  CHECK(r.value("id", "") == id);
  CHECK(r.value("version", "") == version);
  REQUIRE(r.contains("metadata"));
  REQUIRE(r["metadata"].is_object());
  for (auto& [k, v] : r["metadata"].items()) {
    INFO("metadata." << k);
    CHECK(v.is_string());
  }
}

}  // namespace

TEST_CASE("the NATS Service API answers PING, INFO and STATS", "[lifecycle][micro]") {
  nats_server server;
  bus_client bus(server.url());
  const std::string name = "lc-micro";
  auto cfg = lifecycle_config(server.url(), name);

  SECTION("a SemVer version: registered") {
    cfg.service->version = "1.2.3-rc.1+build.5";
    kryten::client client{cfg};
    client.connect();
    const auto id = client.instance_id();
    const std::string version = "1.2.3-rc.1+build.5";
    auto ask = [&](const std::string& subject) {
      auto r = bus.request(subject, "", 2s);
      INFO("subject " << subject);
      REQUIRE(r);
      auto j = json::parse(*r, nullptr, false);
      REQUIRE(j.is_object());
      return j;
    };
    const std::vector<std::string> scopes{"", "." + name, "." + name + "." + id};

    for (auto& scope : scopes) {
      INFO("$SRV.PING" << scope);
      auto r = ask("$SRV.PING" + scope);
      check_micro_base(r, "io.nats.micro.v1.ping_response", name, id, version);
    }

    for (auto& scope : scopes) {
      INFO("$SRV.INFO" << scope << ": " << "");
      auto r = ask("$SRV.INFO" + scope);
      INFO("reply: " << r.dump());
      check_micro_base(r, "io.nats.micro.v1.info_response", name, id, version);
      REQUIRE(r.contains("description"));
      CHECK(r["description"].is_string());
      REQUIRE(r.contains("endpoints"));
      REQUIRE(r["endpoints"].is_array());
      REQUIRE(r["endpoints"].size() == 1);
      auto& ep = r["endpoints"][0];
      CHECK(ep.value("name", "").size() > 0);
      CHECK(ep.value("subject", "") == "kryten.lc-micro.command");
      CHECK(ep.value("queue_group", "") == "q");
      REQUIRE(ep.contains("metadata"));
      CHECK(ep["metadata"].is_object());
    }

    auto check_stats = [&](const json& r, std::uint64_t requests, std::uint64_t errors) {
      INFO("reply: " << r.dump());
      check_micro_base(r, "io.nats.micro.v1.stats_response", name, id, version);
      REQUIRE(r.contains("started"));
      REQUIRE(r["started"].is_string());
      CHECK(is_rfc3339_z(r["started"].get<std::string>()));
      REQUIRE(r.contains("endpoints"));
      REQUIRE(r["endpoints"].is_array());
      REQUIRE(r["endpoints"].size() == 1);
      auto& ep = r["endpoints"][0];
      CHECK(ep.value("name", "").size() > 0);
      CHECK(ep.value("subject", "") == "kryten.lc-micro.command");
      CHECK(ep.value("queue_group", "") == "q");
      for (const char* key :
           {"num_requests", "num_errors", "processing_time", "average_processing_time"}) {
        INFO(key);
        REQUIRE(ep.contains(key));
        CHECK(ep[key].is_number_integer());
      }
      REQUIRE(ep.contains("last_error"));
      CHECK(ep["last_error"].is_string());
      CHECK(ep.value("num_requests", -1) == static_cast<std::int64_t>(requests));
      CHECK(ep.value("num_errors", -1) == static_cast<std::int64_t>(errors));
      if (requests > 0)
        CHECK(ep.value("average_processing_time", -1)
              == ep.value("processing_time", 0) / static_cast<std::int64_t>(requests));
      else
        CHECK(ep.value("average_processing_time", -1) == 0);
    };
    for (auto& scope : scopes) {
      INFO("$SRV.STATS" << scope);
      auto r = ask("$SRV.STATS" + scope);
      check_stats(r, 0, 0);
      CHECK(r["endpoints"][0].value("last_error", "x") == "");
    }

    // Three commands (the runtime serves "ping" and "health" itself).
    for (const char* command : {"ping", "health", "ping"}) {
      auto reply = bus.request("kryten.lc-micro.command", json{{"command", command}}.dump(), 2s);
      REQUIRE(reply);
      CHECK(json::parse(*reply).value("success", false));
    }
    // The command actor counts a request just after sending its reply: poll.
    json stats;
    CHECK(wait_until(
      [&] {
        stats = ask("$SRV.STATS." + name);
        return stats["endpoints"][0].value("num_requests", 0) == 3;
      },
      2s, 20ms));
    check_stats(stats, 3, 0);
    CHECK(stats["endpoints"][0].value("last_error", "x") == "");
    CHECK(stats["endpoints"][0].value("processing_time", 0) > 0);

    // A failing command counts as an error, with "code:description".
    auto reply = bus.request("kryten.lc-micro.command", R"({"command":"nope"})", 2s);
    REQUIRE(reply);
    CHECK_FALSE(json::parse(*reply).value("success", true));
    CHECK(wait_until(
      [&] {
        stats = ask("$SRV.STATS." + name + "." + id);
        return stats["endpoints"][0].value("num_errors", 0) == 1;
      },
      2s, 20ms));
    check_stats(stats, 4, 1);
    auto last_error = stats["endpoints"][0].value("last_error", "");
    INFO("last_error: " << last_error);
    CHECK(contains(last_error, ":"));
    CHECK(contains(last_error, "nope"));

    // Someone else's name or id is not answered.
    CHECK_FALSE(bus.request("$SRV.PING.other-service", "", 300ms));
    CHECK_FALSE(bus.request("$SRV.PING." + name + ".not-my-id", "", 300ms));
  }

  SECTION("a version that is not SemVer: not registered, lifecycle unaffected") {
    bus.subscribe("kryten.lifecycle.>");
    cfg.service->version = "1.0";
    kryten::client client{cfg};
    client.connect();
    auto startup = bus.wait_for(lifecycle_subject(name, "startup"), 1s);
    REQUIRE(startup);
    check_base(parse(*startup), name, "1.0", client.instance_id());
    CHECK_FALSE(bus.request("$SRV.PING", "", 500ms));
    CHECK_FALSE(bus.request("$SRV.INFO." + name, "", 500ms));
    CHECK_FALSE(bus.request("$SRV.STATS." + name + "." + client.instance_id(), "", 500ms));
    // Discovery polls still work.
    bus.publish(discovery_poll, "{}");
    bus.flush();
    CHECK(bus.wait_for(lifecycle_subject(name, "startup"), 2s, 2));
  }
}

// -- 6. reconnect -------------------------------------------------------------------------------

TEST_CASE("after a NATS restart disconnected comes before connected", "[lifecycle][reconnect]") {
  nats_server server;
  bus_client bus(server.url());  // reconnects every 100 ms
  const std::string svc = "lc-reconnect";
  bus.subscribe("kryten.lifecycle." + svc + ".>");
  auto cfg = lifecycle_config(server.url(), svc);
  // The client retries every 2 s (its first retry is at once, when the server
  // is still down), so that the observer is back, with its subscription,
  // before the client publishes what happened.
  cfg.nats.reconnect_time_wait = 2.0;
  kryten::client client{cfg};
  client.connect();
  const auto connected_subject = lifecycle_subject(svc, "connected");
  const auto disconnected_subject = lifecycle_subject(svc, "disconnected");
  REQUIRE(bus.wait_for(connected_subject, 1s));

  server.stop();
  auto stopped = steady::now();
  REQUIRE(wait_until([&] { return !client.health().connected; }, 5s));
  server.start();
  REQUIRE(bus.wait_connected(5s));
  INFO("observer back " << ms_between(stopped, steady::now()) << " ms after the stop");
  // The premise of the order check: the observer was back first.
  CHECK_FALSE(client.health().connected);

  auto reconnected = bus.wait_for(connected_subject, 6s, 2);
  REQUIRE(reconnected);
  auto disconnected = bus.wait_for(disconnected_subject, 100ms);
  REQUIRE(disconnected);
  // Arrival order on the observer (one publisher's order is kept by NATS).
  auto all = bus.messages();
  auto index_of = [&](const std::string& subject, std::size_t n) {
    std::size_t seen = 0;
    for (std::size_t i = 0; i < all.size(); ++i)
      if (all[i].subject == subject && ++seen == n)
        return static_cast<long>(i);
    return -1L;
  };
  CHECK(index_of(disconnected_subject, 1) >= 0);
  CHECK(index_of(disconnected_subject, 1) < index_of(connected_subject, 2));
  CHECK(bus.messages_on(disconnected_subject).size() == 1);

  auto d = parse(*disconnected);
  check_base(d, svc, "1.2.3", client.instance_id());
  CHECK(d.value("target", "") == "NATS");
  REQUIRE(d.contains("reason"));
  CHECK(d["reason"].is_string());
  CHECK_FALSE(d["reason"].get<std::string>().empty());
  REQUIRE(d.contains("downtime_seconds"));
  REQUIRE(d["downtime_seconds"].is_number());
  CHECK(d["downtime_seconds"].get<double>() > 0.0);
  CHECK(d["downtime_seconds"].get<double>() < 10.0);
  auto c = parse(*reconnected);
  check_base(c, svc, "1.2.3", client.instance_id());
  CHECK(c.value("target", "") == "NATS");
  CHECK(c.value("servers", json{}).is_array());
  CHECK(client.health().reconnects >= 1);
}

// -- 7. group restart ----------------------------------------------------------------------------

TEST_CASE("group restart notices reach every callback and listener", "[lifecycle][restart]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe(group_restart);
  auto cfg = lifecycle_config(server.url(), "lc-group");
  kryten::client client{cfg};

  recorder<json> first, second, third;
  recorder<kryten::restart_notice> heard;
  client.on_group_restart([&](const json& n) { first.add(n); });
  client.on_group_restart([&](const json& n) {
    second.add(n);
    throw std::runtime_error("callback failure on purpose");
  });
  client.on_group_restart([&](const json& n) { third.add(n); });
  // A spawn argument: CAF 0.17 dereferences a null argument tuple for a
  // function actor spawned without any (UBSan reports it).
  auto listener = client.system().spawn(
    [&](caf::event_based_actor*, int) -> caf::behavior {
      return {
        [&](const kryten::restart_notice& n) { heard.add(n); },
      };
    },
    0);
  client.on_group_restart(listener);
  client.connect();

  client.publish_group_restart("deploy", 1, "admin");
  REQUIRE(first.wait_size(1));
  REQUIRE(second.wait_size(1));
  REQUIRE(third.wait_size(1));  // after the one that threw
  REQUIRE(heard.wait_size(1));
  for (auto* r : {&first, &second, &third}) {
    auto n = r->items()[0];
    INFO("notice: " << n.dump());
    CHECK(n.value("initiator", "") == "admin");
    CHECK(n.value("reason", "") == "deploy");
    CHECK(n.value("delay_seconds", 0.0) == 1.0);
    CHECK(n.value("timestamp", json{}).is_string());
  }
  auto notice = heard.items()[0];
  CHECK(notice.initiator == "admin");
  CHECK(notice.reason == "deploy");
  CHECK(notice.delay_seconds == 1.0);
  CHECK(is_iso8601(notice.timestamp));
  // What went over the bus.
  auto sent = bus.wait_for(group_restart, 1s);
  REQUIRE(sent);
  auto body = parse(*sent);
  CHECK(body.value("initiator", "") == "admin");
  CHECK(body.value("reason", "") == "deploy");
  CHECK(body.value("delay_seconds", 0.0) == 1.0);

  // Bad notices are logged and ignored; one publisher's order is kept, so once
  // the good notice after them arrived they have been seen.
  bus.publish(group_restart, "not json");
  bus.publish(group_restart, "[1, 2, 3]");
  bus.publish(group_restart, R"({"delay_seconds": "x"})");
  bus.publish(group_restart, R"({"extra": 7})");  // every field defaulted
  bus.flush();
  REQUIRE(first.wait_size(2));
  REQUIRE(third.wait_size(2));
  REQUIRE(heard.wait_size(2));
  CHECK(first.size() == 2);
  CHECK(second.size() == 2);
  CHECK(third.size() == 2);
  CHECK(heard.size() == 2);
  auto defaulted = first.items()[1];
  INFO("defaulted: " << defaulted.dump());
  CHECK(defaulted.value("initiator", "") == "unknown");
  CHECK(defaulted.value("reason", "") == "No reason provided");
  CHECK(defaulted.value("delay_seconds", 0.0) == 5.0);
  CHECK(defaulted.value("extra", 0) == 7);  // the whole body, extra fields included
  auto n2 = heard.items()[1];
  CHECK(n2.initiator == "unknown");
  CHECK(n2.reason == "No reason provided");
  CHECK(n2.delay_seconds == 5.0);
  CHECK(n2.json() == defaulted);  // the same body as the callbacks'
  // Still working, and restart_on_notice is off: no stop.
  CHECK(client.is_connected());
  CHECK(client.request("kryten.lc-group.command", json{{"command", "ping"}}, 2s)
          .value("success", false));

  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
}

// -- 8. handler crashes -----------------------------------------------------------------------------

TEST_CASE("a crashing plain actor handler goes down without restarts, others go on",
          "[lifecycle][supervision]") {
  nats_server server;
  auto cfg = lifecycle_config(server.url(), "lc-crash");
  cfg.service->handler_restart_limit = 2;
  cfg.service->handler_restart_window = 10.0;
  kryten::client client{cfg};

  std::atomic<int> crashes{0};
  // Quits abnormally on every event it gets.
  auto crasher = client.system().spawn(
    [&](caf::event_based_actor* self, int) -> caf::behavior {
      return {
        [=, &crashes](const kryten::chat_message&) {
          ++crashes;
          self->quit(caf::sec::runtime_error);
        },
        [](const kryten::raw_event&) {},
      };
    },
    0);
  client.on_actor("chatmsg", crasher);
  recorder<std::string> seen;
  client.on("chatmsg", [&](const kryten::chat_message& m) { seen.add(m.message); });
  client.connect();
  REQUIRE(client.health().handlers.size() == 2);
  const auto crash_label = client.health().handlers[0].label;
  CHECK(contains(crash_label, "(actor)"));
  CHECK(client.health().handler_restarts == 0);
  CHECK_FALSE(client.health().degraded);

  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "one"));
  bus.flush();
  REQUIRE(seen.wait_size(1));
  REQUIRE(wait_until([&] { return crashes.load() == 1; }, 5s));
  // A ready-made actor cannot be remade: its handler goes down at once.
  REQUIRE(wait_until([&] { return client.health().degraded; }, 5s));
  auto h = client.health();
  CHECK(h.handler_restarts == 0);
  auto entry = std::find_if(h.handlers.begin(), h.handlers.end(),
                            [&](const kryten::handler_health& x) { return x.label == crash_label; });
  REQUIRE(entry != h.handlers.end());
  CHECK_FALSE(entry->up);
  CHECK_FALSE(entry->restartable);
  CHECK(entry->restarts == 0);
  CHECK(h.to_json().value("degraded", false));

  // The other handler keeps receiving events; the dead one gets none.
  for (const char* text : {"two", "three"})
    bus.publish(lounge_chat, chat_event("alice", text));
  bus.flush();
  REQUIRE(seen.wait_size(3));
  CHECK(seen.items() == std::vector<std::string>{"one", "two", "three"});
  CHECK(crashes.load() == 1);
  CHECK(client.is_connected());
}

// -- 9. the echo bot: SIGTERM and restart_on_notice ----------------------------------------------------

TEST_CASE("SIGTERM: the echo bot publishes shutdown and exits with 0",
          "[lifecycle][process][signals]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle.>");
  running_bot b{server, bus, json::object()};
  const auto shutdown_subject = lifecycle_subject(bot_service, "shutdown");
  CHECK(bus.messages_on(shutdown_subject).empty());

  std::optional<int> code;
  b.bot->signal(SIGTERM);
  auto took = time_of([&] { code = b.bot->wait_for_exit(10s); });
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  CHECK(code == std::optional<int>(0));
  CHECK(took < 2s);
  // Published (and flushed) before the connection closed, so before the exit;
  // allow for the server's delivery to the observer.
  auto shutdown = bus.wait_for(shutdown_subject, 1s);
  REQUIRE(shutdown);
  auto p = parse(*shutdown);
  CHECK(p.value("reason", "") == "Received SIGTERM");
  CHECK(p.value("service", "") == bot_service);
  auto startup = parse(bus.messages_on(lifecycle_subject(bot_service, "startup")).at(0));
  CHECK(p.value("instance_id", "") == startup.value("instance_id", "?"));
}

TEST_CASE("restart_on_notice: the echo bot exits with 75 after the delay",
          "[lifecycle][process][restart]") {
  nats_server server;
  bus_client bus(server.url());
  bus.subscribe("kryten.lifecycle.>");
  running_bot b{server, bus, json{{"restart_on_notice", true}}};

  auto notice = kryten::make_restart_notice("admin", "deploy", 1);
  bus.publish(group_restart, notice.dump());
  bus.flush();
  auto published = steady::now();
  std::optional<int> code;
  code = b.bot->wait_for_exit(10s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - published);
  INFO("echo_bot stderr:\n" << b.bot->stderr_text());
  INFO("exited " << took.count() << " ms after the notice");
  CHECK(code == std::optional<int>(75));
  CHECK(took >= 900ms);
  CHECK(took < 3s);
  auto shutdown = bus.wait_for(lifecycle_subject(bot_service, "shutdown"), 1s);
  REQUIRE(shutdown);
  auto reason = parse(*shutdown).value("reason", "");
  INFO("reason: " << reason);
  CHECK(contains(reason, "deploy"));
}

// -- 10. a stuck handler ----------------------------------------------------------------------------

TEST_CASE("a stuck handler does not hold up disconnect() past shutdown_timeout",
          "[lifecycle][shutdown]") {
  nats_server server;
  bus_client bus(server.url());
  const std::string svc = "lc-stuck";
  bus.subscribe(lifecycle_subject(svc, "shutdown"));
  auto sink = std::make_shared<capture_sink>();
  auto log = std::make_shared<spdlog::logger>("lc-stuck", sink);
  log->set_level(spdlog::level::info);
  auto cfg = lifecycle_config(server.url(), svc);
  cfg.service->shutdown_timeout = 1.0;

  latch release;
  std::atomic<bool> entered{false};
  kryten::client client{cfg, log};
  client.on("chatmsg", [&](const kryten::chat_message&) {
    entered = true;
    release.future.wait();  // far longer than shutdown_timeout: until the test ends
  });
  client.connect();
  const auto label = client.health().handlers.at(0).label;

  bus.publish(lounge_chat, chat_event("alice", "block"));
  bus.flush();
  REQUIRE(wait_until([&] { return entered.load(); }, 5s));

  auto took = time_of([&] { client.disconnect("stuck test"); });
  INFO("log:\n" << sink->text());
  CHECK(took < 1500ms);
  CHECK_FALSE(client.is_connected());
  auto shutdown = bus.wait_for(lifecycle_subject(svc, "shutdown"), 1s);
  REQUIRE(shutdown);
  CHECK(parse(*shutdown).value("reason", "") == "stuck test");
  // The log names the handler that held things up.
  CHECK(contains(sink->text(), label));
  CHECK(contains(sink->text(), "busy"));
  release.open();  // so that the client's destructor can stop its actors
}

// -- 11. draining queued work -------------------------------------------------------------------------

TEST_CASE("disconnect() lets queued handler work finish, then publishes shutdown",
          "[lifecycle][shutdown]") {
  nats_server server;
  bus_client bus(server.url());
  const std::string svc = "lc-drain";
  const std::string done_subject = "lc.test.done";
  // One subscription for both subjects: cnats delivers each subscription's
  // messages on a thread of its own, so two would not keep the arrival order.
  bus.subscribe(">");
  auto cfg = lifecycle_config(server.url(), svc);
  cfg.service->shutdown_timeout = 5.0;
  kryten::client client{cfg};
  std::atomic<int> started{0};
  client.on("chatmsg", [&](const kryten::chat_message& m) {
    ++started;
    std::this_thread::sleep_for(200ms);  // the slowness is the subject here
    client.publish(done_subject, std::string_view{m.message});  // goes out on the same connection as shutdown
  });
  client.connect();

  for (const char* text : {"a", "b", "c"})
    bus.publish(lounge_chat, chat_event("alice", text));
  bus.flush();
  // All three are with the handler (one running, two queued) before the stop.
  REQUIRE(wait_until([&] { return client.health().events_received == 3 && started.load() >= 1; },
                     5s));
  CHECK(client.health().handlers.at(0).handled < 3);

  auto took = time_of([&] { client.disconnect("drain test"); });
  auto h = client.health();
  INFO("disconnect() took " << took.count() << " ms");
  CHECK(h.handlers.at(0).handled == 3);
  CHECK(h.events_handled == 3);
  CHECK(took >= 300ms);  // at least the two queued runs
  CHECK(took < 3s);

  auto shutdown = bus.wait_for(lifecycle_subject(svc, "shutdown"), 1s);
  REQUIRE(shutdown);
  CHECK(parse(*shutdown).value("reason", "") == "drain test");
  // The handler's own messages went out before shutdown, on one connection.
  std::vector<kryten::test::bus_message> all;
  for (auto& m : bus.messages())
    if (m.subject == done_subject || m.subject == lifecycle_subject(svc, "shutdown"))
      all.push_back(m);
  REQUIRE(all.size() == 4);
  CHECK(all[0].data == "a");
  CHECK(all[1].data == "b");
  CHECK(all[2].data == "c");
  CHECK(all[3].subject == lifecycle_subject(svc, "shutdown"));
}
