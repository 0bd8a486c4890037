#include "kryten/client.hpp"

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <random>
#include <thread>

#include <caf/all.hpp>

#include "actors/command_actor.hpp"
#include "actors/connection_actor.hpp"
#include "actors/handler_actor.hpp"
#include "actors/handler_registry.hpp"
#include "kryten/logging.hpp"
#include "kryten/subjects.hpp"
#include "kryten/clock.hpp"
#include "runtime/signal_watcher.hpp"

namespace kryten {

namespace {

using namespace std::chrono_literals;

/// The scheduler settings of a standalone client's own actor system.
std::unique_ptr<caf::actor_system_config> make_system_config() {
  auto cfg = std::make_unique<caf::actor_system_config>();
  add_message_types(*cfg);
  auto threads = std::max(2u, std::thread::hardware_concurrency());
  cfg->set("scheduler.max-threads", static_cast<std::size_t>(threads));
  // A handler with a long queue yields its thread after this many events, so
  // that it cannot starve the others.
  cfg->set("scheduler.max-throughput", static_cast<std::size_t>(64));
  return cfg;
}

std::string event_label(std::string_view name, std::size_t index) {
  return std::string{name} + "#" + std::to_string(index);
}

}  // namespace

struct client::impl {
  kryten_config cfg;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<caf::actor_system_config> own_cfg;
  std::unique_ptr<caf::actor_system> own_sys;
  caf::actor_system* sys = nullptr;
  bool embedded = false;
  std::string instance_id;
  std::string service;

  std::shared_ptr<detail::handler_registry> registry =
    std::make_shared<detail::handler_registry>();
  std::shared_ptr<detail::connection_stats> conn_stats =
    std::make_shared<detail::connection_stats>();
  std::vector<std::shared_ptr<detail::subscription_stats>> channel_stats;
  std::shared_ptr<detail::handler_stats> command_stats =
    std::make_shared<detail::handler_stats>();

  caf::actor connection;
  caf::actor commands;

  // Guards what user threads register and read outside the event path.
  mutable std::mutex mx;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::shared_ptr<detail::handler_stats>>> handler_stats;
  std::vector<caf::actor> owned_actors;  // handler actors, stopped with the client
  struct pending_subscription {
    std::string subject;
    std::string queue;
    detail::handler_route route;
  };
  std::vector<pending_subscription> subscriptions;  // re-made on connect
  bool commands_subscribed = false;
  bool has_commands = false;
  std::mt19937_64 rng{std::random_device{}()};

  // Lifecycle
  connection_state state = connection_state::connecting;
  bool lost_for_good = false;
  std::int64_t connected_since_ns = 0;
  bool stop_requested = false;
  std::string stop_reason;
  bool disconnected = false;

  impl(kryten_config c, std::shared_ptr<spdlog::logger> l) : cfg(std::move(c)), log(std::move(l)) {
    service = cfg.service_name();
    if (!log)
      log = make_stderr_logger(service, cfg.log_level);
    for (auto& w : cfg.warnings)
      log->warn("config: {}", w);
    for (std::size_t i = 0; i < cfg.channels.size(); ++i)
      channel_stats.push_back(std::make_shared<detail::subscription_stats>());
  }

  std::string uuid4();
  void start_actors();
  void on_status(const connection_status& st);
  void add_route(std::string_view event_name, caf::actor actor,
                 std::shared_ptr<detail::handler_stats> stats, handler_filter filter,
                 std::string label);
  detail::handler_spec make_spec(std::string label);
  std::string subscribe_now(const pending_subscription& sub);
  void ensure_command_subscription();
  void wait_for_handlers(std::chrono::steady_clock::time_point deadline);
  void stop_actors();
  void release_actors();
};

std::string client::impl::uuid4() {
  std::uint64_t hi, lo;
  {
    std::lock_guard<std::mutex> guard{mx};
    hi = rng();
    lo = rng();
  }
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

void client::impl::on_status(const connection_status& st) {
  std::lock_guard<std::mutex> guard{mx};
  state = st.state;
  if (st.state == connection_state::connected && connected_since_ns == 0)
    connected_since_ns = detail::steady_ns();
  if (st.state == connection_state::closed && !disconnected) {
    // cnats gave up reconnecting: run() returns 1.
    lost_for_good = true;
    stop_requested = true;
    stop_reason = "NATS connection lost";
  }
  cv.notify_all();
}

void client::impl::start_actors() {
  detail::connection_spec spec;
  spec.nats = cfg.nats;
  spec.channels = cfg.channels;
  spec.client_name = service;
  spec.registry = registry;
  spec.stats = conn_stats;
  spec.channel_stats = channel_stats;
  spec.log = log;
  spec.on_status = [this](const connection_status& st) { on_status(st); };
  connection = detail::spawn_connection_actor(*sys, std::move(spec));
  commands = detail::spawn_command_actor(
    *sys, detail::command_spec{service, connection, command_stats, log});
}

detail::handler_spec client::impl::make_spec(std::string label) {
  detail::handler_spec spec;
  spec.label = std::move(label);
  spec.stats = std::make_shared<detail::handler_stats>();
  spec.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
    std::chrono::duration<double>(cfg.handler_timeout));
  spec.log = log;
  return spec;
}

void client::impl::add_route(std::string_view event_name, caf::actor actor,
                             std::shared_ptr<detail::handler_stats> stats,
                             handler_filter filter, std::string label) {
  detail::handler_route route;
  route.event_name = to_lower(event_name);
  route.channel = std::move(filter.channel);
  route.domain = std::move(filter.domain);
  route.actor = actor;
  route.stats = stats;
  route.capacity = cfg.handler_queue_size;
  route.label = label;
  {
    std::lock_guard<std::mutex> guard{mx};
    handler_stats.emplace_back(label, std::move(stats));
    owned_actors.push_back(std::move(actor));
  }
  registry->add(std::move(route));
}

std::string client::impl::subscribe_now(const pending_subscription& sub) {
  std::string err = "no answer from the connection actor";
  caf::scoped_actor self{*sys};
  self->request(connection, 10s, subscribe_atom::value, sub.subject, sub.queue, sub.route)
    .receive([&](std::string& e) { err = std::move(e); },
             [&](caf::error& e) { err = sys->render(e); });
  return err;
}

void client::impl::ensure_command_subscription() {
  pending_subscription sub;
  {
    std::lock_guard<std::mutex> guard{mx};
    if (commands_subscribed || !has_commands || state != connection_state::connected)
      return;
    commands_subscribed = true;
  }
  sub.subject = subjects::command(service);
  sub.queue = "q";
  sub.route.actor = commands;
  sub.route.stats = command_stats;
  sub.route.capacity = cfg.handler_queue_size;
  sub.route.label = "commands";
  if (auto err = subscribe_now(sub); !err.empty())
    log->error("cannot serve commands: {}", err);
}

void client::impl::wait_for_handlers(std::chrono::steady_clock::time_point deadline) {
  auto busy = [this] {
    std::lock_guard<std::mutex> guard{mx};
    for (auto& [label, stats] : handler_stats)
      if (stats->queued.load(std::memory_order_relaxed) > 0)
        return label;
    return std::string{};
  };
  for (auto label = busy(); !label.empty(); label = busy()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      log->error("handler {} still busy at the shutdown deadline; not waiting for it", label);
      return;
    }
    std::this_thread::sleep_for(2ms);
  }
}

void client::impl::stop_actors() {
  std::vector<caf::actor> actors;
  {
    std::lock_guard<std::mutex> guard{mx};
    actors = owned_actors;
  }
  actors.push_back(commands);
  actors.push_back(connection);
  caf::scoped_actor self{*sys};
  for (auto& a : actors) {
    self->monitor(a);
    self->send_exit(a, caf::exit_reason::user_shutdown);
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (std::size_t down = 0; down < actors.size();) {
    bool timed_out = false;
    self->receive([&](caf::down_msg&) { ++down; },
                  caf::after(std::chrono::duration_cast<caf::timespan>(
                    std::max(deadline - std::chrono::steady_clock::now(),
                             std::chrono::steady_clock::duration{0})))
                    >> [&] { timed_out = true; });
    if (timed_out) {
      log->error("{} actors did not stop within 5 s", actors.size() - down);
      return;
    }
  }
}

/// Drops every handle: a detached actor's thread ends only once nothing
/// references the actor, and the actor system waits for that thread.
void client::impl::release_actors() {
  std::lock_guard<std::mutex> guard{mx};
  owned_actors.clear();
  subscriptions.clear();
  registry.reset();
  commands = nullptr;
  connection = nullptr;
}

// -- client ---------------------------------------------------------------------

client::client(kryten_config config, std::shared_ptr<spdlog::logger> logger)
  : impl_(std::make_unique<impl>(std::move(config), std::move(logger))) {
  impl_->own_cfg = make_system_config();
  impl_->own_sys = std::make_unique<caf::actor_system>(*impl_->own_cfg);
  impl_->sys = impl_->own_sys.get();
  impl_->instance_id = impl_->uuid4();
  impl_->start_actors();
}

client::client(caf::actor_system& system, kryten_config config,
               std::shared_ptr<spdlog::logger> logger)
  : impl_(std::make_unique<impl>(std::move(config), std::move(logger))) {
  impl_->sys = &system;
  impl_->embedded = true;
  impl_->instance_id = impl_->uuid4();
  impl_->start_actors();
}

client::~client() {
  disconnect("Client destroyed");
  impl_->stop_actors();
  impl_->release_actors();
  impl_->own_sys.reset();  // waits for every actor of its own
}

void client::connect() {
  auto& s = *impl_;
  auto servers = static_cast<double>(s.cfg.nats.servers.size());
  auto timeout = std::chrono::duration_cast<caf::timespan>(
    std::chrono::duration<double>(s.cfg.nats.connect_timeout * servers + 5.0));
  std::string err = "no answer from the connection actor";
  caf::scoped_actor self{*s.sys};
  self->request(s.connection, timeout, connect_atom::value)
    .receive([&](std::string& e) { err = std::move(e); },
             [&](caf::error& e) { err = s.sys->render(e); });
  if (!err.empty()) {
    s.log->error("{}", err);
    throw connect_error(err);
  }
  std::vector<impl::pending_subscription> subs;
  {
    std::lock_guard<std::mutex> guard{s.mx};
    subs = s.subscriptions;
    s.disconnected = false;
  }
  for (auto& sub : subs)
    if (auto e = s.subscribe_now(sub); !e.empty())
      s.log->error("{}", e);
  s.ensure_command_subscription();
}

int client::run() {
  auto& s = *impl_;
  std::unique_ptr<detail::signal_watcher> signals;
  if (!s.embedded)
    signals = std::make_unique<detail::signal_watcher>([this](int sig) {
      impl_->log->info("received {}; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      stop(sig == SIGTERM ? "Received SIGTERM" : "Received SIGINT");
    });
  // After the signal handlers are in: from here on SIGINT/SIGTERM stop cleanly.
  s.log->info("running until stopped{}", s.embedded ? "" : " (SIGINT/SIGTERM)");
  std::string reason;
  bool lost = false;
  {
    std::unique_lock<std::mutex> guard{s.mx};
    s.cv.wait(guard, [&] { return s.stop_requested || s.disconnected; });
    reason = s.stop_reason;
    lost = s.lost_for_good;
  }
  disconnect(reason.empty() ? "Normal shutdown" : reason);
  return lost ? 1 : 0;
}

void client::stop(std::string reason) {
  std::lock_guard<std::mutex> guard{impl_->mx};
  if (!impl_->stop_requested) {
    impl_->stop_requested = true;
    impl_->stop_reason = std::move(reason);
  }
  impl_->cv.notify_all();
}

void client::disconnect(std::string reason) {
  auto& s = *impl_;
  {
    std::lock_guard<std::mutex> guard{s.mx};
    if (s.disconnected)
      return;
    s.disconnected = true;
  }
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    std::chrono::duration<double>(
                      s.cfg.service ? s.cfg.service->shutdown_timeout : 10.0));
  s.log->info("disconnecting: {}", reason);
  caf::scoped_actor self{*s.sys};
  self->request(s.connection, 5s, unsubscribe_atom::value)
    .receive([](bool) {}, [](caf::error&) {});
  s.wait_for_handlers(deadline);
  self->request(s.connection, 10s, close_atom::value, reason)
    .receive([](bool) {}, [&](caf::error& e) {
      s.log->error("closing the NATS connection failed: {}", s.sys->render(e));
    });
  std::lock_guard<std::mutex> guard{s.mx};
  s.commands_subscribed = false;
  s.cv.notify_all();
}

bool client::is_connected() const {
  std::lock_guard<std::mutex> guard{impl_->mx};
  return impl_->state == connection_state::connected && !impl_->disconnected;
}

void client::on_callbacks(std::string_view event_name, event_callbacks callbacks,
                          handler_filter filter) {
  auto& s = *impl_;
  std::size_t index;
  {
    std::lock_guard<std::mutex> guard{s.mx};
    index = s.handler_stats.size() + 1;
  }
  auto spec = s.make_spec(event_label(to_lower(event_name), index));
  spec.callbacks = std::move(callbacks);
  auto stats = spec.stats;
  auto label = spec.label;
  auto actor = s.sys->spawn(detail::handler_actor, std::move(spec));
  s.add_route(event_name, std::move(actor), std::move(stats), std::move(filter),
              std::move(label));
}

void client::on_actor(std::string_view event_name, caf::actor handler, handler_filter filter) {
  auto& s = *impl_;
  std::size_t index;
  {
    std::lock_guard<std::mutex> guard{s.mx};
    index = s.handler_stats.size() + 1;
  }
  auto spec = s.make_spec(event_label(to_lower(event_name), index) + "(actor)");
  auto stats = spec.stats;
  auto label = spec.label;
  auto proxy = s.sys->spawn(detail::forwarding_actor, std::move(spec), std::move(handler));
  s.add_route(event_name, std::move(proxy), std::move(stats), std::move(filter),
              std::move(label));
}

std::string client::send_command(std::string_view service, std::string_view type,
                                 const nlohmann::json& body, std::optional<std::string> domain,
                                 std::optional<std::string> channel) {
  auto& s = *impl_;
  auto subject = subjects::command(service);
  auto request_id = s.uuid4();
  nlohmann::json msg{
    {"command", type},
    {"args", body.is_object() ? body : nlohmann::json{{"value", body}}},
    {"meta",
     {{"source", s.service},
      {"timestamp", detail::iso8601_now()},
      {"domain", domain ? *domain : s.cfg.channels.front().domain},
      {"channel", channel ? *channel : s.cfg.channels.front().channel},
      {"request_id", request_id}}}};
  caf::anon_send(s.connection, command_atom::value, subject, msg.dump());
  return request_id;
}

void client::on_command(std::string command, command_handler handler) {
  auto& s = *impl_;
  caf::anon_send(s.commands, subscribe_atom::value, std::move(command), std::move(handler));
  {
    std::lock_guard<std::mutex> guard{s.mx};
    s.has_commands = true;
  }
  s.ensure_command_subscription();
}

void client::publish(std::string_view subject, std::string_view data) {
  caf::anon_send(impl_->connection, publish_atom::value, std::string{subject},
                 std::string{data});
}

void client::publish(std::string_view subject, const nlohmann::json& body) {
  publish(subject, std::string_view{body.dump()});
}

void client::subscribe(std::string_view subject, std::function<void(const bus_message&)> cb) {
  auto& s = *impl_;
  std::size_t index;
  {
    std::lock_guard<std::mutex> guard{s.mx};
    index = s.handler_stats.size() + 1;
  }
  auto spec = s.make_spec(std::string{subject} + "#" + std::to_string(index));
  spec.callbacks.bus = std::move(cb);
  impl::pending_subscription sub;
  sub.subject = std::string{subject};
  sub.route.stats = spec.stats;
  sub.route.capacity = s.cfg.handler_queue_size;
  sub.route.label = spec.label;
  sub.route.actor = s.sys->spawn(detail::handler_actor, spec);
  bool now;
  {
    std::lock_guard<std::mutex> guard{s.mx};
    s.handler_stats.emplace_back(spec.label, spec.stats);
    s.owned_actors.push_back(sub.route.actor);
    s.subscriptions.push_back(sub);
    now = s.state == connection_state::connected && !s.disconnected;
  }
  if (now)
    if (auto err = s.subscribe_now(sub); !err.empty())
      s.log->error("{}", err);
}

nlohmann::json client::request(std::string_view subject, const nlohmann::json& body,
                               std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  std::optional<std::string> reply;
  std::string err;
  caf::scoped_actor self{*s.sys};
  self->request(s.connection, timeout + 1s, request_atom::value, std::string{subject},
                body.dump(), static_cast<std::int64_t>(timeout.count()))
    .receive([&](std::string& r) { reply = std::move(r); },
             [&](caf::error& e) {
               err = e == caf::sec::request_timeout ? "no reply within "
                                                        + std::to_string(timeout.count())
                                                        + " ms"
                                                    : s.sys->render(e);
             });
  if (!reply)
    throw request_error("request to " + std::string{subject} + " failed: " + err);
  return nlohmann::json::parse(*reply);
}

health_status client::health() const {
  auto& s = *impl_;
  health_status h;
  h.service = s.service;
  for (auto& ch : s.cfg.channels)
    h.channels.push_back(ch.domain + "/" + ch.channel);
  std::int64_t last_event = 0;
  for (auto& st : s.channel_stats) {
    h.events_received += detail::read(st->received);
    h.decode_errors += st->decode_error_total();
    h.dropped_events += detail::read(st->dropped_by_nats);
    last_event = std::max(last_event, st->last_event_unix_ns.load(std::memory_order_relaxed));
  }
  if (last_event > 0)
    h.last_event_time = detail::iso8601(last_event);
  auto& cs = *s.conn_stats;
  h.commands_sent = detail::read(cs.commands_sent);
  h.nats_errors = detail::read(cs.nats_errors) + detail::read(cs.slow_consumer_errors);
  h.publish_errors = detail::read(cs.publish_errors);
  h.reconnects = detail::read(cs.reconnects);
  std::uint64_t run_ns = 0;
  std::lock_guard<std::mutex> guard{s.mx};
  for (auto& [label, st] : s.handler_stats) {
    h.handler_exceptions += detail::read(st->exceptions);
    h.handler_timeouts += detail::read(st->timeouts);
    h.dropped_events += detail::read(st->dropped);
    h.events_handled += detail::read(st->handled);
    run_ns += detail::read(st->run_ns);
  }
  h.handlers_registered = s.handler_stats.size();
  h.avg_event_latency_ms = h.events_handled ? run_ns / 1e6 / h.events_handled : 0.0;
  h.errors = h.decode_errors + h.handler_exceptions + h.handler_timeouts + h.dropped_events
             + h.nats_errors + h.publish_errors;
  h.connected = s.state == connection_state::connected && !s.disconnected;
  h.state = s.lost_for_good                                  ? "error"
            : h.connected                                    ? "connected"
            : s.state == connection_state::connecting        ? "connecting"
                                                             : "disconnected";
  if (s.connected_since_ns > 0)
    h.uptime_seconds = (detail::steady_ns() - s.connected_since_ns) / 1e9;
  return h;
}

const kryten_config& client::config() const {
  return impl_->cfg;
}

const std::string& client::instance_id() const {
  return impl_->instance_id;
}

std::shared_ptr<spdlog::logger> client::logger() const {
  return impl_->log;
}

caf::actor_system& client::system() {
  return *impl_->sys;
}

nlohmann::json health_status::to_json() const {
  return {{"service", service},
          {"connected", connected},
          {"state", state},
          {"uptime_seconds", uptime_seconds},
          {"channels", channels},
          {"events_received", events_received},
          {"commands_sent", commands_sent},
          {"errors", errors},
          {"avg_event_latency_ms", avg_event_latency_ms},
          {"last_event_time", last_event_time ? nlohmann::json(*last_event_time) : nullptr},
          {"handlers_registered", handlers_registered},
          {"decode_errors", decode_errors},
          {"handler_exceptions", handler_exceptions},
          {"handler_timeouts", handler_timeouts},
          {"dropped_events", dropped_events},
          {"nats_errors", nats_errors},
          {"publish_errors", publish_errors},
          {"reconnects", reconnects},
          {"events_handled", events_handled}};
}

}  // namespace kryten
