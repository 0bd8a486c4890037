// metrics_renderer: series names and values, custom registries, and the
// output checked by `promtool check metrics` (Debian package prometheus).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/metrics_renderer.hpp"

using namespace kryten::detail;

namespace {

// The first executable `name` on PATH, or "".
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty())
      continue;
    auto candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

struct check_result {
  int exit_code = -1;
  std::string output;
};

// Runs `promtool check metrics` on `text`.
check_result promtool_check(const std::string& text) {
  auto promtool = find_on_path("promtool");
  if (promtool.empty())
    FAIL("promtool not found on PATH: install the Debian package `prometheus`");
  char file[] = "/tmp/kryten_metrics_XXXXXX";
  int fd = ::mkstemp(file);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    std::ofstream out(file, std::ios::binary);
    out << text;
  }
  check_result r;
  auto cmd = "'" + promtool + "' check metrics < '" + std::string(file) + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::remove(file);
  return r;
}

// The value of the one sample line `series` (name plus labels, exactly as
// printed), or NaN.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, series.size(), series) == 0 && line.size() > series.size() &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return std::nan("");
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos ||
         text.compare(0, line.size() + 1, line + "\n") == 0;
}

metrics_input sample_input() {
  metrics_input in;
  auto& h = in.health;
  h.service = "my-bot.v2";
  h.connected = true;
  h.state = "connected";
  h.uptime_seconds = 12.5;
  h.channels = {"cytu.be/lounge", "cytu.be/quiet"};
  h.events_received = 7;
  h.events_by_channel = {{"cytu.be/lounge", 7}};
  h.events_handled = 6;
  h.commands_sent = 3;
  h.decode_errors = 1;
  h.handler_exceptions = 2;
  h.handler_timeouts = 3;
  h.dropped_events = 4;
  h.nats_errors = 5;
  h.publish_errors = 6;
  h.errors = 21;
  h.reconnects = 2;
  h.handler_restarts = 1;
  h.handlers_registered = 2;
  h.ready = true;
  kryten::handler_health a;
  a.label = "chatmsg#1";
  a.queued = 4;
  kryten::handler_health b;
  b.label = "user \"quoted\"\\#2";
  b.up = false;
  h.handlers = {a, b};
  in.version = "0.1.0";
  in.instance_id = "host-1234";

  latency_histogram run, queue;
  for (std::uint64_t v = 1; v <= 1000; ++v) {
    run.record(v * 1000);      // 1 us .. 1 ms
    queue.record(v * 50'000);  // 50 us .. 50 ms
  }
  in.histograms.push_back({a.label, run.snapshot(), queue.snapshot()});
  in.histograms.push_back({b.label, histogram_snapshot{}, histogram_snapshot{}});
  return in;
}

}  // namespace

TEST_CASE("metric_prefix maps a service name to a valid metric name", "[metrics]") {
  CHECK(metric_prefix("echo-bot") == "echo_bot");
  CHECK(metric_prefix("my-bot.v2") == "my_bot_v2");
  CHECK(metric_prefix("9lives") == "_9lives");
  CHECK(metric_prefix("ok_Name_1") == "ok_Name_1");
  CHECK(metric_prefix("a b/c:d") == "a_b_c_d");
  CHECK(metric_prefix("") == "kryten");
}

TEST_CASE("render_metrics writes the base and runtime series", "[metrics]") {
  auto text = render_metrics(sample_input(), {});
  INFO(text);
  const std::string p = "my_bot_v2";

  // PROTOCOL.md §6 base series.
  CHECK(has_line(text, "# TYPE " + p + "_uptime_seconds gauge"));
  CHECK(sample(text, p + "_uptime_seconds") == 12.5);
  CHECK(has_line(text, "# TYPE " + p + "_service_status gauge"));
  CHECK(sample(text, p + "_service_status") == 1);
  CHECK(has_line(text, "# TYPE " + p + "_nats_connected gauge"));
  CHECK(sample(text, p + "_nats_connected") == 1);

  // Runtime series.
  CHECK(has_line(text, "# TYPE " + p + "_events_received_total counter"));
  CHECK(sample(text, p + "_events_received_total{channel=\"cytu.be/lounge\"}") == 7);
  CHECK(sample(text, p + "_events_received_total{channel=\"cytu.be/quiet\"}") == 0);
  CHECK(sample(text, p + "_events_handled_total") == 6);
  CHECK(sample(text, p + "_commands_sent_total") == 3);
  CHECK(has_line(text, "# TYPE " + p + "_errors_total counter"));
  CHECK(sample(text, p + "_errors_total{kind=\"decode\"}") == 1);
  CHECK(sample(text, p + "_errors_total{kind=\"handler_exception\"}") == 2);
  CHECK(sample(text, p + "_errors_total{kind=\"handler_timeout\"}") == 3);
  CHECK(sample(text, p + "_errors_total{kind=\"dropped\"}") == 4);
  CHECK(sample(text, p + "_errors_total{kind=\"nats\"}") == 5);
  CHECK(sample(text, p + "_errors_total{kind=\"publish\"}") == 6);
  CHECK(sample(text, p + "_handler_restarts_total") == 1);
  CHECK(sample(text, p + "_nats_reconnects_total") == 2);
  CHECK(has_line(text, "# TYPE " + p + "_handlers_registered gauge"));
  CHECK(sample(text, p + "_handlers_registered") == 2);
  CHECK(sample(text, p + "_ready") == 1);
  CHECK(sample(text, p + "_info{instance_id=\"host-1234\",service=\"my-bot.v2\",version=\"0.1.0\"}") ==
        1);
  CHECK(sample(text, p + "_handler_up{handler=\"chatmsg#1\"}") == 1);
  CHECK(sample(text, p + "_handler_queued{handler=\"chatmsg#1\"}") == 4);
  CHECK(sample(text, p + "_handler_stuck{handler=\"chatmsg#1\"}") == 0);
  // Label values are escaped.
  CHECK(sample(text, p + "_handler_up{handler=\"user \\\"quoted\\\"\\\\#2\"}") == 0);

  // Histograms per handler, with exact cumulative buckets.
  CHECK(has_line(text, "# TYPE " + p + "_handler_duration_seconds histogram"));
  CHECK(has_line(text, "# TYPE " + p + "_handler_queue_delay_seconds histogram"));
  const std::string d = p + "_handler_duration_seconds";
  CHECK(sample(text, d + "_count{handler=\"chatmsg#1\"}") == 1000);
  CHECK(sample(text, d + "_sum{handler=\"chatmsg#1\"}") == Approx(0.5005));
  CHECK(sample(text, d + "_bucket{handler=\"chatmsg#1\",le=\"1e-05\"}") == 10);
  CHECK(sample(text, d + "_bucket{handler=\"chatmsg#1\",le=\"0.0001\"}") == 100);
  CHECK(sample(text, d + "_bucket{handler=\"chatmsg#1\",le=\"0.0005\"}") == 500);
  CHECK(sample(text, d + "_bucket{handler=\"chatmsg#1\",le=\"0.001\"}") == 1000);
  CHECK(sample(text, d + "_bucket{handler=\"chatmsg#1\",le=\"+Inf\"}") == 1000);
  const std::string q = p + "_handler_queue_delay_seconds";
  CHECK(sample(text, q + "_bucket{handler=\"chatmsg#1\",le=\"0.001\"}") == 20);
  CHECK(sample(text, q + "_bucket{handler=\"chatmsg#1\",le=\"0.01\"}") == 200);
  CHECK(sample(text, q + "_bucket{handler=\"chatmsg#1\",le=\"0.05\"}") == 1000);
  CHECK(sample(text, q + "_sum{handler=\"chatmsg#1\"}") == Approx(25.025));
  CHECK(sample(text, q + "_count{handler=\"user \\\"quoted\\\"\\\\#2\"}") == 0);

  // Every TYPE line names a valid metric and a known type.
  auto valid_name = [](const std::string& n) {
    if (n.empty() || (n[0] >= '0' && n[0] <= '9'))
      return false;
    for (char c : n)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == ':'))
        return false;
    return true;
  };
  std::istringstream in(text);
  std::string line;
  int types = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0)
      continue;
    std::istringstream words(line.substr(7));
    std::string name, type, rest;
    words >> name >> type >> rest;
    INFO(line);
    CHECK(valid_name(name));
    CHECK(name.rfind(p + "_", 0) == 0);
    CHECK((type == "counter" || type == "gauge" || type == "histogram"));
    CHECK(rest.empty());
    ++types;
  }
  CHECK(types == 17);
}

TEST_CASE("service_status is 0 when disconnected or degraded", "[metrics]") {
  kryten::health_status h;
  h.service = "bot";
  h.connected = false;
  auto text = render_metrics(h, "bot", {});
  CHECK(sample(text, "bot_service_status") == 0);
  CHECK(sample(text, "bot_nats_connected") == 0);
  CHECK(sample(text, "bot_ready") == 0);
  h.connected = true;
  h.degraded = true;
  text = render_metrics(h, "bot", {});
  CHECK(sample(text, "bot_service_status") == 0);
  CHECK(sample(text, "bot_nats_connected") == 1);
  h.degraded = false;
  text = render_metrics(h, "bot", {});
  CHECK(sample(text, "bot_service_status") == 1);
  // The service argument names the prefix.
  text = render_metrics(h, "other-name", {});
  CHECK(sample(text, "other_name_service_status") == 1);
}

TEST_CASE("custom registries are appended", "[metrics]") {
  auto user = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
    .Name("my_bot_v2_jokes_told_total")
    .Help("Jokes told.")
    .Register(*user)
    .Add({{"kind", "pun"}})
    .Increment(42);
  prometheus::BuildGauge().Name("user_queue_depth").Help("Depth.").Register(*user).Add({}).Set(3);
  // Colliding with a base family of another type: left out.
  auto clash = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
    .Name("my_bot_v2_uptime_seconds")
    .Help("clash")
    .Register(*clash)
    .Add({{"x", "y"}})
    .Increment(1);
  // Same name and type as a base family: merged into it.
  auto merge = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
    .Name("my_bot_v2_errors_total")
    .Help("more errors")
    .Register(*merge)
    .Add({{"kind", "user"}})
    .Increment(9);

  auto text = render_metrics(sample_input(), {user, nullptr, clash, merge});
  INFO(text);
  CHECK(has_line(text, "# TYPE my_bot_v2_jokes_told_total counter"));
  CHECK(sample(text, "my_bot_v2_jokes_told_total{kind=\"pun\"}") == 42);
  CHECK(sample(text, "user_queue_depth") == 3);
  CHECK(sample(text, "my_bot_v2_uptime_seconds") == 12.5);
  CHECK(std::isnan(sample(text, "my_bot_v2_uptime_seconds{x=\"y\"}")));
  CHECK(sample(text, "my_bot_v2_errors_total{kind=\"user\"}") == 9);
  auto r = promtool_check(text);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.empty());
}

TEST_CASE("the output passes promtool check metrics", "[metrics][promtool]") {
  SECTION("a full sample") {
    auto text = render_metrics(sample_input(), {});
    auto r = promtool_check(text);
    INFO(text);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.empty());
  }
  SECTION("a fresh runtime with no handlers and no events") {
    kryten::health_status h;
    h.service = "9-new bot";
    auto text = render_metrics(h, h.service, {});
    CHECK(sample(text, "_9_new_bot_uptime_seconds") == 0);
    auto r = promtool_check(text);
    INFO(text);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.empty());
  }
  SECTION("promtool does reject bad input (the check is live)") {
    auto r = promtool_check("# HELP bad x\n# TYPE bad counter\nbad 1\n");
    CHECK(r.exit_code != 0);
  }
}

TEST_CASE("the content type is Prometheus text 0.0.4", "[metrics]") {
  CHECK(std::string(metrics_content_type) == "text/plain; version=0.0.4; charset=utf-8");
}
