// The public facade: one client per service.
//
//   auto config = kryten::load_config("bot.json");
//   kryten::client client{config};
//   client.on("chatmsg", [&](const kryten::chat_message& m) { ... });
//   client.connect();
//   return client.run();  // SIGINT/SIGTERM -> graceful shutdown
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "kryten/commands.hpp"
#include "kryten/config.hpp"
#include "kryten/events.hpp"
#include "kryten/handler.hpp"
#include "kryten/health.hpp"
#include "kryten/kv_bucket.hpp"
#include "kryten/message_types.hpp"
#include "kryten/runtime_protocol.hpp"

namespace prometheus {
class Registry;
}

namespace kryten::testing {
class test_service;
}
namespace kryten::detail {
struct transport;
}

namespace kryten {

/// connect() could not reach or authenticate with any NATS server.
class connect_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A call the client's state does not allow: a second connect(), or a
/// connect() after disconnect() (a client is single-use).
class usage_error : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

/// request() got no reply in time, or nobody listens on the subject; code()
/// says which (timeout, no_responders, not_connected, bad_input).
class request_error : public std::runtime_error {
public:
  request_error(const std::string& what, error_code code = error_code::timeout)
    : std::runtime_error(what), code_(code) {}
  error_code code() const { return code_; }

private:
  error_code code_;
};

/// Makes a user's actor; may take the runtime's handle as a second argument.
using actor_factory = std::function<caf::actor(caf::actor_system&)>;
using runtime_actor_factory = std::function<caf::actor(caf::actor_system&, runtime_actor)>;

class client {
public:
  /// A standalone client: it owns its actor system; run() handles signals.
  explicit client(kryten_config config, std::shared_ptr<spdlog::logger> logger = nullptr);
  /// An embedded client: its actors live in `system` (which must have had
  /// kryten::add_message_types called on its config); it never touches signals.
  client(caf::actor_system& system, kryten_config config,
         std::shared_ptr<spdlog::logger> logger = nullptr);
  ~client();  // disconnects if still connected, then stops its actors
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // -- connection ---------------------------------------------------------------

  /// Connects and subscribes; throws connect_error within about connect_timeout
  /// per server, leaving nothing connected (connect() may then be tried
  /// again). A client is single-use: connect() while connected, or after
  /// disconnect(), throws usage_error.
  void connect();
  /// Blocks until stop(), disconnect(), a signal (standalone only), or the loss
  /// of the connection for good. Returns 0, or 1 when the connection was lost.
  int run();
  /// Makes run() return after a graceful disconnect. Callable from anywhere,
  /// including handlers and other threads.
  void stop(std::string reason = "Normal shutdown");
  /// Stops taking events, lets queued handler work finish (bounded), flushes
  /// and closes the connection. Idempotent. Called from inside a handler it
  /// returns at once, and the shutdown goes on once the handler returns.
  void disconnect(std::string reason = "Normal shutdown");
  bool is_connected() const;

  // -- events ---------------------------------------------------------------------

  /// Registers a handler for an event name (matched lowercased; "*" = every
  /// event): a callable (see make_event_callbacks), wrapped in an actor of its own.
  template <class F>
  void on(std::string_view event_name, F&& handler, handler_filter filter = {}) {
    if constexpr (std::is_convertible_v<F, caf::actor>)
      on_actor(event_name, caf::actor{std::forward<F>(handler)}, std::move(filter));
    else
      on_callbacks(event_name, make_event_callbacks(std::forward<F>(handler)),
                   std::move(filter));
  }
  /// Registers a handler from prepared callbacks.
  void on_callbacks(std::string_view event_name, event_callbacks callbacks,
                    handler_filter filter = {});
  /// Registers the user's own actor: it receives the typed event messages
  /// (raw_event, chat_message, ...) and answers each with nothing. A ready-made
  /// actor cannot be restarted when it dies (its handler goes down and the
  /// service reports degraded); give a factory for that.
  void on_actor(std::string_view event_name, caf::actor handler, handler_filter filter = {});
  /// Registers a user's actor made by `factory` (any callable
  /// `caf::actor(caf::actor_system&)`): when it dies abnormally, a fresh one
  /// is made (with backoff, within the restart limit) and gets the events
  /// that were waiting; the runtime stops it with the client.
  void on_actor(std::string_view event_name, actor_factory factory, handler_filter filter = {});
  /// The same, for a factory that hands the new actor the runtime's handle
  /// (runtime_protocol.hpp): the actor needs no reference to the client.
  void on_actor(std::string_view event_name, runtime_actor_factory factory,
                handler_filter filter = {});

  // -- commands and plain messaging --------------------------------------------

  /// Sends a command to another service on kryten.{service}.command
  /// (PROTOCOL.md §2). Returns the request id (a UUID chosen here) at once,
  /// without waiting for the runtime: cheap from a handler. "" (and an error
  /// logged, nothing sent) when service or type is empty. A non-object body
  /// is sent as {"value": body}; domain and channel default to the first
  /// configured channel.
  std::string send_command(std::string_view service, std::string_view type,
                           const nlohmann::json& body = nlohmann::json::object(),
                           std::optional<std::string> domain = std::nullopt,
                           std::optional<std::string> channel = std::nullopt);
  /// Serves a command on kryten.{own service}.command, in queue group "q" so
  /// that replicas share requests.
  void on_command(std::string command, command_handler handler);

  void publish(std::string_view subject, std::string_view data);
  void publish(std::string_view subject, const nlohmann::json& body);
  /// Subscribes to a subject (wildcards allowed); the callback runs in an
  /// actor of its own.
  void subscribe(std::string_view subject, std::function<void(const bus_message&)> callback);
  /// Request/reply; throws request_error on timeout or when nobody listens, and
  /// nlohmann::json::parse_error when the reply is not JSON.
  nlohmann::json request(std::string_view subject, const nlohmann::json& body,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // -- lifecycle (PROTOCOL.md §3-§5) ----------------------------------------------

  /// Called with the whole notice (defaults filled in) on every group restart
  /// notice, in an actor of its own. One that throws is logged and does not
  /// stop the others.
  void on_group_restart(std::function<void(const nlohmann::json&)> callback);
  /// The actor receives a kryten::restart_notice message for every notice.
  void on_group_restart(caf::actor listener);
  /// Asks every service on the bus to restart (kryten.lifecycle.group.restart).
  /// `initiator` defaults to this service's name.
  void publish_group_restart(const std::string& reason, double delay_seconds = 5,
                             const std::string& initiator = "");
  /// Adds an entry to `metadata` of every lifecycle event from now on.
  void set_metadata(const std::string& key, const nlohmann::json& value);

  // -- health and metrics (PROTOCOL.md §6) ---------------------------------------

  /// Adds fields to GET /health (and health().details). The callback returns a
  /// JSON object merged into the document; `"degraded": true` in it marks the
  /// service degraded (503). Runs on an HTTP thread: keep it quick.
  void add_health_details(std::function<nlohmann::json()> callback);
  /// The registry of the service's own Prometheus metrics, served on /metrics
  /// after the runtime's series (link prometheus-cpp::core to use it).
  prometheus::Registry& metrics_registry();

  // -- the JetStream key-value store (kv_bucket.hpp) --------------------------------

  /// An existing bucket (kryten-py's get_kv_store); kv_error no_such_bucket,
  /// no_jetstream, timeout or not_connected otherwise. Needs connect() first.
  kv_bucket kv(std::string_view bucket);
  /// The bucket, created with `config` when it does not exist (kryten-py's
  /// get_or_create_kv_store).
  kv_bucket kv(const kv_bucket_config& config);

  // -- the actor API ----------------------------------------------------------------

  /// The runtime as a typed actor (runtime_protocol.hpp): what users' actors
  /// talk to. Every method above that does the same is a thin layer over it.
  runtime_actor runtime() const;

  // -- state ----------------------------------------------------------------------

  health_status health() const;
  const kryten_config& config() const;
  const std::string& instance_id() const;
  std::shared_ptr<spdlog::logger> logger() const;
  caf::actor_system& system();

private:
  friend class testing::test_service;
  /// kryten::testing's: a standalone client over another transport than NATS.
  client(kryten_config config, std::shared_ptr<spdlog::logger> logger,
         std::shared_ptr<detail::transport> transport);

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kryten
