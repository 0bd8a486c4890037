// Polls instances' /health endpoints: each request bounded by a timeout, at
// most `concurrency` at once, so that a fleet of silent hosts costs the
// monitor a bounded time per round.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "registry.hpp"

namespace kryten::monitor {

struct health_target {
  std::string key;  // the registry key the result belongs to
  http_endpoint endpoint;
};

struct health_result {
  std::string key;
  health_check check;
};

class health_poller {
public:
  health_poller(std::chrono::milliseconds timeout, std::size_t concurrency);

  /// GETs every target's endpoint and returns one result per target. Takes
  /// at most about ceil(targets / concurrency) * timeout.
  std::vector<health_result> poll(const std::vector<health_target>& targets) const;

  /// One GET: status code, latency and the document's "status".
  health_check poll_one(const http_endpoint& endpoint) const;

private:
  std::chrono::milliseconds timeout_;
  std::size_t concurrency_;
};

}  // namespace kryten::monitor
