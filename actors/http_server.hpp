// The HTTP probe: /health, /livez, /readyz and /metrics on cpp-httplib
// (PROTOCOL.md §6). It never hangs: every request is answered within about
// one second of being accepted, whatever the runtime does.
//
// - A fixed pool of `threads` serves connections, one request each (no
//   keep-alive: an idle connection cannot hold a worker for long); read and
//   write timeouts are 1 s; request bodies are capped.
// - The runtime is asked through the callbacks, on the serving thread, with a
//   deadline (at most `deadline`, less if the request already waited); a
//   request that waited past its budget for a thread gets 503 at once. A
//   callback must return by its deadline (the runtime's are CAF requests with
//   that timeout): an empty answer is 503, one that throws gives 500. What
//   cpp-httplib does not do is here: the budget, the routes, the answers.
// - Unknown paths answer 404, methods other than GET and HEAD on a known path
//   405 (Allow: GET, HEAD).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "kryten/health.hpp"

namespace kryten::detail {

struct probe_routes {
  std::string health_path = "/health";
  std::string metrics_path = "/metrics";
  bool serve_health = true;   // health_path, /livez and /readyz
  bool serve_metrics = true;  // metrics_path
};

/// How the probe asks the runtime. Each gets the time it may take and must
/// return by then.
struct probe_callbacks {
  /// The runtime's health; nullopt: it did not answer in time.
  std::function<std::optional<kryten::health_status>(std::chrono::milliseconds)> health;
  /// Whether the actor system answers within the deadline. Unset: always alive.
  std::function<bool(std::chrono::milliseconds)> alive;
  /// The metrics text (render_metrics); nullopt: no answer in time.
  std::function<std::optional<std::string>(std::chrono::milliseconds)> metrics;
};

struct probe_limits {
  std::size_t threads = 4;  // connections served at once
  // From accepting a connection to answering: leaves 200 ms of the promised
  // 1 s for the network and a loaded machine.
  std::chrono::milliseconds budget{800};
  std::chrono::milliseconds deadline{750};  // the most a callback is given
};

/// The /health document: every health_status field (as health_status::to_json
/// writes them, plus the newer ones), then "status" ("healthy" when connected
/// and not degraded, else "degraded") and "nats_connected"; the user's
/// `details` are merged in at the top level without replacing those keys.
nlohmann::json health_document(const kryten::health_status& h);

class http_server {
public:
  /// `port` 0 picks a free port (see port()). A null `log` logs nothing.
  /// Throws std::invalid_argument for bad routes (a path not starting with
  /// '/', or two routes on the same path).
  http_server(std::string host, int port, probe_routes routes, probe_callbacks callbacks,
              std::shared_ptr<spdlog::logger> log, probe_limits limits = {});
  ~http_server();  // stop()

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and starts serving; returns once the server accepts connections.
  /// Throws std::runtime_error ("cannot listen on HOST:PORT: REASON") if it
  /// cannot bind, or if called twice.
  void start();

  /// Stops accepting, answers the requests in progress and joins the
  /// threads (each is back within a callback's deadline). Idempotent.
  void stop();

  /// The bound port (after start(); the constructor's port before).
  int port() const;
  const std::string& host() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kryten::detail
