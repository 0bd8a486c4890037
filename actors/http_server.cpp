#include "actors/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <httplib.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/socket.h>

#include "actors/log_limiter.hpp"
#include "actors/metrics_renderer.hpp"

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

// When the connection the current worker thread serves was accepted.
thread_local clock::time_point t_accepted{};

/// httplib's thread pool, noting when each connection was accepted.
class timed_queue final : public httplib::TaskQueue {
public:
  explicit timed_queue(std::size_t threads) : pool_(threads) {}

  void enqueue(std::function<void()> fn) override {
    auto accepted = clock::now();
    pool_.enqueue([fn = std::move(fn), accepted] {
      t_accepted = accepted;
      fn();
      t_accepted = {};
    });
  }

  void shutdown() override { pool_.shutdown(); }

private:
  httplib::ThreadPool pool_;
};

/// httplib::Server with access to its listening socket (to raise the
/// listen backlog from httplib's 5).
class server final : public httplib::Server {
public:
  socket_t listening_socket() const { return svr_sock_; }
};

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

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  json_type);
}

void send_error(httplib::Response& res, int status, const std::string& error) {
  send_json(res, status, {{"status", "error"}, {"error", error}});
}

bool has_body(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding"))
    return true;
  auto length = req.get_header_value("Content-Length");
  return !length.empty() && length != "0";
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
    configure();
  }

  void configure() {
    auto threads = limits.threads;
    svr.new_task_queue = [threads] { return new timed_queue(threads); };
    // One request per connection: an idle keep-alive connection would hold a
    // worker; a connection that sends nothing is dropped after 1 s.
    svr.set_keep_alive_max_count(1);
    svr.set_keep_alive_timeout(1);
    svr.set_read_timeout(1, 0);
    svr.set_write_timeout(1, 0);
    svr.set_payload_max_length(64 * 1024);
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
    // a second server bind a port that is in use.
    svr.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // Requests without a body are answered before httplib's routing (this
    // covers every method, CONNECT and TRACE too); those with a body are
    // read first (up to the payload limit), then answered the same way.
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (has_body(req))
        return httplib::Server::HandlerResponse::Unhandled;
      handle(req, res);
      return httplib::Server::HandlerResponse::Handled;
    });
    auto h = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    svr.Get(".*", h);
    svr.Post(".*", h);
    svr.Put(".*", h);
    svr.Patch(".*", h);
    svr.Delete(".*", h);
    svr.Options(".*", h);
    svr.set_exception_handler([this](const httplib::Request&, httplib::Response& res,
                                     std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        if (ep)
          std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      note("exception", "HTTP probe request failed: " + what);
      send_error(res, 500, what);
    });
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

  void handle(const httplib::Request& req, httplib::Response& res) {
    auto accepted = t_accepted == clock::time_point{} ? clock::now() : t_accepted;
    auto until = accepted + limits.budget;
    res.set_header("Cache-Control", "no-store");
    auto r = route_of(req.path);
    if (r == route::none)
      return send_json(res, 404, {{"error", "not found"}});
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", allowed_methods);
      return send_json(res, 405, {{"error", "method not allowed"}});
    }
    if (stopping.load())
      return send_error(res, 503, "shutting down");
    bool verbose = req.has_param("verbose");
    switch (r) {
      case route::health:
        return health(res, until);
      case route::livez:
        return livez(res, verbose, until);
      case route::readyz:
        return readyz(res, verbose, until);
      case route::metrics:
        return metrics(res, until);
      case route::none:
        break;
    }
  }

  void health(httplib::Response& res, clock::time_point until) {
    auto o = ask(&probe_callbacks::health, until);
    if (o.kind == answer::failed)
      return send_error(res, 500, o.error);
    if (o.kind != answer::ok || !*o.value)
      return send_error(res, 503, unanswered(o.kind));
    try {
      auto doc = health_document(**o.value);
      bool healthy = doc["status"] == "healthy";
      send_json(res, healthy ? 200 : 503, doc);
    } catch (const std::exception& e) {
      note("health", std::string("building the /health document failed: ") + e.what());
      send_error(res, 500, e.what());
    }
  }

  void livez(httplib::Response& res, bool verbose, clock::time_point until) {
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
      res.status = status;
      return res.set_content(body, text_type);
    }
    if (alive)
      return send_json(res, 200, {{"status", "alive"}});
    send_error(res, 503, why);
  }

  void readyz(httplib::Response& res, bool verbose, clock::time_point until) {
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
      res.status = status;
      return res.set_content(body, text_type);
    }
    if (ready)
      return send_json(res, 200, {{"status", "ready"}});
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
    send_json(res, 503, body);
  }

  void metrics(httplib::Response& res, clock::time_point until) {
    if (!cbs->metrics)
      return send_error(res, 503, "no metrics source");
    auto o = ask(&probe_callbacks::metrics, until);
    if (o.kind == answer::failed)
      return send_error(res, 500, o.error);
    if (o.kind != answer::ok || !*o.value)
      return send_error(res, 503, unanswered(o.kind));
    res.status = 200;
    res.set_content(std::move(**o.value), metrics_content_type);
  }

  /// Runs a callback on this server thread with a deadline (what is left
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
    errno = 0;
    int bound = -1;
    if (port == 0)
      bound = svr.bind_to_any_port(host);
    else if (svr.bind_to_port(host, port))
      bound = port;
    if (bound <= 0) {
      int e = errno;
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                               (e != 0 ? std::strerror(e) : "cannot bind to this address"));
    }
    ::listen(svr.listening_socket(), 128);  // httplib listens with a backlog of 5
    port = bound;
    started = true;
    listener = std::thread([this] {
      svr.listen_after_bind();
      std::lock_guard<std::mutex> g(mutex);
      listener_done = true;
      changed.notify_all();
    });
    auto limit = clock::now() + 5s;
    while (!svr.is_running() && !listener_done && clock::now() < limit)
      changed.wait_for(lk, 1ms);
    if (!svr.is_running()) {
      lk.unlock();
      stop();
      throw std::runtime_error("HTTP probe on " + host + ":" + std::to_string(bound) +
                               " did not start");
    }
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
    // Server::stop() only acts once the accept loop runs; call it once.
    while (!svr.is_running() && !listener_done)
      changed.wait_for(lk, 1ms);
    if (!listener_done)
      svr.stop();
    lk.unlock();
    if (listener.joinable())
      listener.join();  // the workers return within ~1 s: every wait in them is bounded
    log->info("HTTP probe on {}:{} stopped", host, port);
  }

  std::string host;
  int port;
  probe_routes routes;
  std::shared_ptr<const probe_callbacks> cbs;
  std::shared_ptr<spdlog::logger> log;
  probe_limits limits;
  server svr;
  std::atomic<bool> stopping{false};

  std::mutex mutex;  // start/stop
  std::condition_variable changed;
  bool started = false;
  bool stopped = false;
  bool listener_done = false;
  std::thread listener;

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
