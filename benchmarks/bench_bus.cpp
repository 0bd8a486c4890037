#include "bench_bus.hpp"

#include <stdexcept>
#include <string_view>

#include "bench_util.hpp"

namespace kbench {

void bus::connect(const std::string& url) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, "kryten-bench");
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
  if (s == NATS_OK) s = natsConnection_Connect(&nc_, opts);
  natsOptions_Destroy(opts);
  if (s == NATS_OK) s = natsConnection_Subscribe(&pongs_, nc_, "kryten.robot.command", on_pong, this);
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(pongs_, -1, -1);
  if (s == NATS_OK) s = natsConnection_Subscribe(&lifecycle_, nc_, "kryten.lifecycle.*.startup", on_startup, this);
  if (s == NATS_OK) s = natsConnection_FlushTimeout(nc_, 5000);
  if (s != NATS_OK)
    throw std::runtime_error(std::string{"bench NATS connection: "} + natsStatus_GetText(s));
}

void bus::close() {
  if (nc_ == nullptr)
    return;
  natsSubscription_Unsubscribe(pongs_);
  natsSubscription_Unsubscribe(lifecycle_);
  natsConnection_Close(nc_);
  natsSubscription_Destroy(pongs_);
  natsSubscription_Destroy(lifecycle_);
  natsConnection_Destroy(nc_);
  nc_ = nullptr;
}

void bus::add(system_ut* s) {
  std::lock_guard<std::mutex> g{mx_};
  by_service_[s->service] = s;
  startups_.erase(s->service);
}

void bus::remove(system_ut* s) {
  std::lock_guard<std::mutex> g{mx_};
  by_service_.erase(s->service);
}

std::optional<std::int64_t> bus::startup_seen(const std::string& service) {
  std::lock_guard<std::mutex> g{mx_};
  auto i = startups_.find(service);
  if (i == startups_.end())
    return std::nullopt;
  return i->second;
}

std::optional<json> bus::request(const std::string& service, const std::string& command,
                                 int timeout_ms) {
  json body{{"command", command},
            {"args", json::object()},
            {"meta", {{"source", "kryten-bench"}, {"timestamp", kbench::iso_now()}}}};
  auto subject = "kryten." + service + ".command";
  natsMsg* reply = nullptr;
  auto text = body.dump();
  if (natsConnection_RequestString(&reply, nc_, subject.c_str(), text.c_str(), timeout_ms) != NATS_OK)
    return std::nullopt;
  auto j = json::parse(natsMsg_GetData(reply), natsMsg_GetData(reply) + natsMsg_GetDataLength(reply),
                       nullptr, false);
  natsMsg_Destroy(reply);
  if (!j.is_object() || !j.value("success", false))
    return std::nullopt;
  return j.value("data", json::object());
}

void bus::on_pong(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto now = kbench::mono_ns();
  auto* self = static_cast<bus*>(closure);
  std::string_view body{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
  auto sent = kbench::find_pong_sent_ns(body);
  auto source = kbench::find_string_field(body, "source");
  system_ut* sys = nullptr;
  {
    std::lock_guard<std::mutex> g{self->mx_};
    auto i = self->by_service_.find(std::string{source});
    if (i != self->by_service_.end())
      sys = i->second;
  }
  if (sys != nullptr && sent > 0) {
    sys->e2e.record(now - sent);
    std::lock_guard<std::mutex> g{sys->tl_mx};
    if (sys->timeline_on && sys->timeline.size() < 1000000)
      sys->timeline.emplace_back(now, now - sent);
  } else {
    self->unmatched_.fetch_add(1);
  }
  natsMsg_Destroy(msg);
}

void bus::on_startup(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto now = kbench::mono_ns();
  auto* self = static_cast<bus*>(closure);
  std::string subject = natsMsg_GetSubject(msg);  // kryten.lifecycle.{service}.startup
  auto parts = kbench::split(subject, '.');
  if (parts.size() == 4) {
    std::lock_guard<std::mutex> g{self->mx_};
    self->startups_.emplace(parts[2], now);  // the first one counts
  }
  natsMsg_Destroy(msg);
}

}  // namespace kbench
