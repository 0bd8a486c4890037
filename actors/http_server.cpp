#include "actors/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
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

// Margin between the deadline a callback gets and when the probe gives up on it.
constexpr milliseconds margin = 30ms;
// How often a waiting request looks at whether the server is stopping.
constexpr milliseconds poll_slice = 20ms;

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

/// One callback run: skipped if the request gave up before it started.
struct job {
  std::function<void()> run;
  std::atomic<bool> abandoned{false};
};

/// A fixed pool that runs the runtime callbacks, so that a request can stop
/// waiting for one. Its state is shared with its threads: a thread stuck in
/// a callback at shutdown can be left behind safely.
class callback_runner {
public:
  callback_runner(std::size_t threads, std::size_t max_pending)
    : st_(std::make_shared<state>()), max_pending_(std::max<std::size_t>(max_pending, 1)) {
    threads = std::max<std::size_t>(threads, 1);
    st_->alive = threads;
    for (std::size_t i = 0; i < threads; ++i)
      threads_.emplace_back([st = st_] { work(st); });
  }

  ~callback_runner() { shutdown(1s); }

  callback_runner(const callback_runner&) = delete;
  callback_runner& operator=(const callback_runner&) = delete;

  /// false: stopped, or too many waiting.
  bool submit(std::shared_ptr<job> j) {
    {
      std::lock_guard<std::mutex> lk(st_->m);
      if (st_->stop || st_->queue.size() >= max_pending_)
        return false;
      st_->queue.push_back(std::move(j));
    }
    st_->work.notify_one();
    return true;
  }

  /// Drops waiting jobs and joins the threads; a thread still in a callback
  /// after `grace` is detached. Returns false then.
  bool shutdown(milliseconds grace) {
    if (threads_.empty())
      return true;
    std::unique_lock<std::mutex> lk(st_->m);
    st_->stop = true;
    auto dropped = std::move(st_->queue);
    st_->queue.clear();
    st_->work.notify_all();
    bool all = st_->exited.wait_for(lk, grace, [&] { return st_->alive == 0; });
    lk.unlock();
    dropped.clear();  // breaks their promises: nobody waits any more
    for (auto& t : threads_) {
      if (all)
        t.join();
      else
        t.detach();
    }
    threads_.clear();
    return all;
  }

private:
  struct state {
    std::mutex m;
    std::condition_variable work;
    std::condition_variable exited;
    std::deque<std::shared_ptr<job>> queue;
    bool stop = false;
    std::size_t alive = 0;
  };

  static void work(std::shared_ptr<state> st) {
    for (;;) {
      std::shared_ptr<job> j;
      {
        std::unique_lock<std::mutex> lk(st->m);
        st->work.wait(lk, [&] { return st->stop || !st->queue.empty(); });
        if (st->stop)
          break;
        j = std::move(st->queue.front());
        st->queue.pop_front();
      }
      if (!j->abandoned.load())
        j->run();  // a packaged_task: exceptions go to the waiter
    }
    std::lock_guard<std::mutex> lk(st->m);
    --st->alive;
    st->exited.notify_all();
  }

  std::shared_ptr<state> st_;
  std::size_t max_pending_;
  std::vector<std::thread> threads_;
};

enum class route { none, health, livez, readyz, metrics };

enum class answer { ok, late, busy, failed };

template <typename R>
struct outcome {
  answer kind = answer::late;
  std::optional<R> value;  // when ok
  std::string error;       // when failed
};

std::string unanswered(answer kind) {
  return kind == answer::busy ? "probe busy: too many requests waiting for the runtime"
                              : "runtime did not answer in time";
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
      limits(limits_),
      runner(limits.callback_threads, limits.max_pending) {
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

  /// Runs a callback on the runner with a deadline; gives up at `until`.
  template <typename R>
  outcome<R> ask(std::function<R(milliseconds)> probe_callbacks::*member, clock::time_point until) {
    outcome<R> o;
    if (!((*cbs).*member)) {
      o.kind = answer::failed;
      o.error = "no callback for this probe";
      return o;
    }
    auto now = clock::now();
    auto left = std::chrono::duration_cast<milliseconds>(until - now) - margin;
    if (left < 10ms) {
      note("late", "HTTP probe: request waited too long before it could be served");
      return o;  // late
    }
    auto deadline = std::min(limits.deadline, left);
    auto task = std::make_shared<std::packaged_task<R()>>(
      [cbs = cbs, member, deadline] { return ((*cbs).*member)(deadline); });
    auto result = task->get_future();
    auto j = std::make_shared<job>();
    j->run = [task] { (*task)(); };
    if (!runner.submit(j)) {
      o.kind = answer::busy;
      note("busy", "HTTP probe: too many requests waiting for the runtime");
      return o;
    }
    auto give_up = std::min(until, now + deadline + margin);
    for (;;) {
      auto now2 = clock::now();
      auto slice = std::min<clock::duration>(poll_slice, give_up - now2);
      if (slice > clock::duration::zero() &&
          result.wait_for(slice) != std::future_status::ready && !stopping.load())
        continue;
      if (result.wait_for(0s) != std::future_status::ready) {
        j->abandoned = true;
        note("late", "HTTP probe: the runtime did not answer within " +
                       std::to_string(deadline.count()) + " ms");
        return o;  // late
      }
      try {
        o.value = result.get();
        o.kind = answer::ok;
      } catch (const std::future_error&) {
        // dropped at shutdown: late
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
  }

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
    if (!runner.shutdown(1s))
      log->error("HTTP probe stopped with a runtime callback still running; its thread is "
                 "left behind");
    log->info("HTTP probe on {}:{} stopped", host, port);
  }

  std::string host;
  int port;
  probe_routes routes;
  std::shared_ptr<const probe_callbacks> cbs;
  std::shared_ptr<spdlog::logger> log;
  probe_limits limits;
  callback_runner runner;
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
