#include "fleet_monitor.hpp"

#include <httplib.h>

#include "messages/clock.hpp"
#include "pages.hpp"

namespace kryten::monitor {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

milliseconds ms(double seconds) { return milliseconds(static_cast<long long>(seconds * 1000)); }

/// "kryten.lifecycle.{service}.{kind}" -> kind; "" for other subjects.
std::string lifecycle_kind(const std::string& subject) {
  auto dot = subject.rfind('.');
  return dot == std::string::npos ? "" : subject.substr(dot + 1);
}

}  // namespace

fleet_monitor::fleet_monitor(kryten::client& client, monitor_settings settings)
  : client_(client),
    settings_(std::move(settings)),
    poller_(ms(settings_.health_timeout), static_cast<std::size_t>(settings_.health_concurrency)),
    registry_(settings_.registry) {}

fleet_monitor::~fleet_monitor() { stop(); }

void fleet_monitor::attach() {
  client_.subscribe("kryten.lifecycle.>", [this](const kryten::bus_message& m) { on_lifecycle(m); });
  client_.on_command("system.services",
                     [this](const kryten::command_request&) { return system_services(); });
}

void fleet_monitor::start() {
  open_store();
  restore_from_store();
  try {
    link_ = std::make_unique<kryten::apps::nats_link>(kryten::apps::link_options_from(
      client_.config().nats, client_.config().service_name() + "-pings"));
  } catch (const kryten::apps::link_error& e) {
    client_.logger()->warn("Service API pings are off: {}", e.what());
  }
  serve_http();
  publish_discovery_poll();
  ticker_ = std::thread([this] { tick_loop(); });
}

void fleet_monitor::stop() {
  if (stopping_.exchange(true))
    return;
  {
    std::lock_guard<std::mutex> guard{tick_mx_};
    tick_cv_.notify_all();
  }
  if (ticker_.joinable())
    ticker_.join();
  if (http_)
    http_->stop();
  if (http_thread_.joinable())
    http_thread_.join();
  link_.reset();
}

void fleet_monitor::open_store() {
  if (settings_.kv_bucket.empty())
    return;
  try {
    kryten::kv_bucket_config cfg;
    cfg.bucket = settings_.kv_bucket;
    cfg.description = "kryten-monitor's service registry: one key per instance";
    store_.emplace(client_.kv(cfg));
  } catch (const kryten::kv_error& e) {
    client_.logger()->warn("registry not persisted (KV bucket {}): {}", settings_.kv_bucket,
                           e.what());
  }
}

void fleet_monitor::restore_from_store() {
  if (!store_)
    return;
  try {
    auto entries = store_->get_all_json();
    std::lock_guard<std::mutex> guard{mx_};
    for (auto& [key, value] : entries) {
      if (registry_.restore(value))
        stored_state_[key] = value.value("state", std::string{});
    }
    client_.logger()->info("{} instances read back from KV bucket {}", registry_.size(),
                           settings_.kv_bucket);
  } catch (const kryten::kv_error& e) {
    client_.logger()->warn("cannot read KV bucket {}: {}", settings_.kv_bucket, e.what());
  }
}

void fleet_monitor::on_lifecycle(const kryten::bus_message& msg) {
  auto kind = lifecycle_kind(msg.subject);
  if (kind == "connected") {
    // Our own (re)connection: services may have come and gone meanwhile.
    auto j = nlohmann::json::parse(msg.data, nullptr, false);
    if (j.is_object() && j.value("instance_id", std::string{}) == client_.instance_id())
      repoll_ = true;
  }
  std::lock_guard<std::mutex> guard{mx_};
  auto before = registry_.malformed();
  if (auto key = registry_.apply_lifecycle(kind, msg.data, detail::unix_ns()))
    dirty_.insert(*key);
  else if (registry_.malformed() != before)
    client_.logger()->warn("malformed lifecycle payload on {} ignored ({} so far)", msg.subject,
                           registry_.malformed());
}

nlohmann::json fleet_monitor::system_services() const {
  std::vector<instance_view> snap;
  {
    std::lock_guard<std::mutex> guard{mx_};
    snap = registry_.snapshot(detail::unix_ns());
  }
  auto services = nlohmann::json::array();
  std::size_t stale = 0;
  for (auto& v : snap) {
    services.push_back(to_service_info(v));
    stale += v.state == instance_state::stale || v.state == instance_state::down;
  }
  return {{"services", services},
          {"count", snap.size()},
          {"active_count", snap.size() - stale},
          {"stale_count", stale}};
}

void fleet_monitor::publish_discovery_poll() {
  client_.publish("kryten.service.discovery.poll",
                  nlohmann::json{{"service", client_.config().service_name()},
                                 {"instance_id", client_.instance_id()},
                                 {"timestamp", detail::iso8601_now()}});
}

void fleet_monitor::tick_loop() {
  while (!stopping_) {
    try {
      tick(steady_clock::now());
    } catch (const std::exception& e) {
      // One bad round (a store or bus error not foreseen) must not end the monitor.
      client_.logger()->error("monitor round failed: {}", e.what());
    }
    std::unique_lock<std::mutex> lock{tick_mx_};
    tick_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_.load(); });
  }
}

void fleet_monitor::tick(steady_clock::time_point now) {
  if (repoll_.exchange(false))
    publish_discovery_poll();
  if (now >= next_health_) {
    poll_health();
    next_health_ = now + ms(settings_.health_poll_interval);
  }
  if (link_ && now >= next_service_api_) {
    ping_service_api();
    next_service_api_ = now + ms(settings_.registry.service_api_interval);
  }
  sweep();
  persist();
}

void fleet_monitor::poll_health() {
  std::vector<health_target> targets;
  {
    std::lock_guard<std::mutex> guard{mx_};
    for (auto& v : registry_.snapshot(detail::unix_ns()))
      if (v.record.health && v.state != instance_state::down)
        targets.push_back({v.record.key(), *v.record.health});
  }
  auto results = poller_.poll(targets);
  std::lock_guard<std::mutex> guard{mx_};
  for (auto& r : results) {
    registry_.record_health(r.key, r.check);
    dirty_.insert(r.key);
  }
}

void fleet_monitor::ping_service_api() {
  std::vector<kryten::apps::link_reply> replies;
  try {
    replies = link_->gather("$SRV.PING", "", ms(settings_.health_timeout));
  } catch (const kryten::apps::link_error& e) {
    client_.logger()->warn("$SRV.PING failed: {}", e.what());
    return;
  }
  std::lock_guard<std::mutex> guard{mx_};
  for (auto& r : replies)
    if (auto key = registry_.apply_service_api_ping(r.data, detail::unix_ns()))
      dirty_.insert(*key);
}

void fleet_monitor::sweep() {
  std::vector<std::string> removed;
  {
    std::lock_guard<std::mutex> guard{mx_};
    removed = registry_.sweep(detail::unix_ns());
    for (auto& key : removed) {
      dirty_.erase(key);
      stored_state_.erase(key);
    }
  }
  for (auto& key : removed) {
    client_.logger()->info("swept {}", key);
    if (store_) {
      try {
        store_->erase(key);
      } catch (const kryten::kv_error& e) {
        client_.logger()->warn("cannot erase {} from the KV bucket: {}", key, e.what());
      }
    }
  }
}

void fleet_monitor::persist() {
  if (!store_)
    return;
  std::vector<std::pair<std::string, nlohmann::json>> writes;
  {
    std::lock_guard<std::mutex> guard{mx_};
    for (auto& v : registry_.snapshot(detail::unix_ns())) {
      auto key = v.record.key();
      std::string state = to_string(v.state);
      // Heartbeats, health results and state changes are written; an
      // unchanged entry is not rewritten every second.
      if (dirty_.count(key) == 0 && stored_state_[key] == state)
        continue;
      writes.emplace_back(key, to_json(v));
      stored_state_[key] = state;
    }
    dirty_.clear();
  }
  for (auto& [key, value] : writes) {
    try {
      store_->put_json(key, value);
    } catch (const kryten::kv_error& e) {
      client_.logger()->warn("cannot write {} to the KV bucket: {}", key, e.what());
    }
  }
}

void fleet_monitor::serve_http() {
  http_ = std::make_unique<httplib::Server>();
  // Only GETs are served: a client that sends a body or dawdles is cut short.
  http_->set_payload_max_length(64 * 1024);
  http_->set_read_timeout(5, 0);
  http_->set_write_timeout(5, 0);
  auto context = [this] {
    page_context ctx;
    ctx.monitor_name = client_.config().service_name();
    ctx.monitor_instance_id = client_.instance_id();
    ctx.now_ns = detail::unix_ns();
    ctx.refresh_seconds = settings_.page_refresh;
    return ctx;
  };
  auto snapshot = [this](page_context& ctx) {
    std::lock_guard<std::mutex> guard{mx_};
    ctx.malformed = registry_.malformed();
    return registry_.snapshot(ctx.now_ns);
  };
  http_->Get("/", [=](const httplib::Request&, httplib::Response& res) {
    auto ctx = context();
    auto snap = snapshot(ctx);
    res.set_header("Cache-Control", "no-store");
    res.set_content(render_dashboard(snap, ctx), "text/html; charset=utf-8");
  });
  http_->Get("/api/services", [=](const httplib::Request&, httplib::Response& res) {
    auto ctx = context();
    auto snap = snapshot(ctx);
    res.set_header("Cache-Control", "no-store");
    res.set_content(render_api(snap, ctx).dump(2), "application/json");
  });
  http_->Get("/metrics", [=](const httplib::Request&, httplib::Response& res) {
    auto ctx = context();
    auto snap = snapshot(ctx);
    res.set_content(render_metrics(snap, ctx), "text/plain; version=0.0.4; charset=utf-8");
  });
  http_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    auto h = client_.health();
    std::size_t instances = 0;
    {
      std::lock_guard<std::mutex> guard{mx_};
      instances = registry_.size();
    }
    nlohmann::json doc{{"service", client_.config().service_name()},
                       {"status", h.connected ? "healthy" : "degraded"},
                       {"nats_connected", h.connected},
                       {"uptime_seconds", h.uptime_seconds},
                       {"instances", instances},
                       {"kv_bucket", store_ ? nlohmann::json(settings_.kv_bucket) : nlohmann::json(nullptr)}};
    res.status = h.connected ? 200 : 503;
    res.set_content(doc.dump(), "application/json");
  });
  if (!http_->bind_to_port(settings_.http_host.c_str(), settings_.http_port))
    throw std::runtime_error("cannot listen on " + settings_.http_host + ":"
                             + std::to_string(settings_.http_port));
  bound_port_ = settings_.http_port;
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  client_.logger()->info("dashboard on http://{}:{}/", settings_.http_host, bound_port_);
}

}  // namespace kryten::monitor
