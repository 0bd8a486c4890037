// Test support: configurations, event bodies and small synchronisation
// helpers that the integration tests share.
#pragma once

#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/base_sink.h>

#include "kryten/config.hpp"
#include "support/nats_server.hpp"

namespace kryten::test {

inline std::string test_log_level() {
  const char* level = std::getenv("KRYTEN_TEST_LOG_LEVEL");
  return level != nullptr ? level : "CRITICAL";
}

/// A service (by default test-bot on cytu.be/lounge) with lifecycle events,
/// heartbeats and discovery off.
inline kryten_config make_config(const std::string& url, const std::string& service = "test-bot",
                                 std::vector<channel_config> channels = {{"cytu.be", "lounge"}}) {
  kryten_config cfg;
  cfg.nats.servers = {url};
  cfg.nats.connect_timeout = 2.0;
  cfg.nats.reconnect_time_wait = 0.1;
  cfg.channels = std::move(channels);
  service_config svc;
  svc.name = service;
  svc.enable_lifecycle = false;
  svc.enable_heartbeat = false;
  svc.enable_discovery = false;
  svc.shutdown_timeout = 5.0;
  cfg.service = svc;
  cfg.log_level = test_log_level();
  return cfg;
}

/// A RawEvent body as Kryten-Robot publishes it.
inline std::string raw_event_json(const std::string& event_name, const nlohmann::json& payload,
                                  const std::string& channel = "lounge",
                                  const std::string& domain = "cytu.be",
                                  const std::string& correlation_id =
                                    "3f2b6c1e-8d4a-4f5b-9c7e-1a2b3c4d5e6f",
                                  const std::string& timestamp =
                                    "2024-01-15T10:30:00.123456+00:00") {
  return nlohmann::json{{"event_name", event_name},
                        {"payload", payload},
                        {"channel", channel},
                        {"domain", domain},
                        {"timestamp", timestamp},
                        {"correlation_id", correlation_id}}
    .dump();
}

/// A chatMsg payload. `user_object`: payload.user = {name, rank}; otherwise
/// payload.username (the other shape peers send). `shadow`: payload.meta.shadow.
inline nlohmann::json chat_payload(const std::string& user, const std::string& msg, int rank = 2,
                                   bool user_object = true, bool shadow = false) {
  nlohmann::json payload{
    {"msg", msg}, {"time", 1700000000000LL}, {"meta", nlohmann::json::object()}};
  if (user_object)
    payload["user"] = {{"name", user}, {"rank", rank}};
  else
    payload["username"] = user;
  if (shadow)
    payload["meta"]["shadow"] = true;
  return payload;
}

/// A chatMsg RawEvent body as Kryten-Robot publishes it.
inline std::string chat_event(const std::string& user, const std::string& msg,
                              const std::string& channel = "lounge",
                              const std::string& domain = "cytu.be") {
  return raw_event_json("chatMsg", chat_payload(user, msg), channel, domain);
}

inline const std::string lounge_chat = "kryten.events.cytube.lounge.chatMsg";

/// What handlers saw, written from their threads, read from the test's.
template <class T>
class recorder {
public:
  void add(T x) {
    std::lock_guard<std::mutex> guard{mx_};
    items_.push_back(std::move(x));
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> guard{mx_};
    return items_.size();
  }
  std::vector<T> items() const {
    std::lock_guard<std::mutex> guard{mx_};
    return items_;
  }
  bool wait_size(std::size_t n,
                 std::chrono::milliseconds deadline = std::chrono::seconds(5)) const {
    return wait_until([&] { return size() >= n; }, deadline);
  }

private:
  mutable std::mutex mx_;
  std::vector<T> items_;
};

/// Opens on destruction, so that a failing test never leaves a handler
/// blocked on it.
struct latch {
  std::promise<void> promise;
  std::shared_future<void> future = promise.get_future().share();
  bool opened = false;
  void open() {
    if (!opened) {
      opened = true;
      promise.set_value();
    }
  }
  ~latch() { open(); }
};

/// An spdlog sink keeping every formatted line, readable while others log.
class capture_sink : public spdlog::sinks::base_sink<std::mutex> {
public:
  std::string text() {
    std::lock_guard<std::mutex> guard{this->mutex_};
    return text_;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    this->formatter_->format(msg, buf);
    text_.append(buf.data(), buf.size());
  }
  void flush_() override {}

private:
  std::string text_;
};

/// A log sink that holds the thread logging the first line containing
/// `needle` until `gate` opens: a way to stall a runtime thread from outside
/// (cnats' delivery thread, the HTTP probe's I/O thread).
class stalling_sink : public spdlog::sinks::base_sink<std::mutex> {
public:
  stalling_sink(std::string needle, std::shared_future<void> gate)
    : needle_(std::move(needle)), gate_(std::move(gate)) {}

  /// Whether a line logged so far contains `text` (any thread).
  bool logged(std::string_view text) {
    std::lock_guard<std::mutex> guard{mutex_};
    return out_.find(text) != std::string::npos;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view text{msg.payload.data(), msg.payload.size()};
    out_.append(text.data(), text.size()).append("\n");
    if (!stalled_ && text.find(needle_) != std::string_view::npos) {
      stalled_ = true;
      // Unlocked while waiting, so that other threads can still log.
      mutex_.unlock();
      gate_.wait();
      mutex_.lock();
    }
  }
  void flush_() override {}

private:
  std::string needle_;
  std::shared_future<void> gate_;
  std::string out_;
  bool stalled_ = false;
};

}  // namespace kryten::test
