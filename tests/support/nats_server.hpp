// Test support: a real nats-server on a free 127.0.0.1 port, and a plain cnats
// client that watches and drives the bus from a test; waits with deadlines and
// timings.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace kryten::test {

/// A free TCP port on 127.0.0.1 (bound and released).
int free_port();

/// Polls `condition` every `poll` until it holds or `deadline` passes.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll = std::chrono::milliseconds(5));

/// How long `f()` takes.
template <class F>
std::chrono::milliseconds time_of(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now()
                                                               - start);
}

/// nats-server (found at configure time) on 127.0.0.1 and a free port. The
/// constructor returns once the server accepts connections (10 s deadline,
/// throws otherwise); the destructor stops it.
class nats_server {
public:
  struct options {
    std::string user;      // with password: require user/password auth
    std::string password;
    std::string token;     // require token auth
    std::string config;    // extra settings in nats-server's config file syntax,
                           // e.g. "max_payload: 600" (written to a temporary file)
    std::string jetstream_dir;  // non-empty: JetStream on, its store in this folder
  };
  nats_server();
  explicit nats_server(options opts);
  ~nats_server();
  nats_server(const nats_server&) = delete;
  nats_server& operator=(const nats_server&) = delete;

  int port() const { return port_; }
  std::string url() const;  // nats://127.0.0.1:PORT
  void stop();              // graceful stop, waits for exit
  void kill();              // SIGKILL, waits for exit: the node dies as in a crash
  void start();             // (re)start on the same port, waits until ready
  bool running() const;

private:
  options opts_;
  std::string config_file_;  // from opts_.config; removed by the destructor
  int port_;
  std::unique_ptr<child_process> proc_;
};

/// Nodes of one nats-server cluster on 127.0.0.1 (full mesh of routes). The
/// constructor returns once every node sees subscriptions made on every other
/// node (10 s deadline, throws otherwise). Without `advertise`, nodes do not
/// tell clients of the others, so a client stays with the servers it was given.
class nats_cluster {
public:
  explicit nats_cluster(std::size_t nodes = 3, bool advertise = true);
  nats_server& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  std::vector<std::string> urls() const;  // every node's url(), in order
  /// Waits until the running nodes route to each other (after a restart).
  bool wait_formed(std::chrono::milliseconds deadline) const;

private:
  std::vector<std::unique_ptr<nats_server>> nodes_;
};

struct bus_message {
  std::string subject;
  std::string data;
  std::string reply;
};

/// A cnats connection for tests: records every message on the subjects it
/// subscribes to, publishes, and makes requests.
class bus_client {
public:
  /// `url` may be a comma-separated list of servers, tried in order.
  explicit bus_client(const std::string& url, const std::string& user = "",
                      const std::string& password = "", const std::string& token = "");
  ~bus_client();
  bus_client(const bus_client&) = delete;
  bus_client& operator=(const bus_client&) = delete;

  /// Subscribes (wildcards allowed) and flushes, so the server knows of it on return.
  void subscribe(const std::string& subject);
  void publish(const std::string& subject, const std::string& data);
  void flush();
  /// A request with a reply inbox; nullopt on timeout.
  std::optional<std::string> request(const std::string& subject, const std::string& data,
                                     std::chrono::milliseconds timeout);
  /// Every message received so far, in arrival order.
  std::vector<bus_message> messages() const;
  std::vector<bus_message> messages_on(const std::string& subject) const;
  /// Waits until a message on exactly `subject` (the n-th, counting from 1) has arrived.
  std::optional<bus_message> wait_for(const std::string& subject,
                                      std::chrono::milliseconds deadline, std::size_t n = 1);
  void clear();
  /// True while the connection is up (false while cnats is reconnecting).
  bool connected() const;
  /// Waits until the connection is up (e.g. after a server restart) and a
  /// flush succeeds, so the server knows of its re-sent subscriptions.
  bool wait_connected(std::chrono::milliseconds deadline) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kryten::test
