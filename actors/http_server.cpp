#include "actors/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

#include <spdlog/sinks/null_sink.h>

#include "actors/http_connection_loop.hpp"
#include "actors/http_request_parser.hpp"
#include "actors/http_response.hpp"
#include "actors/log_limiter.hpp"
#include "actors/metrics_renderer.hpp"
#include "actors/tcp_listener.hpp"

namespace kryten::detail {

nlohmann::json health_document(const kryten::health_status& h) {
  return h.to_json();
}

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// What is left of the budget after a callback's deadline: writing the answer.
constexpr milliseconds margin = 30ms;

constexpr int listen_backlog = 128;

enum class route { none, health, livez, readyz, metrics };

enum class answer { ok, late, failed };

template <typename R>
struct outcome {
  answer kind = answer::late;
  std::optional<R> value;  // when ok
  std::string error;       // when failed
};

std::string unanswered(answer) {
  return "runtime did not answer in time";
}

const char* const allowed_methods = "GET, HEAD";
const char* const json_type = "application/json";
const char* const text_type = "text/plain; charset=utf-8";

http_response json_response(int status, const nlohmann::json& body) {
  return {status, json_type,
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", {}};
}

http_response text_response(int status, std::string body) {
  return {status, text_type, std::move(body), {}};
}

}  // namespace

// -- http_server --------------------------------------------------------------------

struct http_server::impl {
  impl(std::string host_, int port_, probe_routes routes_, probe_callbacks callbacks,
       std::shared_ptr<spdlog::logger> log_, probe_limits limits_)
    : host(std::move(host_)),
      port(port_),
      routes(std::move(routes_)),
      cbs(std::make_shared<const probe_callbacks>(std::move(callbacks))),
      log(log_ ? std::move(log_)
               : std::make_shared<spdlog::logger>("kryten.http",
                                                  std::make_shared<spdlog::sinks::null_sink_mt>())),
      limits(limits_) {
    limits.threads = std::max<std::size_t>(limits.threads, 1);
    std::set<std::string> paths;
    auto add = [&](const std::string& p) {
      if (p.empty() || p[0] != '/')
        throw std::invalid_argument("HTTP probe path must start with '/': \"" + p + "\"");
      if (!paths.insert(p).second)
        throw std::invalid_argument("HTTP probe path used twice: " + p);
    };
    if (routes.serve_health) {
      add(routes.health_path);
      add("/livez");
      add("/readyz");
    }
    if (routes.serve_metrics)
      add(routes.metrics_path);
  }

  route route_of(const std::string& path) const {
    if (routes.serve_health) {
      if (path == routes.health_path)
        return route::health;
      if (path == "/livez")
        return route::livez;
      if (path == "/readyz")
        return route::readyz;
    }
    if (routes.serve_metrics && path == routes.metrics_path)
      return route::metrics;
    return route::none;
  }

  /// Answers a complete request (on a worker thread of the loop).
  http_response handle(const request_head& req, clock::time_point accepted) {
    auto until = accepted + limits.budget;
    auto r = route_of(req.path);
    if (r == route::none)
      return json_response(404, {{"error", "not found"}});
    if (req.method != "GET" && req.method != "HEAD") {
      auto res = json_response(405, {{"error", "method not allowed"}});
      res.headers.emplace_back("Allow", allowed_methods);
      return res;
    }
    if (stopping.load())
      return error_response(503, "shutting down");
    bool verbose = req.has_param("verbose");
    switch (r) {
      case route::health:
        return health(until);
      case route::livez:
        return livez(verbose, until);
      case route::readyz:
        return readyz(verbose, until);
      case route::metrics:
        return metrics(until);
      case route::none:
        break;
    }
    return json_response(404, {{"error", "not found"}});
  }

  http_response health(clock::time_point until) {
    auto o = ask(&probe_callbacks::health, until);
    if (o.kind == answer::failed)
      return error_response(500, o.error);
    if (o.kind != answer::ok || !*o.value)
      return error_response(503, unanswered(o.kind));
    try {
      auto doc = health_document(**o.value);
      bool healthy = doc["status"] == "healthy";
      return json_response(healthy ? 200 : 503, doc);
    } catch (const std::exception& e) {
      note("health", std::string("building the /health document failed: ") + e.what());
      return error_response(500, e.what());
    }
  }

  http_response livez(bool verbose, clock::time_point until) {
    bool alive = true;
    std::string why;
    if (cbs->alive) {
      auto o = ask(&probe_callbacks::alive, until);
      alive = o.kind == answer::ok && *o.value;
      why = o.kind == answer::failed ? o.error
            : o.kind == answer::ok   ? std::string("actor system did not answer in time")
                                     : unanswered(o.kind);
    }
    int status = alive ? 200 : 503;
    if (verbose) {
      std::string body = "[+]ping ok\n";
      body += alive ? "[+]runtime ok\n" : "[-]runtime failed: " + why + "\n";
      body += alive ? "livez check passed\n" : "livez check failed\n";
      return text_response(status, std::move(body));
    }
    if (alive)
      return json_response(200, {{"status", "alive"}});
    return error_response(503, why);
  }

  http_response readyz(bool verbose, clock::time_point until) {
    auto o = ask(&probe_callbacks::health, until);
    std::vector<std::pair<std::string, bool>> checks;
    std::string failure;
    bool ready = false;
    if (o.kind == answer::ok && *o.value) {
      const auto& h = **o.value;
      checks = {{"nats", h.connected},
                {"subscribed", h.subscribed || h.ready},
                {"shutting_down", !h.shutting_down}};
      ready = h.ready;
      if (!ready && h.connected && !h.shutting_down && (h.subscribed || h.ready))
        checks.emplace_back("ready", false);  // the runtime says not ready, for another reason
    } else {
      failure = o.kind == answer::failed ? o.error : unanswered(o.kind);
    }
    int status = ready ? 200 : 503;
    if (verbose) {
      std::string body;
      for (const auto& [name, ok] : checks)
        body += (ok ? "[+]" : "[-]") + name + (ok ? " ok\n" : " failed\n");
      if (!failure.empty())
        body += "[-]runtime failed: " + failure + "\n";
      body += ready ? "readyz check passed\n" : "readyz check failed\n";
      return text_response(status, std::move(body));
    }
    if (ready)
      return json_response(200, {{"status", "ready"}});
    nlohmann::json body = {{"status", "not ready"}};
    auto failed = nlohmann::json::array();
    for (const auto& [name, ok] : checks)
      if (!ok)
        failed.push_back(name);
    if (!failure.empty()) {
      failed.push_back("runtime");
      body["error"] = failure;
    }
    body["failed"] = std::move(failed);
    return json_response(503, body);
  }

  http_response metrics(clock::time_point until) {
    if (!cbs->metrics)
      return error_response(503, "no metrics source");
    auto o = ask(&probe_callbacks::metrics, until);
    if (o.kind == answer::failed)
      return error_response(500, o.error);
    if (o.kind != answer::ok || !*o.value)
      return error_response(503, unanswered(o.kind));
    return {200, metrics_content_type, std::move(**o.value), {}};
  }

  /// Runs a callback on this worker thread with a deadline (what is left
  /// of the request's budget, at most limits.deadline). The runtime's
  /// callbacks are CAF requests with that timeout: they return by then, and
  /// an empty answer means the runtime did not answer in time.
  template <typename R>
  outcome<R> ask(std::function<R(milliseconds)> probe_callbacks::*member, clock::time_point until) {
    outcome<R> o;
    auto& callback = (*cbs).*member;
    if (!callback) {
      o.kind = answer::failed;
      o.error = "no callback for this probe";
      return o;
    }
    auto left = std::chrono::duration_cast<milliseconds>(until - clock::now()) - margin;
    if (left < 10ms) {
      note("late", "HTTP probe: request waited too long before it could be served");
      return o;  // late
    }
    auto deadline = std::min(limits.deadline, left);
    try {
      o.value = callback(deadline);
      o.kind = answer::ok;
      if (!answered(*o.value))
        note("late", "HTTP probe: the runtime did not answer within "
                       + std::to_string(deadline.count()) + " ms");
    } catch (const std::exception& e) {
      o.kind = answer::failed;
      o.error = e.what();
      note("failed", std::string("HTTP probe callback failed: ") + e.what());
    } catch (...) {
      o.kind = answer::failed;
      o.error = "unknown exception";
      note("failed", "HTTP probe callback failed: unknown exception");
    }
    return o;
  }

  template <typename T>
  static bool answered(const std::optional<T>& x) {
    return x.has_value();
  }
  static bool answered(bool alive) { return alive; }

  /// A warning, at most one line per kind per interval.
  void note(const std::string& kind, const std::string& message) {
    std::uint64_t suppressed = 0;
    {
      std::lock_guard<std::mutex> lk(limiter_mutex);
      if (!limiter.admit(kind, suppressed))
        return;
    }
    if (suppressed > 0)
      log->warn("{} ({} more like it suppressed)", message, suppressed);
    else
      log->warn("{}", message);
  }

  void start() {
    std::unique_lock<std::mutex> lk(mutex);
    if (started)
      throw std::runtime_error("HTTP probe on " + host + ":" + std::to_string(port) +
                               " started twice");
    tcp_listener listener;
    try {
      listener = open_tcp_listener(host, port, listen_backlog);
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                               e.what());
    }
    port = listener.port;
    started = true;
    http_loop_limits ll;
    ll.threads = limits.threads;
    ll.max_connections = limits.max_connections;
    ll.request_timeout = limits.request_timeout;
    ll.write_timeout = limits.write_timeout;
    ll.head.max_head_bytes = limits.max_head_bytes;
    ll.max_body_bytes = limits.max_body_bytes;
    loop = std::make_unique<http_connection_loop>(
      listener, ll,
      [this](const request_head& req, clock::time_point accepted) {
        return handle(req, accepted);
      },
      [this](const std::string& kind, const std::string& message) { note(kind, message); });
    loop->start();  // the listener already accepts (the kernel queues until the loop runs)
    std::string paths;
    for (const auto& p : {routes.serve_health ? routes.health_path : std::string(),
                          routes.serve_health ? std::string("/livez /readyz") : std::string(),
                          routes.serve_metrics ? routes.metrics_path : std::string()})
      if (!p.empty())
        paths += (paths.empty() ? "" : " ") + p;
    log->info("HTTP probe listening on {}:{} ({})", host, port, paths);
  }

  void stop() {
    std::unique_lock<std::mutex> lk(mutex);
    if (!started || stopped)
      return;
    stopped = true;
    stopping = true;
    loop->stop();  // the workers return within a callback's deadline
    loop.reset();
    log->info("HTTP probe on {}:{} stopped", host, port);
  }

  std::string host;
  int port;
  probe_routes routes;
  std::shared_ptr<const probe_callbacks> cbs;
  std::shared_ptr<spdlog::logger> log;
  probe_limits limits;
  std::atomic<bool> stopping{false};

  std::mutex mutex;  // start/stop
  bool started = false;
  bool stopped = false;
  std::unique_ptr<http_connection_loop> loop;

  std::mutex limiter_mutex;
  log_limiter limiter;
};

http_server::http_server(std::string host, int port, probe_routes routes,
                         probe_callbacks callbacks, std::shared_ptr<spdlog::logger> log,
                         probe_limits limits)
  : impl_(std::make_unique<impl>(std::move(host), port, std::move(routes), std::move(callbacks),
                                 std::move(log), limits)) {}

http_server::~http_server() {
  stop();
}

void http_server::start() {
  impl_->start();
}

void http_server::stop() {
  impl_->stop();
}

int http_server::port() const {
  return impl_->port;
}

const std::string& http_server::host() const {
  return impl_->host;
}

}  // namespace kryten::detail
