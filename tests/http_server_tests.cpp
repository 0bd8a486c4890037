// http_server: real HTTP requests on 127.0.0.1 against a server whose
// runtime callbacks the tests control.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "actors/http_request_parser.hpp"
#include "actors/http_server.hpp"
#include "actors/metrics_renderer.hpp"

using namespace std::chrono_literals;
using kryten::detail::http_server;
using kryten::detail::probe_callbacks;
using kryten::detail::probe_routes;
using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// The probe answers every request within 1 s; sanitizer builds run several
// times slower, so they get more room.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr milliseconds answer_limit{1500};
#else
constexpr milliseconds answer_limit{1000};
#endif

milliseconds since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

/// A gate callbacks can block on; released at the latest when it is destroyed
/// (callbacks hold it by shared_ptr).
struct gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;

  /// True once released, false at the deadline.
  bool wait(milliseconds at_most) {
    std::unique_lock<std::mutex> lk(m);
    return cv.wait_for(lk, at_most, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lk(m);
      open = true;
    }
    cv.notify_all();
  }
};

/// What the callbacks answer; the tests change it.
struct fake_runtime {
  std::mutex m;
  kryten::health_status h;
  bool alive = true;
  bool answer = true;  // false: nullopt (the runtime did not answer)
  bool throws = false;
  milliseconds delay{0};
  std::atomic<int> calls{0};
  std::atomic<long> last_deadline_ms{0};
  // Set: the runtime is stuck. Callbacks wait on it up to their deadline and
  // then answer nothing, as the runtime's CAF requests time out.
  std::shared_ptr<gate> block;

  fake_runtime() {
    h.service = "probe-test";
    h.connected = true;
    h.state = "connected";
    h.uptime_seconds = 3.5;
    h.channels = {"cytu.be/lounge"};
    h.handlers_registered = 1;
    h.ready = true;
    h.subscribed = true;
  }

  template <typename T>
  std::optional<T> respond(milliseconds deadline, T value) {
    ++calls;
    last_deadline_ms = deadline.count();
    std::shared_ptr<gate> g;
    milliseconds d;
    bool ans, thr;
    {
      std::lock_guard<std::mutex> lk(m);
      g = block;
      d = delay;
      ans = answer;
      thr = throws;
    }
    if (g && !g->wait(deadline))
      return std::nullopt;
    if (d > 0ms)
      std::this_thread::sleep_for(d);
    if (thr)
      throw std::runtime_error("health source exploded");
    if (!ans)
      return std::nullopt;
    return value;
  }

  kryten::health_status snapshot() {
    std::lock_guard<std::mutex> lk(m);
    return h;
  }

  template <typename F>
  void set(F&& f) {
    std::lock_guard<std::mutex> lk(m);
    f(*this);
  }
};

probe_callbacks callbacks_for(const std::shared_ptr<fake_runtime>& rt) {
  probe_callbacks cb;
  cb.health = [rt](milliseconds d) { return rt->respond(d, rt->snapshot()); };
  cb.alive = [rt](milliseconds d) {
    bool alive;
    {
      std::lock_guard<std::mutex> lk(rt->m);
      alive = rt->alive;
    }
    return rt->respond(d, alive).value_or(false);
  };
  cb.metrics = [rt](milliseconds d) {
    return rt->respond(d, kryten::detail::render_metrics(rt->snapshot(), "probe-test", {}));
  };
  return cb;
}

std::shared_ptr<spdlog::logger> test_logger(std::ostringstream& out) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  return std::make_shared<spdlog::logger>("probe-test", sink);
}

httplib::Client client_for(const http_server& s) {
  httplib::Client cli("127.0.0.1", s.port());
  cli.set_connection_timeout(2s);
  cli.set_read_timeout(5s);
  cli.set_write_timeout(2s);
  return cli;
}

/// A started server on a free loopback port.
struct fixture {
  std::shared_ptr<fake_runtime> rt = std::make_shared<fake_runtime>();
  std::ostringstream log_text;
  std::unique_ptr<http_server> server;

  explicit fixture(probe_routes routes = {}) {
    server = std::make_unique<http_server>("127.0.0.1", 0, std::move(routes), callbacks_for(rt),
                                           test_logger(log_text));
    server->start();
  }
  ~fixture() {
    std::shared_ptr<gate> g;
    {
      std::lock_guard<std::mutex> lk(rt->m);
      g = rt->block;
    }
    if (g)
      g->release();
    server->stop();
  }
};

}  // namespace

TEST_CASE("GET /health answers the health document", "[http]") {
  fixture f;
  auto cli = client_for(*f.server);

  SECTION("healthy: 200") {
    f.rt->set([](fake_runtime& r) {
      r.h.details = {{"db", "ok"}, {"service", "not overridden"}};
      r.h.last_event_time = "2024-01-01T00:00:00Z";
    });
    auto res = cli.Get("/health");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->get_header_value("Content-Type") == "application/json");
    CHECK(res->get_header_value("Cache-Control") == "no-store");
    auto j = json::parse(res->body);
    CHECK(j["service"] == "probe-test");
    CHECK(j["status"] == "healthy");
    CHECK(j["nats_connected"] == true);
    CHECK(j["uptime_seconds"] == 3.5);
    CHECK(j["connected"] == true);
    CHECK(j["state"] == "connected");
    CHECK(j["channels"] == json::array({"cytu.be/lounge"}));
    CHECK(j["handlers_registered"] == 1);
    CHECK(j["last_event_time"] == "2024-01-01T00:00:00Z");
    CHECK(j["db"] == "ok");  // details merged at the top level
    CHECK(j.contains("handler_latency"));
    CHECK(j["handler_latency"].contains("p99_ms"));
    CHECK(j["ready"] == true);
    // The callback got a deadline of about 750 ms.
    CHECK(f.rt->last_deadline_ms > 500);
    CHECK(f.rt->last_deadline_ms <= 750);
  }
  SECTION("disconnected: 503 degraded") {
    f.rt->set([](fake_runtime& r) {
      r.h.connected = false;
      r.h.state = "disconnected";
    });
    auto res = cli.Get("/health");
    REQUIRE(res);
    CHECK(res->status == 503);
    auto j = json::parse(res->body);
    CHECK(j["status"] == "degraded");
    CHECK(j["nats_connected"] == false);
  }
  SECTION("degraded by a details callback: 503") {
    f.rt->set([](fake_runtime& r) {
      r.h.degraded = true;
      r.h.details = {{"db", "down"}};
    });
    auto res = cli.Get("/health");
    REQUIRE(res);
    CHECK(res->status == 503);
    auto j = json::parse(res->body);
    CHECK(j["status"] == "degraded");
    CHECK(j["db"] == "down");
  }
  SECTION("the runtime does not answer: 503 error") {
    f.rt->set([](fake_runtime& r) { r.answer = false; });
    auto res = cli.Get("/health");
    REQUIRE(res);
    CHECK(res->status == 503);
    auto j = json::parse(res->body);
    CHECK(j["status"] == "error");
    CHECK(j["error"] == "runtime did not answer in time");
  }
  SECTION("building it throws: 500 error") {
    f.rt->set([](fake_runtime& r) { r.throws = true; });
    auto res = cli.Get("/health");
    REQUIRE(res);
    CHECK(res->status == 500);
    auto j = json::parse(res->body);
    CHECK(j["status"] == "error");
    CHECK(j["error"] == "health source exploded");
  }
  SECTION("HEAD answers like GET, without a body") {
    auto res = cli.Head("/health");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body.empty());
    CHECK(res->get_header_value("Content-Type") == "application/json");
  }
}

TEST_CASE("GET /livez", "[http]") {
  fixture f;
  auto cli = client_for(*f.server);

  auto res = cli.Get("/livez");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(json::parse(res->body) == json{{"status", "alive"}});

  res = cli.Get("/livez?verbose");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
  CHECK(res->body == "[+]ping ok\n[+]runtime ok\nlivez check passed\n");

  f.rt->set([](fake_runtime& r) { r.alive = false; });
  res = cli.Get("/livez");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(json::parse(res->body)["status"] == "error");

  res = cli.Get("/livez?verbose=1");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(res->body.find("[-]runtime failed") != std::string::npos);
  CHECK(res->body.find("livez check failed\n") != std::string::npos);
}

TEST_CASE("GET /readyz", "[http]") {
  fixture f;
  auto cli = client_for(*f.server);

  auto res = cli.Get("/readyz");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(json::parse(res->body) == json{{"status", "ready"}});

  res = cli.Get("/readyz?verbose");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "[+]nats ok\n[+]subscribed ok\n[+]shutting_down ok\nreadyz check passed\n");

  SECTION("shutting down") {
    f.rt->set([](fake_runtime& r) {
      r.h.ready = false;
      r.h.shutting_down = true;
    });
    res = cli.Get("/readyz?verbose");
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK(res->body ==
          "[+]nats ok\n[+]subscribed ok\n[-]shutting_down failed\nreadyz check failed\n");
    res = cli.Get("/readyz");
    REQUIRE(res);
    CHECK(res->status == 503);
    auto j = json::parse(res->body);
    CHECK(j["status"] == "not ready");
    CHECK(j["failed"] == json::array({"shutting_down"}));
  }
  SECTION("not connected, not subscribed") {
    f.rt->set([](fake_runtime& r) {
      r.h.ready = false;
      r.h.connected = false;
      r.h.subscribed = false;
    });
    res = cli.Get("/readyz?verbose");
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK(res->body ==
          "[-]nats failed\n[-]subscribed failed\n[+]shutting_down ok\nreadyz check failed\n");
  }
  SECTION("the runtime does not answer") {
    f.rt->set([](fake_runtime& r) { r.answer = false; });
    res = cli.Get("/readyz?verbose");
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK(res->body ==
          "[-]runtime failed: runtime did not answer in time\nreadyz check failed\n");
  }
}

TEST_CASE("GET /metrics", "[http]") {
  fixture f;
  auto cli = client_for(*f.server);
  auto res = cli.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(res->body.find("\nprobe_test_uptime_seconds 3.5\n") != std::string::npos);
  CHECK(res->body.find("\nprobe_test_service_status 1\n") != std::string::npos);

  res = cli.Head("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body.empty());

  f.rt->set([](fake_runtime& r) { r.answer = false; });
  res = cli.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 503);
  f.rt->set([](fake_runtime& r) {
    r.answer = true;
    r.throws = true;
  });
  res = cli.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 500);
}

TEST_CASE("unknown paths answer 404 and other methods 405", "[http]") {
  fixture f;
  auto cli = client_for(*f.server);

  for (auto path : {"/", "/nope", "/health/", "/healthz", "/metrics/x"}) {
    auto res = cli.Get(path);
    REQUIRE(res);
    CHECK(res->status == 404);
    CHECK(json::parse(res->body) == json{{"error", "not found"}});
  }
  auto res = cli.Post("/nope", "x", "text/plain");
  REQUIRE(res);
  CHECK(res->status == 404);

  for (auto path : {"/health", "/livez", "/readyz", "/metrics"}) {
    INFO(path);
    std::vector<httplib::Result> results;
    results.push_back(cli.Post(path, "{}", "application/json"));
    results.push_back(cli.Post(path));
    results.push_back(cli.Put(path, "body", "text/plain"));
    results.push_back(cli.Patch(path, "body", "text/plain"));
    results.push_back(cli.Delete(path));
    results.push_back(cli.Options(path));
    httplib::Request trace;
    trace.method = "TRACE";
    trace.path = path;
    results.push_back(cli.send(trace));
    for (auto& r : results) {
      REQUIRE(r);
      CHECK(r->status == 405);
      CHECK(r->get_header_value("Allow") == "GET, HEAD");
    }
  }
  // A method on a known path never reaches the runtime.
  CHECK(f.rt->calls == 0);
}

TEST_CASE("routes can be split between two servers and renamed", "[http]") {
  probe_routes health_only;
  health_only.serve_metrics = false;
  health_only.health_path = "/healthz";
  fixture h(health_only);
  probe_routes metrics_only;
  metrics_only.serve_health = false;
  metrics_only.metrics_path = "/prom";
  fixture m(metrics_only);

  auto hc = client_for(*h.server);
  CHECK(hc.Get("/healthz")->status == 200);
  CHECK(hc.Get("/livez")->status == 200);
  CHECK(hc.Get("/health")->status == 404);
  CHECK(hc.Get("/metrics")->status == 404);
  auto mc = client_for(*m.server);
  CHECK(mc.Get("/prom")->status == 200);
  CHECK(mc.Get("/metrics")->status == 404);
  CHECK(mc.Get("/healthz")->status == 404);
  CHECK(mc.Get("/livez")->status == 404);
  CHECK(mc.Get("/readyz")->status == 404);

  probe_routes clash;
  clash.metrics_path = "/health";
  CHECK_THROWS_AS(http_server("127.0.0.1", 0, clash, {}, nullptr), std::invalid_argument);
  probe_routes relative;
  relative.health_path = "health";
  CHECK_THROWS_AS(http_server("127.0.0.1", 0, relative, {}, nullptr), std::invalid_argument);
}

TEST_CASE("a runtime that does not answer still gets an answer within 1 s", "[http][timing]") {
  fixture f;
  auto g = std::make_shared<gate>();
  f.rt->set([&](fake_runtime& r) { r.block = g; });
  auto cli = client_for(*f.server);

  for (auto path : {"/health", "/readyz", "/livez", "/metrics", "/readyz?verbose"}) {
    INFO(path);
    auto start = steady_clock::now();
    auto res = cli.Get(path);
    auto took = since(start);
    INFO("took " << took.count() << " ms");
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK(took < answer_limit);
    CHECK(took > 500ms);  // it did wait for the runtime, about 780 ms
  }
  auto res = cli.Get("/health");
  REQUIRE(res);
  CHECK(json::parse(res->body) ==
        json{{"status", "error"}, {"error", "runtime did not answer in time"}});
  CHECK(f.log_text.str().find("did not answer") != std::string::npos);

  // Once it answers again, so does the probe.
  g->release();
  f.rt->set([](fake_runtime& r) { r.block.reset(); });
  res = cli.Get("/health");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("every request is answered within 1 s when the runtime is stuck and many clients ask",
          "[http][timing]") {
  fixture f;
  auto g = std::make_shared<gate>();
  f.rt->set([&](fake_runtime& r) { r.block = g; });

  constexpr int clients = 20;
  std::atomic<int> answered{0}, slow{0}, not_503{0};
  std::atomic<long> worst{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto cli = client_for(*f.server);
      for (int k = 0; k < 2; ++k) {
        auto start = steady_clock::now();
        auto res = cli.Get(i % 2 ? "/health" : "/readyz");
        auto took = since(start).count();
        if (res) {
          ++answered;
          if (res->status != 503)
            ++not_503;
        }
        if (took >= answer_limit.count())
          ++slow;
        long w = worst.load();
        while (took > w && !worst.compare_exchange_weak(w, took)) {
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  INFO("worst: " << worst.load() << " ms");
  CHECK(answered == clients * 2);
  CHECK(not_503 == 0);
  CHECK(slow == 0);
  g->release();
}

TEST_CASE("200 concurrent requests are all answered within 1 s each", "[http][timing]") {
  fixture f;
  f.rt->set([](fake_runtime& r) { r.delay = 20ms; });

  constexpr int clients = 20, per_client = 10;
  std::atomic<int> ok{0}, slow{0};
  std::atomic<long> worst{0};
  std::vector<std::thread> threads;
  const char* paths[] = {"/health", "/readyz", "/livez", "/metrics", "/readyz?verbose"};
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto cli = client_for(*f.server);
      for (int k = 0; k < per_client; ++k) {
        auto start = steady_clock::now();
        auto res = cli.Get(paths[(i + k) % 5]);
        auto took = since(start).count();
        if (res && res->status == 200)
          ++ok;
        if (took >= answer_limit.count())
          ++slow;
        long w = worst.load();
        while (took > w && !worst.compare_exchange_weak(w, took)) {
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  INFO("worst: " << worst.load() << " ms");
  CHECK(ok == clients * per_client);
  CHECK(slow == 0);
}

TEST_CASE("stop() returns promptly", "[http][timing]") {
  SECTION("idle") {
    fixture f;
    CHECK(client_for(*f.server).Get("/health")->status == 200);
    auto start = steady_clock::now();
    f.server->stop();
    CHECK(since(start) < 500ms);
    f.server->stop();  // idempotent
    // No longer listening.
    httplib::Client cli("127.0.0.1", f.server->port());
    cli.set_connection_timeout(1s);
    CHECK(!cli.Get("/health"));
  }
  SECTION("with requests waiting on a stuck runtime") {
    fixture f;
    auto g = std::make_shared<gate>();
    f.rt->set([&](fake_runtime& r) { r.block = g; });
    std::vector<std::thread> threads;
    std::atomic<int> answered{0};
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&] {
        auto cli = client_for(*f.server);
        if (cli.Get("/health"))
          ++answered;
      });
    std::this_thread::sleep_for(200ms);  // let them reach the runtime
    auto start = steady_clock::now();
    f.server->stop();
    auto took = since(start);
    // The requests waiting on the runtime are answered (503) by their
    // deadline, and the threads join.
    CHECK(took < 1000ms);
    for (auto& t : threads)
      t.join();
    CHECK(answered == 4);
    g->release();
  }
}

TEST_CASE("start() reports a port in use and binds port 0 to a free port", "[http]") {
  fixture f;
  CHECK(f.server->port() > 0);
  CHECK(f.server->host() == "127.0.0.1");

  http_server second("127.0.0.1", f.server->port(), {}, callbacks_for(f.rt), nullptr);
  try {
    second.start();
    FAIL("start() on a port in use did not throw");
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    INFO(what);
    CHECK(what.find("cannot listen on 127.0.0.1:" + std::to_string(f.server->port())) == 0);
    CHECK(what.find("in use") != std::string::npos);
  }
  second.stop();  // harmless

  CHECK_THROWS_AS(f.server->start(), std::runtime_error);  // started twice

  http_server bad_host("256.1.1.1", 0, {}, {}, nullptr);
  CHECK_THROWS_WITH(bad_host.start(), Catch::Matchers::StartsWith("cannot listen on 256.1.1.1:0"));
}

TEST_CASE("a server without callbacks still answers", "[http]") {
  http_server s("127.0.0.1", 0, {}, {}, nullptr);
  s.start();
  auto cli = client_for(s);
  CHECK(cli.Get("/livez")->status == 200);  // the probe itself answers
  CHECK(cli.Get("/health")->status == 500);
  CHECK(cli.Get("/readyz")->status == 503);
  CHECK(cli.Get("/metrics")->status == 503);
  s.stop();
}

TEST_CASE("health_document", "[http]") {
  kryten::health_status h;
  h.service = "svc";
  h.connected = true;
  h.uptime_seconds = 1;
  h.events_by_channel = {{"a/b", 3}};
  kryten::handler_health hh;
  hh.label = "chatmsg#1";
  hh.run.count = 2;
  hh.run.p99_ms = 1.5;
  h.handlers = {hh};
  h.details = {{"status", "mine"}, {"extra", 1}};
  auto j = kryten::detail::health_document(h);
  CHECK(j["status"] == "healthy");  // not replaced by details
  CHECK(j["extra"] == 1);
  CHECK(j["events_by_channel"] == json{{"a/b", 3}});
  CHECK(j["handlers"][0]["label"] == "chatmsg#1");
  CHECK(j["handlers"][0]["run"]["p99_ms"] == 1.5);
  CHECK(j["last_event_time"].is_null());
  for (auto key : {"service", "connected", "state", "uptime_seconds", "channels", "events_received",
                   "commands_sent", "errors", "avg_event_latency_ms", "last_event_time",
                   "handlers_registered", "nats_connected", "decode_errors", "handler_exceptions",
                   "handler_timeouts", "dropped_events", "nats_errors", "publish_errors",
                   "reconnects", "events_handled", "handler_restarts", "handler_latency",
                   "queue_delay", "ready", "shutting_down", "degraded"})
    CHECK(j.contains(key));
  h.details = json::array({1, 2});
  CHECK(kryten::detail::health_document(h)["details"] == json::array({1, 2}));
  h.degraded = true;
  CHECK(kryten::detail::health_document(h)["status"] == "degraded");
}

// -- the request-head parser ---------------------------------------------------------

namespace {

using kryten::detail::parse_request_head;
using kryten::detail::parse_state;
using kryten::detail::request_head_limits;

/// The status of an error, 0 when complete, -1 when incomplete.
int outcome_of(std::string_view bytes, const request_head_limits& limits = {}) {
  auto r = parse_request_head(bytes, limits);
  if (r.state == parse_state::complete)
    return 0;
  if (r.state == parse_state::incomplete)
    return -1;
  return r.error_status;
}

}  // namespace

TEST_CASE("parse_request_head: a complete request", "[http][parser]") {
  const std::string req =
    "GET /livez?verbose HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent:  kube-probe/1.29 \r\n"
    "Accept: */*\r\n\r\nrest";
  auto r = parse_request_head(req);
  REQUIRE(r.state == parse_state::complete);
  CHECK(r.head_bytes == req.size() - 4);
  CHECK(r.method == "GET");
  CHECK(r.target == "/livez?verbose");
  CHECK(r.path == "/livez");
  CHECK(r.query == "verbose");
  CHECK(r.minor_version == 1);
  REQUIRE(r.headers.size() == 3);
  CHECK(r.headers[0] == std::pair<std::string, std::string>{"host", "127.0.0.1:8080"});
  CHECK(r.headers[1].second == "kube-probe/1.29");  // surrounding whitespace trimmed
  REQUIRE(r.header("accept") != nullptr);
  CHECK(*r.header("accept") == "*/*");
  CHECK(r.header("content-length") == nullptr);
  CHECK(r.has_param("verbose"));
  CHECK_FALSE(r.content_length);
  CHECK_FALSE(r.transfer_encoding);

  // HTTP/1.0, no fields, bare LF line ends, empty lines before the request line.
  auto old = parse_request_head("\r\n\nHEAD /health HTTP/1.0\n\n");
  REQUIRE(old.state == parse_state::complete);
  CHECK(old.method == "HEAD");
  CHECK(old.path == "/health");
  CHECK(old.minor_version == 0);
  CHECK(old.headers.empty());
  CHECK(old.head_bytes == 26);
}

TEST_CASE("parse_request_head: every prefix of a request is incomplete", "[http][parser]") {
  const std::string req =
    "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Long: a b\tc\r\n\r\n";
  for (std::size_t n = 0; n < req.size(); ++n) {
    INFO("prefix of " << n << " bytes: " << req.substr(0, n));
    CHECK(outcome_of(std::string_view(req).substr(0, n)) == -1);
  }
  auto r = parse_request_head(req + "abc");
  REQUIRE(r.state == parse_state::complete);
  CHECK(r.head_bytes == req.size());
  CHECK(r.content_length == 3u);
}

TEST_CASE("parse_request_head: oversized heads get 431", "[http][parser]") {
  std::string start = "GET /health HTTP/1.1\r\nHost: x\r\n";
  // Incomplete and already at the limit: 431 without waiting for the rest.
  std::string big = start + "X-Pad: " + std::string(9000, 'a');
  CHECK(outcome_of(big) == 431);
  CHECK(outcome_of(std::string(8192, 'G')) == 431);  // a request line that never ends
  CHECK(outcome_of(std::string(8191, 'G')) == -1);
  // Complete but longer than the limit.
  CHECK(outcome_of(start + "X-Pad: " + std::string(8200, 'a') + "\r\n\r\n") == 431);
  // Exactly at the limit is fine, one byte more is not.
  request_head_limits small;
  small.max_head_bytes = 64;
  std::string fits = "GET / HTTP/1.1\r\nX: ";
  fits += std::string(64 - fits.size() - 4, 'a') + "\r\n\r\n";
  REQUIRE(fits.size() == 64);
  CHECK(outcome_of(fits, small) == 0);
  CHECK(outcome_of("GET / HTTP/1.1\r\nX: a" + fits.substr(19), small) == 431);
  // Too many fields.
  request_head_limits few;
  few.max_headers = 3;
  CHECK(outcome_of("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", few) == 0);
  CHECK(outcome_of("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n", few) == 431);
}

TEST_CASE("parse_request_head: bad request lines", "[http][parser]") {
  for (const char* line : {"GET /\r\n\r\n", "GET\r\n\r\n", " GET / HTTP/1.1\r\n\r\n",
                           "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
                           "GET / HTTP/1.1x\r\n\r\n", "GET / http/1.1\r\n\r\n",
                           "GET / HTTP/11\r\n\r\n", "G@T / HTTP/1.1\r\n\r\n",
                           "GET /a\x01 HTTP/1.1\r\n\r\n", "GET /a\x7f HTTP/1.1\r\n\r\n",
                           "GET /\rx HTTP/1.1\r\n\r\n"}) {
    INFO(line);
    CHECK(outcome_of(line) == 400);
  }
  CHECK(outcome_of("GET / HTTP/2.0\r\n\r\n") == 505);
  CHECK(outcome_of("GET / HTTP/0.9\r\n\r\n") == 505);
  // Told before the line is complete: not a method (a TLS handshake, say).
  CHECK(outcome_of("\x16\x03\x01\x02\x00\x01") == 400);
  CHECK(outcome_of("GE") == -1);
  CHECK(outcome_of("GET /hea") == -1);
  CHECK(outcome_of("") == -1);
  CHECK(outcome_of("\r\n\r\n") == -1);  // empty lines only: still waiting
}

TEST_CASE("parse_request_head: folding and garbage in header fields", "[http][parser]") {
  const std::string start = "GET /health HTTP/1.1\r\n";
  for (std::string fields : {"X: a\r\n  folded\r\n\r\n",  // obsolete line folding
                             " Host: x\r\n\r\n",          // whitespace after the request line
                             "Host : x\r\n\r\n",          // whitespace before the colon
                             "Host\r\n\r\n",              // no colon
                             ": x\r\n\r\n",               // no name
                             "Ho(st: x\r\n\r\n",          // not a token
                             "X: a\x01b\r\n\r\n",         // a control character
                             "X: a\rb\r\n\r\n",           // a bare CR
                             "X: a\r\r\n\r\n"}) {
    INFO(fields);
    CHECK(outcome_of(start + fields) == 400);
  }
  // Errors in complete lines are found before the head is complete.
  CHECK(outcome_of(start + "Host : x\r\nmore") == 400);
  // Tabs and obs-text in values are fine.
  auto r = parse_request_head(start + "X:\ta\tb\xC3\xA9\r\nY:\r\n\r\n");
  REQUIRE(r.state == parse_state::complete);
  CHECK(*r.header("x") == "a\tb\xC3\xA9");
  CHECK(*r.header("y") == "");
}

TEST_CASE("parse_request_head: field names are lowercased and Content-Length is checked",
          "[http][parser]") {
  auto r = parse_request_head("POST /x HTTP/1.1\r\nCONTENT-LENGTH: 12\r\nX-Mixed-Case: V\r\n\r\n");
  REQUIRE(r.state == parse_state::complete);
  CHECK(r.content_length == 12u);
  REQUIRE(r.header("x-mixed-case") != nullptr);
  CHECK(*r.header("x-mixed-case") == "V");  // values keep their case
  CHECK(r.header("X-Mixed-Case") == nullptr);

  const std::string start = "POST /x HTTP/1.1\r\n";
  CHECK(parse_request_head(start + "Content-Length: 5, 5\r\n\r\n").content_length == 5u);
  CHECK(parse_request_head(start + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n")
          .content_length == 0u);
  for (std::string bad : {"Content-Length: abc\r\n\r\n", "Content-Length: -1\r\n\r\n",
                          "Content-Length: \r\n\r\n", "Content-Length: 5, 6\r\n\r\n",
                          "Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "Content-Length: 99999999999999999999999\r\n\r\n",
                          "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    INFO(bad);
    CHECK(outcome_of(start + bad) == 400);
  }
  auto te = parse_request_head(start + "Transfer-Encoding: chunked\r\n\r\n");
  REQUIRE(te.state == parse_state::complete);
  CHECK(te.transfer_encoding);
}

TEST_CASE("parse_request_head: paths and query strings", "[http][parser]") {
  auto head = [](const std::string& target) {
    return parse_request_head("GET " + target + " HTTP/1.1\r\n\r\n");
  };
  auto r = head("/livez?verbose");
  CHECK(r.path == "/livez");
  CHECK(r.has_param("verbose"));
  CHECK(head("/livez?verbose=1").has_param("verbose"));
  CHECK(head("/livez?a=b&verbose").has_param("verbose"));
  CHECK(head("/livez?a=b&verbose=&c").has_param("verbose"));
  CHECK(head("/livez?%76erbose").has_param("verbose"));  // keys are decoded
  CHECK_FALSE(head("/livez?verbosity=1").has_param("verbose"));
  CHECK_FALSE(head("/livez?a=verbose").has_param("verbose"));
  CHECK_FALSE(head("/livez").has_param("verbose"));
  r = head("/livez?");
  CHECK(r.path == "/livez");
  CHECK(r.query.empty());
  CHECK_FALSE(r.has_param("verbose"));
  CHECK(head("/a?b?c").query == "b?c");
  CHECK(head("/%68ealth").path == "/health");     // percent-decoded
  CHECK(head("/health%2").path == "/health%2");   // an invalid escape is kept
  CHECK(head("/health%zz").path == "/health%zz");
  r = head("http://127.0.0.1:8080/health?verbose");  // absolute-form
  CHECK(r.path == "/health");
  CHECK(r.query == "verbose");
  CHECK(head("HTTP://host").path == "/");
  CHECK(head("https://host?verbose").has_param("verbose"));
  CHECK(head("*").path == "*");                      // asterisk-form
  CHECK(head("example.com:443").path == "example.com:443");  // authority-form
}

TEST_CASE("parse_request_head: arbitrary bytes give a result", "[http][parser]") {
  // A cheap stand-in for the fuzzer: random mutations of a valid head.
  const std::string seed =
    "GET /livez?verbose HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  std::uint32_t x = 12345;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  };
  const char alphabet[] = {'\r', '\n', ' ', '\t', ':', '?', '%', '/', 'H', '\0', '\x7f',
                           '\xff', ',', '1', 'a'};
  request_head_limits small;
  small.max_head_bytes = 48;
  int complete = 0, errors = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = seed;
    for (int k = 0, n = 1 + next() % 4; k < n; ++k) {
      auto at = next() % (s.size() + 1);
      switch (next() % 3) {
        case 0:
          s.insert(s.begin() + at, alphabet[next() % sizeof alphabet]);
          break;
        case 1:
          if (at < s.size())
            s.erase(at, 1);
          break;
        default:
          if (at < s.size())
            s[at] = static_cast<char>(next());
      }
    }
    s.resize(next() % (s.size() + 1));
    auto r = parse_request_head(s, i % 2 ? small : request_head_limits{});
    if (r.state == parse_state::complete) {
      ++complete;
      REQUIRE(r.head_bytes <= s.size());
    } else if (r.state == parse_state::error) {
      ++errors;
      REQUIRE((r.error_status == 400 || r.error_status == 431 || r.error_status == 505));
      REQUIRE(!r.error.empty());
    }
  }
  CHECK(complete > 0);
  CHECK(errors > 0);
}
