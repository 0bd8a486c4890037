// A plain cnats connection for the tools in apps/: what the kryten::client
// facade does not offer them, i.e. a request that gathers every answer
// within a window ($SRV.PING, a discovery poll), and a bare subscription for
// kryten-ctl, which is a client of the bus, not a service.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kryten/config.hpp"

namespace kryten::apps {

/// The connection could not be made (not reachable, refused credentials, bad TLS files).
class link_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct link_options {
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string user, password, token;
  std::string creds;  // a .creds file (JWT and NKey seed)
  std::string tls_ca, tls_cert, tls_key;
  double connect_timeout = 5;  // seconds
  // After a lost connection: 0 gives up at once (a command-line call), -1
  // tries forever (a long-running service).
  int max_reconnect = 0;
  double reconnect_wait = 2;   // seconds
  std::string name = "kryten-tool";
};

/// The connection settings of a service's configuration.
link_options link_options_from(const nats_config& n, const std::string& name);

struct link_reply {
  std::string subject;
  std::string data;
  double round_trip_ms = 0;
};

class nats_link {
public:
  explicit nats_link(const link_options& options);  // throws link_error
  ~nats_link();
  nats_link(const nats_link&) = delete;
  nats_link& operator=(const nats_link&) = delete;

  void publish(const std::string& subject, const std::string& data);
  /// Publishes `data` with a fresh reply inbox and gathers the answers that
  /// arrive within `window` (at most `max_replies`).
  std::vector<link_reply> gather(const std::string& subject, const std::string& data,
                                 std::chrono::milliseconds window,
                                 std::size_t max_replies = static_cast<std::size_t>(-1));
  /// Calls `on_message(subject, data)` for each message on `subject`
  /// (wildcards allowed) until `keep_going()` turns false; checks it every
  /// `poll`. On the caller's thread.
  void follow(const std::string& subject,
              const std::function<void(const std::string&, const std::string&)>& on_message,
              const std::function<bool()>& keep_going,
              std::chrono::milliseconds poll = std::chrono::milliseconds(200));
  /// Subscribes, then publishes, then gathers messages on `listen` for
  /// `window`: a discovery poll answered on other subjects.
  std::vector<link_reply> publish_and_collect(const std::string& listen,
                                              const std::string& subject,
                                              const std::string& data,
                                              std::chrono::milliseconds window);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kryten::apps
