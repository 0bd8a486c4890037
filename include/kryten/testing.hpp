// A test kit for users' own tests: the real runtime, your real handlers and
// actors, and no network. The service under test runs over a loopback bus:
// inject events by name and payload, see every message it sends with its
// real subject and body, answer its requests, call its commands, read and
// write its key-value store, and await or trigger lifecycle events.
//
//   kryten::testing::test_service svc{"room-stats"};   // channel cytu.be/lounge
//   add_my_handlers(svc.client());
//   svc.start();                                        // as connect()
//   svc.inject("chatMsg", {{"user", {{"name", "alice"}}}, {"msg", "hi"}});
//   auto said = svc.wait_for_command("robot");          // kryten.robot.command
//   CHECK(said->at("args")["message"] == "...");
//   auto reply = svc.command("stats");                  // kryten.room-stats.command
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <nlohmann/json.hpp>

#include "kryten/client.hpp"

namespace kryten::detail {
class loopback_bus;
}

namespace kryten::testing {

/// A message the service sent.
struct sent_message {
  std::string subject;
  std::string data;
  std::string reply;  // its reply subject, for a request
  /// The body as JSON (discarded when it is not JSON).
  nlohmann::json json() const;
};

class test_service {
public:
  using ms = std::chrono::milliseconds;

  /// A service named `service` on channel `domain`/`channel`, lifecycle events
  /// on, heartbeats every 5 s, no HTTP.
  explicit test_service(const std::string& service = "test-bot",
                        const std::string& channel = "lounge",
                        const std::string& domain = "cytu.be");
  /// Any configuration (its NATS settings are not used).
  explicit test_service(kryten_config config);
  ~test_service();
  test_service(const test_service&) = delete;
  test_service& operator=(const test_service&) = delete;

  /// The real client: register handlers, actors and commands on it.
  kryten::client& client();
  /// An actor of yours the client does not own: stopped with the service
  /// (else the actor system would wait for it forever).
  void own(caf::actor actor);
  /// connect(): the startup event is published, commands are served.
  void start();
  /// disconnect(): the graceful shutdown, shutdown event included.
  void stop();

  // -- into the service ---------------------------------------------------------
  /// An event as Kryten-Robot publishes it (PROTOCOL.md §1), on the first
  /// channel unless given.
  void inject(const std::string& event_name, const nlohmann::json& payload,
              const std::string& channel = {}, const std::string& domain = {});
  /// Any message, to the service's subscriptions matching `subject`.
  void deliver(const std::string& subject, const std::string& data);
  /// Calls one of the service's commands and returns the reply
  /// ({"service","command","success","data"|"error"}); nullopt without one.
  std::optional<nlohmann::json> command(const std::string& name,
                                        const nlohmann::json& args = nlohmann::json::object(),
                                        ms timeout = std::chrono::seconds(5));

  // -- out of the service ---------------------------------------------------------
  /// Every message sent on subjects matching `pattern` (NATS wildcards), oldest first.
  std::vector<sent_message> sent(const std::string& pattern = ">") const;
  /// The `nth` message on `pattern`, waiting up to `timeout`.
  std::optional<sent_message> wait_for(const std::string& pattern, ms timeout = std::chrono::seconds(5),
                                       std::size_t nth = 1) const;
  /// The body of the `nth` command sent to `service` (kryten.{service}.command).
  std::optional<nlohmann::json> wait_for_command(const std::string& service,
                                                 ms timeout = std::chrono::seconds(5),
                                                 std::size_t nth = 1) const;
  /// Forgets what was sent so far.
  void clear_sent();
  /// Answers the service's requests on `pattern`: the function returns the
  /// reply body, or nullopt to leave it to an earlier answerer (without any,
  /// the service gets no_responders). The newest answerer is asked first.
  void answer(const std::string& pattern,
              std::function<std::optional<nlohmann::json>(const nlohmann::json& request)> reply);
  /// Answers command `name` sent to `service` with a successful reply of `data`.
  void answer_command(const std::string& service, const std::string& name,
                      std::function<nlohmann::json(const nlohmann::json& args)> data);

  // -- lifecycle ------------------------------------------------------------------
  /// The `nth` lifecycle event of this service of `kind` (startup, heartbeat,
  /// shutdown, connected, disconnected): its payload.
  std::optional<nlohmann::json> wait_for_lifecycle(const std::string& kind,
                                                   ms timeout = std::chrono::seconds(5),
                                                   std::size_t nth = 1) const;
  /// Kryten-Robot started (the service re-announces itself).
  void robot_startup();
  void discovery_poll();
  void group_restart(const nlohmann::json& notice);
  /// The connection drops, then comes back.
  void disconnect_bus(const std::string& reason = "test");
  void reconnect_bus();

  // -- the key-value store (in memory; the service's kv calls see the same; usable
  //    before start(), to seed what a previous run stored) ---------------------
  void kv_create(const std::string& bucket);
  void kv_put(const std::string& bucket, const std::string& key, const nlohmann::json& value);
  std::optional<nlohmann::json> kv_get(const std::string& bucket, const std::string& key);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Waits until `condition` holds (checked every 5 ms) or `timeout` passes;
/// returns whether it held. Handlers run on their own actors: wait for what
/// they do, never sleep.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace kryten::testing
