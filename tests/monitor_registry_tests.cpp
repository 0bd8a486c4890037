// kryten-monitor's registry (apps/monitor/registry.hpp): states, replicas,
// peers without an instance id, sweeping, malformed payloads, the KV round trip.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "registry.hpp"

using json = nlohmann::json;
using kryten::monitor::health_check;
using kryten::monitor::instance_state;
using kryten::monitor::registry;
using kryten::monitor::registry_options;

namespace {

constexpr std::int64_t s = 1000000000;  // one second in nanoseconds
constexpr std::int64_t t0 = 1767225600LL * s;  // 2026-01-01T00:00:00Z

std::string event(const std::string& service, const std::string& id, json extra = json::object(),
                  int heartbeat_interval = 5) {
  json health{{"port", 8080}, {"path", "/health"}, {"host", "127.0.0.1"}};
  json metadata{{"heartbeat_interval", heartbeat_interval}, {"endpoints", {{"health", health}}}};
  json j{{"service", service},
         {"version", "1.2.3"},
         {"hostname", "box1"},
         {"timestamp", "2026-01-01T00:00:00.000000+00:00"},
         {"uptime_seconds", 1.5},
         {"metadata", metadata}};
  if (!id.empty())
    j["instance_id"] = id;
  j.update(extra);
  return j.dump();
}

instance_state state_of(const registry& r, const std::string& key, std::int64_t now) {
  auto v = r.find(key, now);
  REQUIRE(v);
  return v->state;
}

}  // namespace

TEST_CASE("registry: replicas of one service are two instances") {
  registry r;
  auto a = r.apply_lifecycle("startup", event("echo-bot", "id-a"), t0);
  auto b = r.apply_lifecycle("startup", event("echo-bot", "id-b"), t0);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == "echo-bot.id-a");
  CHECK(*b == "echo-bot.id-b");
  CHECK(r.size() == 2);
  auto snap = r.snapshot(t0 + s);
  REQUIRE(snap.size() == 2);
  for (auto& v : snap) {
    CHECK(v.state == instance_state::up);
    CHECK(v.record.version == "1.2.3");
    REQUIRE(v.record.health);
    CHECK(v.record.health->url() == "http://127.0.0.1:8080/health");
  }
}

TEST_CASE("registry: a peer without an instance id is keyed by its hostname") {
  registry r;
  auto k = r.apply_lifecycle("startup", event("node-bot", ""), t0);
  REQUIRE(k);
  CHECK(*k == "node-bot.host-box1");
  // Its heartbeats land on the same entry.
  REQUIRE(r.apply_lifecycle("heartbeat", event("node-bot", ""), t0 + 5 * s) == k);
  CHECK(r.size() == 1);
  auto v = r.find(*k, t0 + 6 * s);
  REQUIRE(v);
  CHECK(v->record.heartbeat_count == 1);
  CHECK(v->record.events_received == 2);
}

TEST_CASE("registry: up, then stale after three heartbeat intervals of silence") {
  registry r;
  auto k = *r.apply_lifecycle("startup", event("echo-bot", "a", json::object(), 5), t0);
  CHECK(state_of(r, k, t0 + 14 * s) == instance_state::up);
  CHECK(state_of(r, k, t0 + 16 * s) == instance_state::stale);
  // A heartbeat brings it back.
  r.apply_lifecycle("heartbeat", event("echo-bot", "a"), t0 + 17 * s);
  CHECK(state_of(r, k, t0 + 18 * s) == instance_state::up);
}

TEST_CASE("registry: peers that do not advertise an interval count as 30 s") {
  registry r;
  json j = json::parse(event("py-bot", "p"));
  j["metadata"].erase("heartbeat_interval");
  auto k = *r.apply_lifecycle("startup", j.dump(), t0);
  CHECK(state_of(r, k, t0 + 89 * s) == instance_state::up);
  CHECK(state_of(r, k, t0 + 91 * s) == instance_state::stale);
}

TEST_CASE("registry: a shutdown event makes the instance down, with its reason") {
  registry r;
  auto k = *r.apply_lifecycle("startup", event("echo-bot", "a"), t0);
  r.apply_lifecycle("shutdown", event("echo-bot", "a", {{"reason", "Received SIGTERM"}}), t0 + s);
  auto v = r.find(k, t0 + 2 * s);
  REQUIRE(v);
  CHECK(v->state == instance_state::down);
  CHECK(v->record.shutdown_reason == "Received SIGTERM");
  auto j = kryten::monitor::to_json(*v);
  CHECK(j["state"] == "down");
  CHECK(j["shutdown_reason"] == "Received SIGTERM");
  // A new startup of the same instance (a discovery answer) makes it up again.
  r.apply_lifecycle("startup", event("echo-bot", "a"), t0 + 3 * s);
  CHECK(state_of(r, k, t0 + 3 * s) == instance_state::up);
}

TEST_CASE("registry: a /health that says degraded makes the instance degraded") {
  registry r;
  auto k = *r.apply_lifecycle("startup", event("echo-bot", "a"), t0);
  health_check h;
  h.status_code = 503;
  h.status = "degraded";
  h.latency_ms = 3;
  h.checked_ns = t0 + s;
  r.record_health(k, h);
  CHECK(state_of(r, k, t0 + 2 * s) == instance_state::degraded);
  h.status_code = 200;
  h.status = "healthy";
  r.record_health(k, h);
  CHECK(state_of(r, k, t0 + 2 * s) == instance_state::up);
  // Unreachable is not degraded: silence decides staleness.
  h.status_code = 0;
  h.status = "";
  h.error = "connection refused";
  r.record_health(k, h);
  CHECK(state_of(r, k, t0 + 2 * s) == instance_state::up);
}

TEST_CASE("registry: stale and down entries are swept after sweep_after") {
  registry_options o;
  o.sweep_after = 60;
  registry r{o};
  auto live = *r.apply_lifecycle("startup", event("echo-bot", "live"), t0);
  auto dead = *r.apply_lifecycle("startup", event("echo-bot", "dead"), t0);
  auto gone = *r.apply_lifecycle("startup", event("echo-bot", "gone"), t0);
  r.apply_lifecycle("shutdown", event("echo-bot", "gone"), t0);
  for (int i = 1; i <= 13; ++i)
    r.apply_lifecycle("heartbeat", event("echo-bot", "live"), t0 + i * 5 * s);
  CHECK(r.sweep(t0 + 30 * s).empty());  // dead is stale, but not for long enough
  auto removed = r.sweep(t0 + 65 * s);
  CHECK(removed == std::vector<std::string>{dead, gone});
  CHECK(r.find(live, t0 + 65 * s));
  CHECK(r.size() == 1);
}

TEST_CASE("registry: malformed lifecycle payloads are counted and ignored") {
  registry r;
  CHECK_FALSE(r.apply_lifecycle("startup", "not json", t0));
  CHECK_FALSE(r.apply_lifecycle("startup", "[1,2]", t0));
  CHECK_FALSE(r.apply_lifecycle("startup", R"({"version": "1"})", t0));       // no service
  CHECK_FALSE(r.apply_lifecycle("startup", R"({"service": 42})", t0));        // wrong type
  CHECK_FALSE(r.apply_lifecycle("startup", R"({"service": ""})", t0));
  CHECK_FALSE(r.apply_lifecycle("heartbeat", R"({"service": "x", "instance_id": 7})", t0));
  CHECK_FALSE(r.apply_lifecycle("heartbeat", R"({"service": "x", "metadata": "m"})", t0));
  CHECK_FALSE(r.apply_lifecycle("heartbeat", R"({"service": "x", "uptime_seconds": "1"})", t0));
  CHECK(r.malformed() == 8);
  CHECK(r.size() == 0);
  // A kind the registry does not track is not malformed (group restart notices).
  CHECK_FALSE(r.apply_lifecycle("restart", event("x", "a"), t0));
  CHECK(r.malformed() == 8);
  // Bad endpoints and intervals are ignored, the event is kept; numbers are clamped.
  json j{{"service", "x"}, {"instance_id", "a"}, {"uptime_seconds", -5},
         {"metadata", {{"heartbeat_interval", 1e9}, {"endpoints", {{"health", {{"port", 70000}}}}}}}};
  auto k = r.apply_lifecycle("startup", j.dump(), t0);
  REQUIRE(k);
  auto v = r.find(*k, t0);
  CHECK_FALSE(v->record.health);
  CHECK(v->record.heartbeat_interval == 3600);
  CHECK(*v->record.uptime_seconds == 0);
}

TEST_CASE("registry: Service API ping answers add and refresh instances") {
  registry_options o;
  o.service_api_interval = 10;
  registry r{o};
  json ping{{"type", "io.nats.micro.v1.ping_response"}, {"name", "go-svc"}, {"id", "X1"},
            {"version", "0.1.0"}, {"metadata", json::object()}};
  auto k = r.apply_service_api_ping(ping.dump(), t0);
  REQUIRE(k);
  auto v = r.find(*k, t0 + s);
  CHECK(v->record.service_api);
  CHECK_FALSE(v->record.lifecycle);
  CHECK(v->state == instance_state::up);
  CHECK(state_of(r, *k, t0 + 31 * s) == instance_state::stale);
  // A kryten service's answer joins its lifecycle entry (same name and id).
  auto lk = *r.apply_lifecycle("startup", event("echo-bot", "id-e"), t0);
  ping["name"] = "echo-bot";
  ping["id"] = "id-e";
  CHECK(r.apply_service_api_ping(ping.dump(), t0) == lk);
  CHECK(r.size() == 2);
  // One whose Service API id differs names its instance id in its metadata.
  auto nk = *r.apply_lifecycle("startup", event("node-echo", "uuid-n"), t0);
  json node_ping{{"name", "node-echo"}, {"id", "NUID123"}, {"version", "1.2.3"},
                 {"metadata", {{"instance_id", "uuid-n"}}}};
  CHECK(r.apply_service_api_ping(node_ping.dump(), t0) == nk);
  CHECK(r.size() == 3);
  CHECK_FALSE(r.apply_service_api_ping(R"({"name": "x"})", t0));  // no id
  CHECK(r.malformed() == 1);
}

TEST_CASE("registry: an entry survives the KV round trip with its times and state") {
  registry r;
  auto k = *r.apply_lifecycle("startup", event("echo-bot", "a"), t0);
  r.apply_lifecycle("heartbeat", event("echo-bot", "a"), t0 + 5 * s);
  auto d = *r.apply_lifecycle("startup", event("echo-bot", "d"), t0);
  r.apply_lifecycle("shutdown", event("echo-bot", "d", {{"reason", "bye"}}), t0 + s);
  registry back;
  for (auto& v : r.snapshot(t0 + 6 * s))
    CHECK(back.restore(kryten::monitor::to_json(v)));
  auto a = back.find(k, t0 + 6 * s);
  REQUIRE(a);
  CHECK(a->state == instance_state::up);
  CHECK(a->record.first_seen_ns == t0);
  CHECK(a->record.heartbeat_count == 1);
  CHECK(a->record.heartbeat_interval == 5);
  CHECK(state_of(back, k, t0 + 21 * s) == instance_state::stale);
  auto down = back.find(d, t0 + 6 * s);
  REQUIRE(down);
  CHECK(down->state == instance_state::down);
  CHECK(down->record.shutdown_reason == "bye");
  CHECK_FALSE(back.restore(json::parse(R"({"service": 1})")));
  CHECK(back.malformed() == 1);
}

TEST_CASE("registry: the ServiceInfo shape of Kryten-Robot, plus instance_id and state") {
  registry r;
  auto k = *r.apply_lifecycle("startup", event("echo-bot", "a"), t0);
  auto info = kryten::monitor::to_service_info(*r.find(k, t0 + 2 * s));
  for (auto field : {"name", "version", "hostname", "first_seen", "last_heartbeat", "last_startup",
                     "heartbeat_count", "seconds_since_heartbeat", "is_stale", "metadata",
                     "health_url", "metrics_url", "instance_id", "state"})
    CHECK(info.contains(field));
  CHECK(info["name"] == "echo-bot");
  CHECK(info["instance_id"] == "a");
  CHECK(info["state"] == "up");
  CHECK(info["is_stale"] == false);
  CHECK(info["first_seen"] == "2026-01-01T00:00:00.000000+00:00");
  CHECK(info["seconds_since_heartbeat"].get<double>() == Approx(2.0));
  CHECK(info["health_url"] == "http://127.0.0.1:8080/health");
}

TEST_CASE("registry: long names are clipped at a character boundary and stay valid UTF-8") {
  registry r;
  std::string name;
  for (int i = 0; i < 200; ++i)
    name += "\xc3\xa9";  // "é", two bytes: 400 bytes in all
  json j{{"service", name}, {"instance_id", "a"}, {"hostname", name}};
  auto k = r.apply_lifecycle("startup", j.dump(), t0);
  REQUIRE(k);
  auto v = r.find(*k, t0);
  REQUIRE(v);
  CHECK(v->record.service.size() <= 256);
  CHECK(v->record.service.size() % 2 == 0);
  CHECK_NOTHROW(kryten::monitor::to_json(*v).dump());
}
