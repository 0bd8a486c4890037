#include "health_poller.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "messages/clock.hpp"

namespace kryten::monitor {

namespace {

/// A document's "status" string, "" when the body is no JSON object with one.
std::string status_of(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object())
    return "";
  auto it = j.find("status");
  if (it == j.end() || !it->is_string())
    return "";
  auto s = it->get<std::string>();
  return s.size() > 64 ? s.substr(0, 64) : s;
}

}  // namespace

health_poller::health_poller(std::chrono::milliseconds timeout, std::size_t concurrency)
  : timeout_(timeout), concurrency_(std::max<std::size_t>(1, concurrency)) {}

health_check health_poller::poll_one(const http_endpoint& endpoint) const {
  health_check check;
  httplib::Client client(endpoint.host, endpoint.port);
  auto secs = timeout_.count() / 1000;
  auto usecs = (timeout_.count() % 1000) * 1000;
  client.set_connection_timeout(secs, usecs);
  client.set_read_timeout(secs, usecs);
  client.set_write_timeout(secs, usecs);
  auto start = std::chrono::steady_clock::now();
  auto res = client.Get(endpoint.path.c_str());
  check.latency_ms =
    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  check.checked_ns = detail::unix_ns();
  if (!res) {
    check.error = httplib::to_string(res.error());
    return check;
  }
  check.status_code = res->status;
  check.status = status_of(res->body);
  return check;
}

std::vector<health_result> health_poller::poll(const std::vector<health_target>& targets) const {
  std::vector<health_result> results(targets.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < targets.size(); i = next++) {
      results[i].key = targets[i].key;
      results[i].check = poll_one(targets[i].endpoint);
    }
  };
  std::vector<std::thread> workers;
  auto n = std::min(concurrency_, targets.size());
  for (std::size_t i = 0; i < n; ++i)
    workers.emplace_back(work);
  for (auto& w : workers)
    w.join();
  return results;
}

}  // namespace kryten::monitor
