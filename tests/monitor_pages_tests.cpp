// kryten-monitor's pages (apps/monitor/pages.hpp) and its settings
// (monitor_settings.hpp): what an operator reads, and what a bad file gets.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "kryten/config.hpp"
#include "monitor_settings.hpp"
#include "pages.hpp"
#include "registry.hpp"

using json = nlohmann::json;
using namespace kryten::monitor;

namespace {

constexpr std::int64_t s = 1000000000;
constexpr std::int64_t t0 = 1767225600LL * s;

std::vector<instance_view> two_instances() {
  registry r;
  json up{{"service", "echo-bot"}, {"instance_id", "a"}, {"hostname", "box<1>"},
          {"version", "1.0.0"}, {"uptime_seconds", 3700}};
  json down{{"service", "echo-bot"}, {"instance_id", "b"}, {"hostname", "box2"},
            {"version", "1.0.0"}, {"reason", "Received \"SIGTERM\""}};
  r.apply_lifecycle("startup", up.dump(), t0);
  r.apply_lifecycle("startup", down.dump(), t0);
  r.apply_lifecycle("shutdown", down.dump(), t0 + s);
  return r.snapshot(t0 + 2 * s);
}

page_context context() {
  page_context ctx;
  ctx.monitor_name = "monitor";
  ctx.now_ns = t0 + 2 * s;
  ctx.refresh_seconds = 7;
  return ctx;
}

}  // namespace

TEST_CASE("pages: the dashboard has a row per instance, escaped, refreshing, without scripts") {
  auto html = render_dashboard(two_instances(), context());
  CHECK(html.find("<meta http-equiv=\"refresh\" content=\"7\">") != std::string::npos);
  CHECK(html.find("data-key=\"echo-bot.a\" data-state=\"up\"") != std::string::npos);
  CHECK(html.find("data-key=\"echo-bot.b\" data-state=\"down\"") != std::string::npos);
  CHECK(html.find("box&lt;1&gt;") != std::string::npos);
  CHECK(html.find("box<1>") == std::string::npos);
  CHECK(html.find("Received &quot;SIGTERM&quot;") != std::string::npos);
  CHECK(html.find("1h 1m") != std::string::npos);  // uptime 3700 s + 2 s
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("http://") == std::string::npos);  // nothing loaded from elsewhere
}

TEST_CASE("pages: /api/services counts states and lists every instance") {
  auto api = render_api(two_instances(), context());
  CHECK(api["count"] == 2);
  CHECK(api["states"]["up"] == 1);
  CHECK(api["states"]["down"] == 1);
  CHECK(api["services"][1]["shutdown_reason"] == "Received \"SIGTERM\"");
}

TEST_CASE("pages: /metrics has one series per instance, labels escaped") {
  auto text = render_metrics(two_instances(), context());
  CHECK(text.find("# TYPE kryten_monitor_instance_up gauge") != std::string::npos);
  CHECK(text.find("kryten_monitor_instance_up{service=\"echo-bot\",instance_id=\"a\",hostname=\"box<1>\"} 1")
        != std::string::npos);
  CHECK(text.find("kryten_monitor_instance_up{service=\"echo-bot\",instance_id=\"b\",hostname=\"box2\"} 0")
        != std::string::npos);
  CHECK(text.find("kryten_monitor_instance_events_received_total{service=\"echo-bot\",instance_id=\"b\",hostname=\"box2\"} 2")
        != std::string::npos);
  CHECK(text.find("kryten_monitor_instances{state=\"down\"} 1") != std::string::npos);
}

TEST_CASE("settings: defaults, values, and errors that name the field") {
  auto d = parse_monitor_settings(R"({"nats": {}})");
  CHECK(d.http_port == 28290);
  CHECK(d.kv_bucket == "kryten_services");
  auto v = parse_monitor_settings(
    R"({"monitor": {"http_port": 9000, "sweep_after": 60, "health_concurrency": 2}})");
  CHECK(v.http_port == 9000);
  CHECK(v.registry.sweep_after == 60);
  CHECK(v.health_concurrency == 2);
  auto field_of = [](const char* text) {
    try {
      parse_monitor_settings(text);
    } catch (const kryten::config_error& e) {
      return e.field();
    }
    return std::string{"(accepted)"};
  };
  CHECK(field_of(R"({"monitor": {"http_port": 0}})") == "monitor.http_port");
  CHECK(field_of(R"({"monitor": {"http_port": 1.5}})") == "monitor.http_port");
  CHECK(field_of(R"({"monitor": {"health_timeout": "2"}})") == "monitor.health_timeout");
  CHECK(field_of(R"({"monitor": {"health_concurency": 2}})") == "monitor.health_concurency");
  CHECK(field_of(R"({"monitor": {"kv_bucket": "a.b"}})") == "monitor.kv_bucket");
  CHECK(field_of(R"({"monitor": []})") == "monitor");
}
