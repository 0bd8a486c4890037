// The connections of the HTTP probe (http_server.hpp): one I/O thread with
// poll() over non-blocking sockets, and a small fixed pool of workers that
// answer complete requests. Nobody who can reach the port can hold it:
//
// - every connection has a TOTAL deadline to deliver its request head (and a
//   body up to max_body_bytes), counted from accept, not per read: one that
//   misses it is sent 408 (best effort) and closed, however it trickles
//   (what already waits on it is read first: a loop that was itself late
//   does not time out a request that arrived in time);
// - at most max_connections are open; when a new one arrives at the cap, one
//   is closed to make room: the oldest whose answer is already out, else the
//   oldest still sending its request that has had a chance to be read (slow
//   clients cannot keep a fresh one out); when every open connection has a
//   request in progress, the new one is sent 503 and closed at once;
// - heads over max_head_bytes get 431, bodies over max_body_bytes 413,
//   malformed heads 400 (http_request_parser.hpp);
// - an answer must be taken within write_timeout; after it, the loop shuts
//   its side and reads what the client still sends for up to `linger` (so
//   that closing does not reset the answer away), then closes.
//
// The workers call the handler; they never touch a socket. One request per
// connection (every answer says `Connection: close`).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "actors/http_request_parser.hpp"
#include "actors/http_response.hpp"
#include "actors/tcp_listener.hpp"

namespace kryten::detail {

struct http_loop_limits {
  std::size_t threads = 4;           // workers: requests answered at once
  std::size_t max_connections = 64;  // open at once
  std::chrono::milliseconds request_timeout{1000};  // accept -> complete request
  std::chrono::milliseconds write_timeout{1000};    // answer ready -> sent
  std::chrono::milliseconds linger{500};            // sent -> the client's close
  request_head_limits head;                         // max_head_bytes, max_headers
  std::size_t max_body_bytes = 64 * 1024;
};

class http_connection_loop {
public:
  using clock = std::chrono::steady_clock;
  /// Answers a complete request, on a worker thread; `accepted` is when its
  /// connection was accepted. What it throws is answered 500.
  using handler = std::function<http_response(const request_head&, clock::time_point accepted)>;
  /// Something worth a warning: a kind (for rate limiting) and a line.
  using notifier = std::function<void(const std::string& kind, const std::string& message)>;

  struct counters {
    std::uint64_t accepted = 0;
    std::uint64_t dispatched = 0;  // complete requests given to the workers
    std::uint64_t timed_out = 0;   // no complete request by the deadline
    std::uint64_t evicted = 0;     // closed at the cap to make room
    std::uint64_t rejected = 0;    // 503 at the cap
    std::uint64_t bad = 0;         // 400, 413, 431, 505
  };

  /// Takes the listener (closes it in stop()).
  http_connection_loop(tcp_listener listener, http_loop_limits limits, handler h, notifier n);
  ~http_connection_loop();  // stop()

  http_connection_loop(const http_connection_loop&) = delete;
  http_connection_loop& operator=(const http_connection_loop&) = delete;

  /// Starts the I/O thread and the workers.
  void start();

  /// Closes the listener and the connections still sending their requests,
  /// answers the requests already received (the handler sees them as usual;
  /// the ones not started yet are answered while stopping), waits for their
  /// answers to go out (bounded by write_timeout) and joins every thread.
  /// Idempotent.
  void stop();

  counters stats() const;

private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace kryten::detail
