// The HTTP probe: /health, /livez, /readyz and /metrics on a small HTTP/1.1
// server of our own (PROTOCOL.md §6). It never hangs: every request is
// answered within about one second of being accepted, whatever the runtime
// does, and whoever can reach the port cannot silence it.
//
// - One I/O thread polls non-blocking sockets (http_connection_loop.hpp). A
//   connection must deliver its whole request within `request_timeout` of
//   being accepted (a total, not per read; else 408 and closed); at most
//   `max_connections` are open (at the cap, the oldest one still sending its
//   request is closed for the newcomer, or the newcomer gets 503 at once);
//   heads over `max_head_bytes` get 431, bodies over `max_body_bytes` 413.
//   One request per connection (`Connection: close`).
// - Complete requests go to a fixed pool of `threads` workers, which ask the
//   runtime through the callbacks with a deadline (at most `deadline`, less
//   if the request already waited); a request that waited past its budget
//   gets 503 at once. A callback must return by its deadline (the runtime's
//   are CAF requests with that timeout): an empty answer is 503, one that
//   throws gives 500.
// - Unknown paths answer 404, methods other than GET and HEAD on a known path
//   405 (Allow: GET, HEAD). Every answer carries Cache-Control: no-store.
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
  std::size_t threads = 4;  // requests answered at once (workers)
  // From accepting a connection to answering: leaves 200 ms of the promised
  // 1 s for the network and a loaded machine.
  std::chrono::milliseconds budget{800};
  std::chrono::milliseconds deadline{750};  // the most a callback is given
  // From accepting a connection to its complete request (head and body);
  // then 408 and closed.
  std::chrono::milliseconds request_timeout{1000};
  std::chrono::milliseconds write_timeout{1000};  // for the client to take its answer
  std::size_t max_connections = 64;               // open at once
  std::size_t max_head_bytes = 8 * 1024;          // request line and header fields: 431
  std::size_t max_body_bytes = 64 * 1024;         // Content-Length above: 413
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
