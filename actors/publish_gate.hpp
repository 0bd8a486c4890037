// The NATS connection as other threads may publish on it directly. The
// facade's publish() and send_command() run on the caller's thread, often a
// handler's; sending each message through the connection actor would cost a
// thread wake-up on every reply. The connection actor opens the gate once
// connected and closes it before it closes the connection; while it is
// closed (or cnats refuses a message), callers send to the connection actor
// as before, which counts and logs the failure.
//
// One named object shared across threads for speed: the connection pointer
// under a reader-writer lock, so that closing waits for publishes in flight.
// (A message sent through the actor just before the gate opened may go out
// after one published directly just after: only at connect.)
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>

#include <nats/nats.h>

#include "actors/runtime_stats.hpp"

namespace kryten::detail {

class publish_gate {
public:
  explicit publish_gate(std::shared_ptr<connection_stats> stats) : stats_(std::move(stats)) {}
  publish_gate(const publish_gate&) = delete;
  publish_gate& operator=(const publish_gate&) = delete;

  /// The connection actor, once connected.
  void open(natsConnection* conn);
  /// The connection actor, before closing the connection: returns once no
  /// publish is in flight.
  void close();

  /// Any thread: publishes `data` on `subject` (a command when `command`:
  /// counted as one) if the gate is open and cnats takes it. False otherwise:
  /// nothing was sent.
  bool publish(const std::string& subject, const std::string& data, bool command);

private:
  std::shared_mutex mx_;
  natsConnection* conn_ = nullptr;  // under mx_
  std::shared_ptr<connection_stats> stats_;
};

}  // namespace kryten::detail
