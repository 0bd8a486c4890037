// Request/reply for the connection actor: one wildcard inbox subscription
// per connection; each request gets a token, its reply arrives on
// "<inbox>.<token>" (on cnats' delivery thread, which sends the owner a
// reply_atom) and completes the request's promise. Unanswered requests end
// with a timeout or when the connection closes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/response_promise.hpp>
#include <nats/nats.h>

#include "actors/cnats_closures.hpp"

namespace kryten::detail {

/// (reply_atom, token, data, no_responders): a reply arrived for `token`.
using reply_atom = caf::atom_constant<caf::atom("kreply")>;

class reply_router {
public:
  /// Subscribes the inbox once per connection; replies go to `owner` as
  /// reply_atom messages. Returns "" or what went wrong.
  std::string open(natsConnection* conn, const std::shared_ptr<cnats_closures>& closures,
                   const caf::actor& owner, natsSubscription** sub);
  /// A new pending request: its token and the reply subject to publish with.
  std::pair<std::uint64_t, std::string> add(caf::response_promise promise);
  /// Completes the request `token` with `result` (a reply or an error); a
  /// late or repeated completion is ignored.
  void finish(std::uint64_t token, caf::message result);
  /// Completes every pending request with `error` (the connection closed).
  void fail_all(const caf::error& error);

private:
  std::string prefix_;  // "_INBOX.xxx." ; "" until opened
  std::uint64_t next_token_ = 1;
  std::unordered_map<std::uint64_t, caf::response_promise> pending_;
};

}  // namespace kryten::detail
