#include "kryten/client.hpp"

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <caf/all.hpp>
#include <prometheus/registry.h>

#include "actors/log_limiter.hpp"
#include "actors/publish_gate.hpp"
#include "actors/runtime_api_actor.hpp"
#include "actors/supervisor_actor.hpp"
#include "kryten/logging.hpp"
#include "kryten/subjects.hpp"
#include "messages/uuid.hpp"
#include "runtime/ask.hpp"
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
  // An actor yields its thread after this many messages (a handler also after
  // 256 events or 2 ms of one drain), so that none can starve the others.
  cfg->set("scheduler.max-throughput", static_cast<std::size_t>(64));
  // CAF's work-stealing defaults poll for 25 ms after each job (100 spins,
  // then 500 naps of 50 us): at a steady 1,000 events/s the workers never
  // sleep, and the naps alone cost about 0.2 cores. Measured here: 20 spins,
  // then straight to the worker's condition variable (which an enqueue from a
  // cnats thread signals at once) costs 0.05 cores at 1,000 events/s and
  // nothing in throughput.
  cfg->set("work-stealing.aggressive-poll-attempts", static_cast<std::size_t>(20));
  cfg->set("work-stealing.moderate-poll-attempts", static_cast<std::size_t>(0));
  // An idle worker wakes every relaxed-sleep-duration to look for work to
  // steal (CAF's default, 10 ms, is 200 wake-ups a second from two workers:
  // 0.01 cores of an idle bot). A job for it signals it at once whatever
  // this is; the wait only delays stealing a job queued behind a long one on
  // a busy worker. The runtime's own actors are detached, so that is only
  // ever a user's actor queued behind another user actor's long job.
  cfg->set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::milliseconds(500)});
  return cfg;
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0)
    return "unknown";
  return buf;
}

caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(s));
}

/// metadata.endpoints of PROTOCOL.md §3, from the configured ports.
nlohmann::json endpoints_of(const kryten_config& cfg) {
  auto endpoints = nlohmann::json::object();
  if (!cfg.service)
    return endpoints;
  auto& s = *cfg.service;
  if (s.health_port)
    endpoints["health"] = {{"port", *s.health_port}, {"path", s.health_path}};
  if (s.metrics_port)
    endpoints["metrics"] = {{"port", *s.metrics_port}, {"path", s.metrics_path}};
  // A probe bound to one address is reachable only there: say which, so that
  // a monitor does not try the hostname. A wildcard bind says nothing more.
  if (s.health_host != "0.0.0.0" && s.health_host != "::" && !s.health_host.empty())
    for (auto& [name, ep] : endpoints.items())
      ep["host"] = s.health_host;
  return endpoints;
}

/// What the runtime's actors tell the client's own threads (run(), connect(),
/// is_connected()): the one object the client shares with them. Actors hold
/// it by shared_ptr, so a late callback after the client is gone touches
/// nothing freed.
struct run_control {
  std::mutex mx;
  std::condition_variable cv;
  connection_state state = connection_state::connecting;
  bool connected_once = false;  // connect() succeeded
  bool disconnected = false;    // disconnect() began
  bool stop_requested = false;
  bool shut_down = false;       // the supervisor finished the graceful shutdown
  std::string stop_reason;
  int exit_code = 0;

  void mark_shut_down() {
    std::lock_guard<std::mutex> guard{mx};
    shut_down = true;
    cv.notify_all();
  }

  /// Waits (bounded) for a shutdown that began, wherever it began.
  void await_shut_down(double seconds) {
    std::unique_lock<std::mutex> guard{mx};
    cv.wait_for(guard, std::chrono::duration<double>(seconds),
                [&] { return shut_down || !disconnected; });
  }

  void on_status(const connection_status& st) {
    std::lock_guard<std::mutex> guard{mx};
    state = st.state;
    if (st.state == connection_state::closed && connected_once && !disconnected
        && !stop_requested) {
      // cnats gave up reconnecting: run() returns 1.
      stop_requested = true;
      stop_reason = "NATS connection lost";
      exit_code = 1;
    }
    cv.notify_all();
  }

  void request_stop(const std::string& reason, int code) {
    std::lock_guard<std::mutex> guard{mx};
    if (!stop_requested) {
      stop_requested = true;
      stop_reason = reason;
      exit_code = code;
    }
    cv.notify_all();
  }
};

}  // namespace

struct client::impl {
  kryten_config cfg;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<caf::actor_system_config> own_cfg;
  std::unique_ptr<caf::actor_system> own_sys;
  caf::actor_system* sys = nullptr;
  bool embedded = false;
  service_identity identity;

  std::shared_ptr<detail::handler_registry> registry =
    std::make_shared<detail::handler_registry>();
  std::shared_ptr<detail::connection_stats> conn_stats =
    std::make_shared<detail::connection_stats>();
  std::vector<std::shared_ptr<detail::subscription_stats>> channel_stats;
  std::shared_ptr<detail::handler_stats> command_stats =
    std::make_shared<detail::handler_stats>();
  std::shared_ptr<detail::runtime_flags> flags = std::make_shared<detail::runtime_flags>();

  caf::actor supervisor;
  caf::actor aggregator;  // the health actor
  detail::runtime_api_actor api;  // the typed protocol; the facade's methods go through it
  // ... except publish() and send_command(): once connected, straight onto
  // the NATS connection from the caller's thread (no thread hop) ...
  std::shared_ptr<detail::publish_gate> gate = std::make_shared<detail::publish_gate>(conn_stats);
  // ... else to the connection actor (under mx: any thread may publish while
  // another disconnects), which counts and logs what it cannot publish
  // (before connect() too: it exists from construction on).
  caf::actor connection;
  detail::log_limiter unsent_limiter;  // under mx
  detail::command_origin origin;

  std::shared_ptr<run_control> control = std::make_shared<run_control>();
  std::shared_ptr<detail::transport> transport;  // null: NATS

  // Guards what user threads register and read outside the event path.
  mutable std::mutex mx;
  bool connecting = false;  // a connect() is under way
  bool actors_stopped = false;
  std::vector<std::string> stuck;  // actors that did not stop
  std::shared_ptr<prometheus::Registry> custom_metrics = std::make_shared<prometheus::Registry>();

  impl(kryten_config c, std::shared_ptr<spdlog::logger> l) : cfg(std::move(c)), log(std::move(l)) {
    if (!log)
      log = make_stderr_logger(cfg.service_name(), cfg.log_level);
    for (auto& w : cfg.warnings)
      log->warn("config: {}", w);
    for (std::size_t i = 0; i < cfg.channels.size(); ++i)
      channel_stats.push_back(std::make_shared<detail::subscription_stats>());
    identity.service = cfg.service_name();
    identity.version = cfg.service ? cfg.service->version : "1.0.0";
    identity.hostname = host_name();
    identity.instance_id = detail::uuid4();
    origin.service = identity.service;
    if (!cfg.channels.empty()) {
      origin.default_domain = cfg.channels.front().domain;
      origin.default_channel = cfg.channels.front().channel;
    }
    if (auto endpoints = endpoints_of(cfg); !endpoints.empty())
      identity.metadata["endpoints"] = endpoints;
    // How often heartbeats come: a monitor judges silence by it (3 missed = stale).
    if (cfg.service && cfg.service->enable_heartbeat)
      identity.metadata["heartbeat_interval"] = cfg.service->heartbeat_interval;
  }

  void start_actors();
  void start_api(caf::actor connection, caf::actor commands);
  /// Publishes through the gate, else through the connection actor; with
  /// neither (its actors stopped: after run() returned, or while the client
  /// is destroyed), counts and logs it.
  void send_out(std::string subject, std::string data, bool command);
  /// The most a graceful shutdown can take, with a margin.
  double shutdown_budget() const {
    return (cfg.service ? cfg.service->shutdown_timeout : 10.0) + 5.0;
  }
  detail::handler_spec make_spec();
  void add(detail::handler_registration reg);
  /// Asks the runtime API and waits (on the caller's thread) for its answer.
  template <class T, class... Ts>
  caf::expected<T> ask(caf::timespan deadline, Ts&&... xs);
  void stop_actors();
  std::optional<health_status> ask_health(std::chrono::milliseconds deadline);
};

template <class T, class... Ts>
caf::expected<T> client::impl::ask(caf::timespan deadline, Ts&&... xs) {
  return detail::ask<T>(*sys, api, deadline, std::forward<Ts>(xs)...);
}

std::optional<health_status> client::impl::ask_health(std::chrono::milliseconds deadline) {
  if (auto h = ask<health_status>(deadline, health_atom::value))
    return std::move(*h);
  return std::nullopt;
}

void client::impl::start_actors() {
  detail::supervisor_spec spec;
  spec.cfg = cfg;
  spec.identity = identity;
  spec.log = log;
  spec.registry = registry;
  spec.conn_stats = conn_stats;
  spec.gate = gate;
  spec.channel_stats = channel_stats;
  spec.command_stats = command_stats;
  spec.flags = flags;
  spec.health.service = identity.service;
  spec.health.version = identity.version;
  spec.health.instance_id = identity.instance_id;
  for (auto& ch : cfg.channels)
    spec.health.channel_names.push_back(ch.domain + "/" + ch.channel);
  spec.health.channel_stats = channel_stats;
  spec.health.conn_stats = conn_stats;
  spec.health.flags = flags;
  spec.health.custom_metrics = custom_metrics;
  spec.health.handler_timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
    std::chrono::duration<double>(cfg.handler_timeout));
  spec.on_status = [control = control](const connection_status& st) { control->on_status(st); };
  spec.request_stop = [control = control](const std::string& reason, int code) {
    control->request_stop(reason, code);
  };
  spec.on_shut_down = [control = control] { control->mark_shut_down(); };
  if (transport)
    spec.make_connection = transport->make_connection;
  supervisor = detail::spawn_supervisor(*sys, std::move(spec));
  caf::scoped_actor self{*sys};
  self->request(supervisor, 10s, get_atom::value)
    .receive(
      [&](caf::actor& conn, caf::actor& cmds, caf::actor& health_actor) {
        aggregator = std::move(health_actor);
        start_api(std::move(conn), std::move(cmds));
      },
      [&](caf::error& e) { log->critical("supervisor did not start: {}", sys->render(e)); });
}

void client::impl::start_api(caf::actor conn, caf::actor commands) {
  {
    std::lock_guard<std::mutex> guard{mx};
    connection = conn;
  }
  detail::runtime_api_spec spec;
  spec.origin = origin;
  spec.supervisor = supervisor;
  spec.connection = std::move(conn);
  spec.commands = std::move(commands);
  spec.health = aggregator;
  spec.chat_min_delay = cfg.chat_min_delay;
  spec.chat_jitter = cfg.chat_jitter;
  spec.request_stop = [control = control](const std::string& reason, int code) {
    control->request_stop(reason, code);
  };
  spec.log = log;
  api = detail::spawn_runtime_api(*sys, std::move(spec));
}

detail::handler_spec client::impl::make_spec() {
  detail::handler_spec spec;
  spec.stats = std::make_shared<detail::handler_stats>();
  spec.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
    std::chrono::duration<double>(cfg.handler_timeout));
  spec.log = log;
  return spec;
}

void client::impl::add(detail::handler_registration reg) {
  // Answered once the route exists: events after on() returns reach the handler.
  if (auto label = ask<std::string>(10s, add_atom::value, std::move(reg)); !label)
    log->error("cannot add handler: {}", describe(label.error()));
}

void client::impl::stop_actors() {
  {
    std::lock_guard<std::mutex> guard{mx};
    if (actors_stopped)
      return;
    actors_stopped = true;
  }
  caf::scoped_actor self{*sys};
  self->request(supervisor, 10s, stop_atom::value)
    .receive([&](std::vector<std::string>& names) { stuck = std::move(names); },
             [&](caf::error& e) { stuck.push_back("supervisor: " + sys->render(e)); });
  // The supervisor goes whatever its children did (health and probe with it).
  self->monitor(supervisor);
  self->send_exit(supervisor, caf::exit_reason::user_shutdown);
  self->receive([](caf::down_msg&) {}, caf::after(5s) >> [&] { stuck.push_back("supervisor"); });
  if (!stuck.empty()) {
    std::string names;
    for (auto& n : stuck)
      names += (names.empty() ? "" : ", ") + n;
    log->error("not stopped (still running user code): {}", names);
  }
  // A detached actor's thread ends only once nothing references the actor,
  // and the actor system waits for that thread.
  supervisor = nullptr;
  aggregator = nullptr;
  api = nullptr;  // it quit with the supervisor
  std::lock_guard<std::mutex> guard{mx};
  connection = nullptr;
}

void client::impl::send_out(std::string subject, std::string data, bool command) {
  if (gate->publish(subject, data, command))
    return;
  std::lock_guard<std::mutex> guard{mx};
  if (connection) {
    if (command)
      caf::anon_send(connection, command_atom::value, std::move(subject), std::move(data));
    else
      caf::anon_send(connection, publish_atom::value, std::move(subject), std::move(data));
    return;
  }
  detail::bump(conn_stats->publish_errors);
  std::uint64_t suppressed = 0;
  if (unsent_limiter.admit("unsent", suppressed))
    log->error("cannot publish to {}: the client's runtime has stopped{}", subject,
               suppressed ? fmt::format(" ({} more failures suppressed)", suppressed) : "");
}

// -- client ---------------------------------------------------------------------

client::client(kryten_config config, std::shared_ptr<spdlog::logger> logger)
  : client(std::move(config), std::move(logger), nullptr) {}

client::client(kryten_config config, std::shared_ptr<spdlog::logger> logger,
               std::shared_ptr<detail::transport> transport)
  : impl_(std::make_unique<impl>(std::move(config), std::move(logger))) {
  impl_->transport = std::move(transport);
  impl_->own_cfg = make_system_config();
  impl_->own_sys = std::make_unique<caf::actor_system>(*impl_->own_cfg);
  impl_->sys = impl_->own_sys.get();
  impl_->start_actors();
}

client::client(caf::actor_system& system, kryten_config config,
               std::shared_ptr<spdlog::logger> logger)
  : impl_(std::make_unique<impl>(std::move(config), std::move(logger))) {
  impl_->sys = &system;
  impl_->embedded = true;
  impl_->start_actors();
}

client::~client() {
  disconnect("Client destroyed");
  impl_->control->await_shut_down(impl_->shutdown_budget());
  impl_->stop_actors();
  impl_->registry.reset();
  if (!impl_->stuck.empty()) {
    // A handler that never returns keeps its thread; destroying the actor
    // system would wait for it forever. Leave the system to the OS. (An
    // embedded client's caller owns the system: its destructor will wait.)
    impl_->log->error("leaving the actor system behind: user code is stuck in {}",
                      impl_->stuck.front());
    // Its configuration too: the system's threads read it until they end.
    if (impl_->own_sys) {
      (void) impl_->own_sys.release();
      (void) impl_->own_cfg.release();
    }
  }
  impl_->own_sys.reset();  // waits for every actor of its own
}

void client::connect() {
  auto& s = *impl_;
  {
    std::lock_guard<std::mutex> guard{s.control->mx};
    if (s.control->disconnected)
      throw usage_error("connect() after disconnect(): a client is single-use; make a new one");
    if (s.control->connected_once)
      throw usage_error("connect(): already connected");
  }
  {
    std::lock_guard<std::mutex> guard{s.mx};
    if (s.connecting)
      throw usage_error("connect(): another connect() is under way");
    s.connecting = true;
  }
  struct done_connecting {
    impl& s;
    ~done_connecting() {
      std::lock_guard<std::mutex> guard{s.mx};
      s.connecting = false;
    }
  } guard_connecting{s};
  // The HTTP probe listens before NATS is up: /readyz says 503 while connecting.
  std::string probe_err = "no answer from the supervisor";
  {
    caf::scoped_actor self{*s.sys};
    self->request(s.supervisor, 10s, detail::http_probe_atom::value)
      .receive([&](std::string& e) { probe_err = std::move(e); },
               [&](caf::error& e) { probe_err = s.sys->render(e); });
  }
  if (!probe_err.empty()) {
    s.log->error("{}", probe_err);
    throw connect_error(probe_err);
  }
  auto timeout = seconds(s.cfg.nats.connect_timeout * s.cfg.nats.servers.size() + 20.0);
  std::string err = "no answer from the supervisor";
  {
    caf::scoped_actor self{*s.sys};
    self->request(s.supervisor, timeout, connect_atom::value)
      .receive([&](std::string& e) { err = std::move(e); },
               [&](caf::error& e) { err = s.sys->render(e); });
  }
  if (!err.empty()) {
    // Nothing stays connected (the supervisor closed what it opened): a
    // later connect() starts afresh.
    s.log->error("{}", err);
    throw connect_error(err);
  }
  caf::anon_send(s.aggregator, connect_atom::value);
  std::lock_guard<std::mutex> guard{s.control->mx};
  s.control->connected_once = true;
}

int client::run() {
  auto& s = *impl_;
  std::unique_ptr<detail::signal_watcher> signals;
  if (!s.embedded)
    signals = std::make_unique<detail::signal_watcher>([control = s.control, log = s.log](int sig) {
      log->info("received {}; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      control->request_stop(sig == SIGTERM ? "Received SIGTERM" : "Received SIGINT", 0);
    });
  // After the signal handlers are in: from here on SIGINT/SIGTERM stop cleanly.
  s.log->info("running until stopped{}", s.embedded ? "" : " (SIGINT/SIGTERM)");
  std::string reason;
  int code = 0;
  {
    std::unique_lock<std::mutex> guard{s.control->mx};
    s.control->cv.wait(guard, [&] { return s.control->stop_requested || s.control->disconnected; });
    reason = s.control->stop_reason;
    code = s.control->exit_code;
  }
  disconnect(reason.empty() ? "Normal shutdown" : reason);
  s.control->await_shut_down(s.shutdown_budget());  // one a handler began, too
  if (!s.embedded) {
    s.stop_actors();
    if (!s.stuck.empty()) {
      // Shutdown was published and NATS closed; a stuck handler must not keep
      // the process alive.
      s.log->critical("exiting with stuck handlers");
      s.log->flush();
      std::_Exit(code);
    }
  }
  return code;
}

void client::stop(std::string reason) {
  impl_->control->request_stop(reason, 0);
}

void client::disconnect(std::string reason) {
  auto& s = *impl_;
  {
    std::lock_guard<std::mutex> guard{s.control->mx};
    if (s.control->disconnected || s.actors_stopped)
      return;
    s.control->disconnected = true;
    s.control->cv.notify_all();
  }
  caf::anon_send(s.aggregator, close_atom::value);
  if (detail::inside_handler()) {
    // From a handler: the drain waits for this very handler, so do not wait
    // for the drain. The shutdown goes on once the handler returns.
    s.log->info("disconnect() from a handler: shutting down once it returns");
    caf::anon_send(s.supervisor, shutdown_atom::value, reason);
    return;
  }
  caf::scoped_actor self{*s.sys};
  self->request(s.supervisor, seconds(s.shutdown_budget()), shutdown_atom::value, reason)
    .receive([](bool) {},
             [&](caf::error& e) { s.log->error("shutdown: {}", s.sys->render(e)); });
}

bool client::is_connected() const {
  std::lock_guard<std::mutex> guard{impl_->control->mx};
  return impl_->control->state == connection_state::connected && !impl_->control->disconnected;
}

void client::on_callbacks(std::string_view event_name, event_callbacks callbacks,
                          handler_filter filter) {
  auto& s = *impl_;
  detail::handler_registration reg;
  reg.event_name = to_lower(event_name);
  reg.filter = std::move(filter);
  reg.spec = s.make_spec();
  reg.spec.callbacks = std::move(callbacks);
  s.add(std::move(reg));
}

void client::on_actor(std::string_view event_name, caf::actor handler, handler_filter filter) {
  auto& s = *impl_;
  detail::handler_registration reg;
  reg.event_name = to_lower(event_name);
  reg.filter = std::move(filter);
  reg.spec = s.make_spec();
  reg.target = std::move(handler);
  s.add(std::move(reg));
}

void client::on_actor(std::string_view event_name, actor_factory factory, handler_filter filter) {
  if (!factory)
    throw usage_error("on_actor(): an empty factory");
  auto& s = *impl_;
  detail::handler_registration reg;
  reg.event_name = to_lower(event_name);
  reg.filter = std::move(filter);
  reg.spec = s.make_spec();
  reg.spec.factory = std::move(factory);
  s.add(std::move(reg));
}

void client::on_actor(std::string_view event_name, runtime_actor_factory factory,
                      handler_filter filter) {
  if (!factory)
    throw usage_error("on_actor(): an empty factory");
  on_actor(event_name,
           actor_factory{[factory = std::move(factory), rt = runtime()](caf::actor_system& sys) {
             return factory(sys, rt);
           }},
           std::move(filter));
}

void client::subscribe(std::string_view subject, std::function<void(const bus_message&)> cb) {
  auto& s = *impl_;
  detail::handler_registration reg;
  reg.subject = std::string{subject};
  reg.spec = s.make_spec();
  reg.spec.callbacks.bus = std::move(cb);
  s.add(std::move(reg));
}

void client::on_group_restart(std::function<void(const nlohmann::json&)> callback) {
  caf::anon_send(impl_->supervisor, restart_atom::value,
                 detail::restart_callback{std::move(callback)});
}

void client::on_group_restart(caf::actor listener) {
  caf::anon_send(impl_->supervisor, restart_atom::value, std::move(listener));
}

void client::publish_group_restart(const std::string& reason, double delay_seconds,
                                   const std::string& initiator) {
  auto notice = make_restart_notice(initiator.empty() ? impl_->identity.service : initiator,
                                    reason, delay_seconds);
  publish(subjects::group_restart, notice);
}

void client::set_metadata(const std::string& key, const nlohmann::json& value) {
  caf::anon_send(impl_->api, metadata_atom::value, metadata_entry{key, value});
}

std::string client::send_command(std::string_view service, std::string_view type,
                                 const nlohmann::json& body, std::optional<std::string> domain,
                                 std::optional<std::string> channel) {
  auto& s = *impl_;
  if (service.empty() || type.empty()) {
    s.log->error("send_command '{}' to '{}': a command needs a service and a name", type,
                 service);
    return {};
  }
  outgoing_command cmd{std::string{service}, std::string{type}, body,
                       domain.value_or(std::string{}), channel.value_or(std::string{})};
  // Not a request: the caller (often a handler) does not wait for the runtime.
  auto id = detail::uuid4();
  s.send_out(subjects::command(cmd.service), detail::command_body(s.origin, cmd, id).dump(), true);
  return id;
}

void client::on_command(std::string command, command_handler handler) {
  // Waits for the registration, so a request sent after the call is served by it.
  auto& s = *impl_;
  auto name = command;
  if (auto ok = s.ask<bool>(5s, subscribe_atom::value, std::move(command), std::move(handler));
      !ok)
    s.log->error("on_command {}: {}", name, describe(ok.error()));
}

void client::publish(std::string_view subject, std::string_view data) {
  if (subject.empty()) {
    impl_->log->error("publish: an empty subject (message dropped)");
    return;
  }
  impl_->send_out(std::string{subject}, std::string{data}, false);
}

void client::publish(std::string_view subject, const nlohmann::json& body) {
  publish(subject, std::string_view{body.dump()});
}

nlohmann::json client::request(std::string_view subject, const nlohmann::json& body,
                               std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  auto reply = s.ask<std::string>(timeout + 2s, request_atom::value, std::string{subject},
                                  body.dump(), caf::timespan{timeout});
  if (!reply)
    throw request_error("request to " + std::string{subject} + " failed: "
                          + describe(reply.error()),
                        code_of(reply.error()).value_or(error_code::timeout));
  return nlohmann::json::parse(*reply);
}

kv_bucket client::kv(std::string_view bucket) {
  kv_bucket_config cfg;
  cfg.bucket = std::string{bucket};
  cfg.create = false;
  return kv(cfg);
}

kv_bucket client::kv(const kv_bucket_config& config) {
  auto& s = *impl_;
  auto opened = s.ask<bool>(12s, kv_open_atom::value, config);
  if (!opened)
    throw kv_error("kv open " + config.bucket + ": " + describe(opened.error()),
                   code_of(opened.error()).value_or(error_code::timeout));
  return kv_bucket{*s.sys, runtime(), config.bucket, s.log};
}

health_status client::health() const {
  if (auto h = impl_->ask_health(5s))
    return std::move(*h);
  health_status h;  // the runtime's actors are gone or stuck
  h.service = impl_->identity.service;
  h.state = "error";
  return h;
}

runtime_actor client::runtime() const {
  return impl_->api;
}

void client::add_health_details(std::function<nlohmann::json()> callback) {
  caf::anon_send(impl_->aggregator, add_atom::value, detail::details_callback{std::move(callback)});
}

prometheus::Registry& client::metrics_registry() {
  return *impl_->custom_metrics;
}

const kryten_config& client::config() const {
  return impl_->cfg;
}

const std::string& client::instance_id() const {
  return impl_->identity.instance_id;
}

std::shared_ptr<spdlog::logger> client::logger() const {
  return impl_->log;
}

caf::actor_system& client::system() {
  return *impl_->sys;
}

}  // namespace kryten
