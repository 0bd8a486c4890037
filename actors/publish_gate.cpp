#include "actors/publish_gate.hpp"

#include <mutex>

namespace kryten::detail {

void publish_gate::open(natsConnection* conn) {
  std::unique_lock<std::shared_mutex> guard{mx_};
  conn_ = conn;
}

void publish_gate::close() {
  std::unique_lock<std::shared_mutex> guard{mx_};
  conn_ = nullptr;
}

bool publish_gate::publish(const std::string& subject, const std::string& data, bool command) {
  std::shared_lock<std::shared_mutex> guard{mx_};
  if (conn_ == nullptr
      || natsConnection_Publish(conn_, subject.c_str(), data.data(), static_cast<int>(data.size()))
           != NATS_OK)
    return false;
  bump(stats_->published);
  if (command)
    bump(stats_->commands_sent);
  return true;
}

}  // namespace kryten::detail
