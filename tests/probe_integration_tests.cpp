// Integration tests of the HTTP probe (PROTOCOL.md §6) as a real kryten::client
// starts it: /health, /livez, /readyz and /metrics over real HTTP against a
// client connected to a real nats-server. NATS outages, shutdown, custom
// details and metrics, concurrent probing under handler load, a separate
// metrics port, and the endpoints advertised in the startup lifecycle event.
//
// Each test starts its own nats-server on a free loopback port and probes on
// free ports. Waits are conditions with deadlines (wait_until, wait_for); the
// only sleeps are inside handlers whose slowness is the subject of a test.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "kryten/client.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::chat_event;
using kryten::test::free_port;
using kryten::test::lounge_chat;
using kryten::test::nats_server;
using kryten::test::wait_until;

namespace {

using steady = std::chrono::steady_clock;

const std::string service_name = "probe-bot";
const std::string prefix = "probe_bot";  // metric prefix of service_name

/// A service with the probe on `health_port` (health and metrics on the same
/// port unless `metrics_port` is given) on 127.0.0.1.
kryten::kryten_config probe_config(const std::string& url, int health_port,
                                   std::optional<int> metrics_port = std::nullopt) {
  auto cfg = kryten::test::make_config(url, service_name);
  cfg.service->health_host = "127.0.0.1";
  cfg.service->health_port = health_port;
  cfg.service->metrics_port = metrics_port ? *metrics_port : health_port;
  return cfg;
}

/// One HTTP exchange: nullopt when no HTTP response came (connection error).
struct reply {
  int status = 0;
  std::string body;
  std::string content_type;
  json doc() const { return json::parse(body, nullptr, false); }
};

httplib::Client http_client(int port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(2s);
  cli.set_read_timeout(3s);
  cli.set_write_timeout(2s);
  return cli;
}

std::optional<reply> to_reply(const httplib::Result& res) {
  if (!res)
    return std::nullopt;
  return reply{res->status, res->body, res->get_header_value("Content-Type")};
}

std::optional<reply> get(int port, const std::string& path) {
  auto cli = http_client(port);
  return to_reply(cli.Get(path.c_str()));
}

int status_of(int port, const std::string& path) {
  auto r = get(port, path);
  return r ? r->status : -1;
}

/// The value of the sample line that starts with `series` followed by a
/// space (e.g. `x_total{channel="a"}`), if there is one.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0)
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
  }
  return std::nullopt;
}

/// An executable named `name` in PATH.
std::optional<std::string> find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr)
    return std::nullopt;
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty())
      continue;
    auto candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)
        && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return std::nullopt;
}

/// Runs `promtool check metrics < file` on `text`; its exit code and output.
std::pair<int, std::string> promtool_check(const std::string& promtool, const std::string& text) {
  char dir_template[] = "/tmp/kryten-probe-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  REQUIRE(dir != nullptr);
  std::string metrics_file = std::string(dir) + "/metrics.txt";
  std::string output_file = std::string(dir) + "/promtool.out";
  {
    std::ofstream out(metrics_file);
    out << text;
  }
  std::string cmd = "'" + promtool + "' check metrics < '" + metrics_file + "' > '" + output_file
                    + "' 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(output_file);
  std::stringstream output;
  output << in.rdbuf();
  std::remove(metrics_file.c_str());
  std::remove(output_file.c_str());
  ::rmdir(dir);
  int code = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  return {code, output.str()};
}

}  // namespace

// -- 1. a connected service -------------------------------------------------------

TEST_CASE("probe: a connected client answers /health, /livez and /readyz",
          "[probe-integration][health]") {
  nats_server server;
  const int port = free_port();
  kryten::client client{probe_config(server.url(), port)};
  client.on("chatmsg", [](const kryten::chat_message&) {});
  client.connect();
  REQUIRE(wait_until([&] { return status_of(port, "/readyz") == 200; }, 5s));

  auto health = get(port, "/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->content_type.rfind("application/json", 0) == 0);
  auto doc = health->doc();
  REQUIRE(doc.is_object());
  INFO(health->body);
  CHECK(doc["service"] == service_name);
  CHECK(doc["status"] == "healthy");
  CHECK(doc["uptime_seconds"].is_number());
  CHECK(doc["uptime_seconds"].get<double>() >= 0.0);
  CHECK(doc["nats_connected"] == true);
  CHECK(doc["events_received"].is_number_unsigned());
  CHECK(doc["commands_sent"].is_number_unsigned());
  CHECK(doc["errors"] == 0);
  CHECK(doc["avg_event_latency_ms"].is_number());
  CHECK(doc["handlers_registered"] == 1);
  CHECK(doc["state"] == "connected");
  CHECK(doc["channels"] == json::array({"cytu.be/lounge"}));

  auto livez = get(port, "/livez");
  REQUIRE(livez);
  CHECK(livez->status == 200);
  auto readyz = get(port, "/readyz");
  REQUIRE(readyz);
  CHECK(readyz->status == 200);
  auto verbose = get(port, "/readyz?verbose");
  REQUIRE(verbose);
  CHECK(verbose->status == 200);
  CHECK(verbose->body.find("[+]nats ok") != std::string::npos);

  auto unknown = get(port, "/no-such-path");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);

  auto cli = http_client(port);
  auto post = to_reply(cli.Post("/health", "", "text/plain"));
  REQUIRE(post);
  CHECK(post->status == 405);
}

// -- 2. NATS outage ---------------------------------------------------------------

TEST_CASE("probe: /health turns 503 degraded while NATS is down and recovers",
          "[probe-integration][health][reconnect]") {
  nats_server server;
  const int port = free_port();
  kryten::client client{probe_config(server.url(), port)};
  client.connect();
  REQUIRE(wait_until([&] { return status_of(port, "/health") == 200; }, 5s));

  server.stop();
  std::optional<reply> down;
  REQUIRE(wait_until(
    [&] {
      down = get(port, "/health");
      return down && down->status == 503;
    },
    10s, 20ms));
  auto doc = down->doc();
  INFO(down->body);
  CHECK(doc["status"] == "degraded");
  CHECK(doc["nats_connected"] == false);
  CHECK(status_of(port, "/readyz") == 503);
  CHECK(status_of(port, "/livez") == 200);  // the process is alive, just not ready

  server.start();
  std::optional<reply> up;
  REQUIRE(wait_until(
    [&] {
      up = get(port, "/health");
      return up && up->status == 200;
    },
    15s, 20ms));
  auto doc2 = up->doc();
  CHECK(doc2["status"] == "healthy");
  CHECK(doc2["nats_connected"] == true);
  CHECK(wait_until([&] { return status_of(port, "/readyz") == 200; }, 5s, 20ms));
}

// -- 3. shutdown ------------------------------------------------------------------

TEST_CASE("probe: /readyz is 503 during a graceful shutdown while /livez still answers",
          "[probe-integration][readyz][shutdown]") {
  nats_server server;
  const int port = free_port();
  kryten::client client{probe_config(server.url(), port)};  // shutdown_timeout 5
  std::atomic<int> entered{0};
  std::atomic<int> finished{0};
  client.on("chatmsg", [&](const kryten::chat_message&) {
    ++entered;
    std::this_thread::sleep_for(1500ms);  // the slow handler shutdown waits for
    ++finished;
  });
  client.connect();
  REQUIRE(wait_until([&] { return status_of(port, "/readyz") == 200; }, 5s));

  bus_client bus(server.url());
  bus.publish(lounge_chat, chat_event("alice", "slow"));
  bus.flush();
  REQUIRE(wait_until([&] { return entered.load() == 1; }, 5s));

  auto started = steady::now();
  auto disconnecting = std::async(std::launch::async, [&] { client.disconnect("test"); });
  std::optional<reply> readyz;
  bool seen_during_shutdown = wait_until(
    [&] {
      readyz = get(port, "/readyz");
      return readyz && readyz->status == 503;
    },
    3s, 10ms);
  bool still_running = disconnecting.wait_for(0s) != std::future_status::ready;
  CHECK(seen_during_shutdown);
  CHECK(still_running);

  auto livez = get(port, "/livez");
  bool livez_during_shutdown = disconnecting.wait_for(0s) != std::future_status::ready;
  REQUIRE(livez);
  CHECK(livez->status == 200);
  CHECK(livez_during_shutdown);

  REQUIRE(disconnecting.wait_for(10s) == std::future_status::ready);
  auto took = steady::now() - started;
  CHECK(finished.load() == 1);  // the queued work was let finish
  CHECK(took >= 1000ms);
  CHECK(status_of(port, "/readyz") == 503);  // and stays so after the disconnect
}

// -- 4. /metrics ------------------------------------------------------------------

TEST_CASE("probe: /metrics serves valid Prometheus text with the runtime's series",
          "[probe-integration][metrics]") {
  nats_server server;
  const int port = free_port();
  kryten::client client{probe_config(server.url(), port)};
  std::atomic<int> handled{0};
  client.on("chatmsg", [&](const kryten::chat_message&) { ++handled; });
  client.connect();
  REQUIRE(wait_until([&] { return status_of(port, "/readyz") == 200; }, 5s));

  constexpr int n = 7;
  bus_client bus(server.url());
  for (int i = 0; i < n; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();
  REQUIRE(wait_until([&] { return client.health().events_handled == n; }, 5s));
  CHECK(handled.load() == n);

  auto m = get(port, "/metrics");
  REQUIRE(m);
  CHECK(m->status == 200);
  CHECK(m->content_type.rfind("text/plain; version=0.0.4", 0) == 0);
  const auto& text = m->body;
  INFO(text);
  CHECK(sample(text, prefix + "_uptime_seconds").has_value());
  CHECK(sample(text, prefix + "_service_status") == 1.0);
  CHECK(sample(text, prefix + "_nats_connected") == 1.0);
  CHECK(sample(text, prefix + "_events_received_total{channel=\"cytu.be/lounge\"}") == n);
  CHECK(text.find(prefix + "_handler_duration_seconds_bucket{handler=\"chatmsg#1\"")
        != std::string::npos);
  CHECK(sample(text, prefix + "_handler_duration_seconds_count{handler=\"chatmsg#1\"}") == n);
  CHECK(sample(text, prefix + "_handler_duration_seconds_bucket{handler=\"chatmsg#1\",le=\"+Inf\"}")
        == n);

  auto promtool = find_in_path("promtool");
  if (!promtool)
    FAIL("promtool not found in PATH");
  auto [code, output] = promtool_check(*promtool, text);
  INFO("promtool: " << output);
  CHECK(code == 0);
}

// -- 5. custom details and metrics ------------------------------------------------

TEST_CASE("probe: custom health details and custom metrics are served",
          "[probe-integration][health][metrics]") {
  nats_server server;
  const int port = free_port();
  kryten::client client{probe_config(server.url(), port)};
  std::atomic<bool> degraded{false};
  client.add_health_details([] { return json{{"queue_depth", 3}}; });
  client.add_health_details([&] {
    return degraded.load() ? json{{"degraded", true}} : json::object();
  });
  prometheus::BuildCounter()
    .Name("my_custom_total")
    .Help("x")
    .Register(client.metrics_registry())
    .Add({})
    .Increment(2);
  client.connect();
  REQUIRE(wait_until([&] { return status_of(port, "/readyz") == 200; }, 5s));

  auto h = get(port, "/health");
  REQUIRE(h);
  CHECK(h->status == 200);
  auto doc = h->doc();
  INFO(h->body);
  CHECK(doc["queue_depth"] == 3);
  CHECK(doc["status"] == "healthy");

  degraded = true;
  auto h2 = get(port, "/health");
  REQUIRE(h2);
  CHECK(h2->status == 503);
  auto doc2 = h2->doc();
  INFO(h2->body);
  CHECK(doc2["status"] == "degraded");
  CHECK(doc2["degraded"] == true);
  CHECK(doc2["nats_connected"] == true);
  CHECK(doc2["queue_depth"] == 3);

  auto m = get(port, "/metrics");
  REQUIRE(m);
  CHECK(m->status == 200);
  INFO(m->body);
  CHECK(sample(m->body, "my_custom_total") == 2.0);
  CHECK(sample(m->body, prefix + "_service_status") == 0.0);  // degraded

  degraded = false;
  CHECK(status_of(port, "/health") == 200);
}

// -- 6. concurrent probing under handler load -------------------------------------

TEST_CASE("probe: 200 concurrent requests are each answered within 1 s while handlers "
          "are saturated",
          "[probe-integration][load]") {
  nats_server server;
  const int port = free_port();
  auto cfg = probe_config(server.url(), port);
  cfg.handler_queue_size = 4;
  kryten::client client{cfg};
  std::atomic<int> runs{0};
  for (int i = 0; i < 2; ++i)
    client.on("chatmsg", [&](const kryten::chat_message&) {
      ++runs;
      std::this_thread::sleep_for(50ms);
    });
  client.connect();
  REQUIRE(wait_until([&] { return status_of(port, "/readyz") == 200; }, 5s));

  constexpr int events = 500;
  bus_client bus(server.url());
  for (int i = 0; i < events; ++i)
    bus.publish(lounge_chat, chat_event("alice", std::to_string(i)));
  bus.flush();
  REQUIRE(wait_until([&] { return runs.load() >= 2; }, 5s));  // both handlers busy

  constexpr int threads = 20;
  constexpr int per_thread = 10;
  const std::vector<std::string> paths = {"/health", "/livez", "/readyz", "/metrics"};
  struct result {
    std::string path;
    int status = -1;  // -1: no HTTP response
    std::string error;
    std::chrono::milliseconds took{0};
  };
  std::vector<std::vector<result>> results(threads);
  std::atomic<int> go{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ++go;
      while (go.load() < threads)
        std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) {
        result r;
        r.path = paths[(t + i) % paths.size()];
        auto start = steady::now();
        auto cli = http_client(port);
        auto res = cli.Get(r.path.c_str());
        r.took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
        if (res)
          r.status = res->status;
        else
          r.error = httplib::to_string(res.error());
        results[t].push_back(std::move(r));
      }
    });
  for (auto& th : pool)
    th.join();

  // Still saturated while probed: events kept arriving faster than handled.
  auto h = client.health();
  CHECK(h.events_received == events);
  CHECK(h.dropped_events > 0);

  int answered = 0, ok = 0, busy = 0;
  std::chrono::milliseconds slowest{0};
  for (const auto& per : results)
    for (const auto& r : per) {
      INFO(r.path << " -> " << r.status << " " << r.error << " in " << r.took.count() << " ms");
      CHECK(r.status > 0);
      CHECK(r.took < 1000ms);
      if (r.status > 0)
        ++answered;
      if (r.status == 200)
        ++ok;
      if (r.status == 503)
        ++busy;
      slowest = std::max(slowest, r.took);
    }
  CHECK(answered == threads * per_thread);
  WARN("200 probe requests: " << ok << " x 200, " << busy << " x 503, slowest "
                              << slowest.count() << " ms");
}

// -- 7. a separate metrics port ---------------------------------------------------

TEST_CASE("probe: a separate metrics_port serves /metrics only", "[probe-integration][metrics]") {
  nats_server server;
  const int health_port = free_port();
  int metrics_port = free_port();
  REQUIRE(wait_until(
    [&] {
      if (metrics_port != health_port)
        return true;
      metrics_port = free_port();
      return false;
    },
    2s, 1ms));
  kryten::client client{probe_config(server.url(), health_port, metrics_port)};
  client.connect();
  REQUIRE(wait_until([&] { return status_of(health_port, "/readyz") == 200; }, 5s));

  auto m = get(metrics_port, "/metrics");
  REQUIRE(m);
  CHECK(m->status == 200);
  CHECK(m->content_type.rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(sample(m->body, prefix + "_nats_connected") == 1.0);

  CHECK(status_of(metrics_port, "/health") == 404);
  CHECK(status_of(metrics_port, "/readyz") == 404);
  CHECK(status_of(health_port, "/metrics") == 404);
  CHECK(status_of(health_port, "/health") == 200);
}

TEST_CASE("probe: connect() fails with the port named when the probe port is taken",
          "[probe-integration][ports]") {
  nats_server server;
  const int port = free_port();
  kryten::client first{probe_config(server.url(), port)};
  first.connect();
  REQUIRE(wait_until([&] { return status_of(port, "/readyz") == 200; }, 5s));

  kryten::client second{probe_config(server.url(), port)};
  try {
    second.connect();
    FAIL("connect() succeeded on a port in use");
  } catch (const kryten::connect_error& e) {
    CHECK(std::string{e.what()}.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  }
  CHECK_FALSE(second.is_connected());
  CHECK(status_of(port, "/readyz") == 200);  // the first one still serves
}

// -- 8. endpoints in the startup event --------------------------------------------

TEST_CASE("probe: the startup lifecycle event advertises the probe endpoints",
          "[probe-integration][lifecycle]") {
  nats_server server;
  const int health_port = free_port();
  int metrics_port = free_port();
  REQUIRE(wait_until(
    [&] {
      if (metrics_port != health_port)
        return true;
      metrics_port = free_port();
      return false;
    },
    2s, 1ms));
  auto cfg = probe_config(server.url(), health_port, metrics_port);
  cfg.service->enable_lifecycle = true;
  const std::string subject = "kryten.lifecycle." + service_name + ".startup";
  bus_client bus(server.url());
  bus.subscribe(subject);

  kryten::client client{cfg};
  client.connect();
  auto msg = bus.wait_for(subject, 5s);
  REQUIRE(msg);
  auto body = json::parse(msg->data, nullptr, false);
  INFO(msg->data);
  REQUIRE(body.is_object());
  const auto& endpoints = body["metadata"]["endpoints"];
  CHECK(endpoints["health"]["port"] == health_port);
  CHECK(endpoints["health"]["path"] == "/health");
  CHECK(endpoints["metrics"]["port"] == metrics_port);
  CHECK(endpoints["metrics"]["path"] == "/metrics");

  // And they are where the event says.
  CHECK(status_of(health_port, endpoints["health"]["path"].get<std::string>()) == 200);
  CHECK(status_of(metrics_port, endpoints["metrics"]["path"].get<std::string>()) == 200);
}
