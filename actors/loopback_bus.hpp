// The loopback bus: what kryten::testing's service sent, shared between the
// loopback connection actor (which appends) and the test's thread (which
// reads and waits). The one object of the test kit shared across threads;
// everything else lives in the loopback connection actor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kryten/message_types.hpp"

namespace kryten::detail {

/// NATS subject matching: `*` is one token, `>` one or more at the end.
bool subject_matches(std::string_view pattern, std::string_view subject);

/// Answers a request the service makes (the data of the reply), or declines
/// with nullopt so that the next answerer (or no_responders) is tried.
using request_answerer = std::function<std::optional<std::string>(const bus_message&)>;

class loopback_bus {
public:
  /// Called by the loopback connection actor for every message the service sends.
  void record(bus_message m);
  /// Every message sent so far on subjects matching `pattern`, oldest first.
  std::vector<bus_message> sent(std::string_view pattern) const;
  /// The `nth` (1-based) message on subjects matching `pattern`, waiting up to
  /// `timeout` for it.
  std::optional<bus_message> wait_for(std::string_view pattern, std::chrono::milliseconds timeout,
                                      std::size_t nth = 1) const;
  void clear();

  /// Requests of the service on subjects matching `pattern` go to `answer`
  /// (the newest registration first).
  void answer(std::string pattern, request_answerer answer);
  /// The reply to a request on `m.subject`, or nullopt: nobody answers.
  std::optional<std::string> answer_request(const bus_message& m) const;

private:
  mutable std::mutex mx_;
  mutable std::condition_variable changed_;
  std::vector<bus_message> sent_;
  std::vector<std::pair<std::string, request_answerer>> answerers_;
};

}  // namespace kryten::detail
