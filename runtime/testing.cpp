#include "kryten/testing.hpp"

#include <atomic>
#include <mutex>
#include <thread>

#include <caf/all.hpp>

#include "actors/loopback_connection_actor.hpp"
#include "actors/supervisor_actor.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"
#include "runtime/ask.hpp"

namespace kryten::testing {

using json = nlohmann::json;

nlohmann::json sent_message::json() const {
  return json::parse(data, nullptr, false);
}

namespace {

kryten_config default_config(const std::string& service, const std::string& channel,
                             const std::string& domain) {
  kryten_config cfg;
  cfg.nats.servers = {"nats://loopback:4222"};  // never dialled
  cfg.channels = {{domain, channel}};
  service_config svc;
  svc.name = service;
  svc.heartbeat_interval = 5;
  cfg.service = svc;
  return cfg;
}

sent_message to_sent(const bus_message& m) {
  return {m.subject, m.data, m.reply};
}

}  // namespace

struct test_service::impl {
  std::shared_ptr<detail::loopback_bus> bus = std::make_shared<detail::loopback_bus>();
  // Set by the supervisor's thread while the client is made.
  std::mutex mx;
  caf::actor connection;
  std::atomic<std::uint64_t> next_inbox{1};
  std::unique_ptr<kryten::client> client;
  std::string service;
  std::vector<caf::actor> owned;

  caf::actor conn() {
    std::lock_guard<std::mutex> guard{mx};
    return connection;
  }

  void send_in(bus_message m) {
    caf::anon_send(conn(), inject_atom::value, std::move(m));
  }

  template <class T, class... Ts>
  T ask(const std::string& what, Ts&&... xs) {
    auto r = detail::ask<T>(client->system(), conn(), std::chrono::seconds(5),
                            std::forward<Ts>(xs)...);
    if (!r)
      throw kv_error(what + ": " + describe(r.error()),
                     code_of(r.error()).value_or(error_code::timeout));
    return std::move(*r);
  }
};

test_service::test_service(const std::string& service, const std::string& channel,
                           const std::string& domain)
  : test_service(default_config(service, channel, domain)) {}

test_service::test_service(kryten_config config) : impl_(std::make_unique<impl>()) {
  auto transport = std::make_shared<detail::transport>();
  transport->make_connection = [i = impl_.get()](caf::actor_system& sys,
                                                 detail::connection_spec spec) {
    auto actor = detail::spawn_loopback_connection_actor(sys, std::move(spec), i->bus);
    std::lock_guard<std::mutex> guard{i->mx};
    i->connection = actor;
    return actor;
  };
  impl_->service = config.service_name();
  impl_->client.reset(new kryten::client(std::move(config), nullptr, std::move(transport)));
}

test_service::~test_service() {
  stop();
  for (auto& a : impl_->owned)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

void test_service::own(caf::actor actor) {
  impl_->owned.push_back(std::move(actor));
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

kryten::client& test_service::client() {
  return *impl_->client;
}

void test_service::start() {
  impl_->client->connect();
}

void test_service::stop() {
  impl_->client->disconnect();
}

void test_service::inject(const std::string& event_name, const json& payload,
                          const std::string& channel, const std::string& domain) {
  const auto& first = impl_->client->config().channels.front();
  auto ch = channel.empty() ? first.channel : channel;
  json raw{{"event_name", event_name},
           {"payload", payload},
           {"channel", ch},
           {"domain", domain.empty() ? first.domain : domain},
           {"timestamp", detail::iso8601_now()}};
  impl_->send_in({subjects::event(ch, event_name), raw.dump(), ""});
}

void test_service::deliver(const std::string& subject, const std::string& data) {
  impl_->send_in({subject, data, ""});
}

std::optional<json> test_service::command(const std::string& name, const json& args,
                                          ms timeout) {
  auto inbox = "_INBOX.test." + std::to_string(impl_->next_inbox++);
  json body{{"command", name}, {"args", args}, {"meta", {{"source", "kryten-testing"}}}};
  impl_->send_in({subjects::command(impl_->service), body.dump(), inbox});
  auto reply = impl_->bus->wait_for(inbox, timeout);
  if (!reply)
    return std::nullopt;
  return json::parse(reply->data, nullptr, false);
}

std::vector<sent_message> test_service::sent(const std::string& pattern) const {
  std::vector<sent_message> out;
  for (auto& m : impl_->bus->sent(pattern))
    out.push_back(to_sent(m));
  return out;
}

std::optional<sent_message> test_service::wait_for(const std::string& pattern, ms timeout,
                                                   std::size_t nth) const {
  auto m = impl_->bus->wait_for(pattern, timeout, nth);
  if (!m)
    return std::nullopt;
  return to_sent(*m);
}

std::optional<json> test_service::wait_for_command(const std::string& service, ms timeout,
                                                   std::size_t nth) const {
  auto m = wait_for(subjects::command(service), timeout, nth);
  if (!m)
    return std::nullopt;
  return m->json();
}

void test_service::clear_sent() {
  impl_->bus->clear();
}

void test_service::answer(const std::string& pattern,
                          std::function<std::optional<json>(const json&)> reply) {
  impl_->bus->answer(pattern,
                     [reply = std::move(reply)](const bus_message& m) -> std::optional<std::string> {
                       auto r = reply(json::parse(m.data, nullptr, false));
                       if (!r)
                         return std::nullopt;
                       return r->dump();
                     });
}

void test_service::answer_command(const std::string& service, const std::string& name,
                                  std::function<json(const json&)> data) {
  answer(subjects::command(service),
         [service, name, data = std::move(data)](const json& req) -> std::optional<json> {
           if (!req.is_object() || req.value("command", "") != name)
             return std::nullopt;
           return json{{"service", service},
                       {"command", name},
                       {"success", true},
                       {"data", data(req.value("args", json::object()))}};
         });
}

std::optional<json> test_service::wait_for_lifecycle(const std::string& kind, ms timeout,
                                                     std::size_t nth) const {
  auto m = wait_for(subjects::lifecycle(impl_->service, kind), timeout, nth);
  if (!m)
    return std::nullopt;
  return m->json();
}

void test_service::robot_startup() {
  json robot{{"service", "robot"}, {"version", "1.8.0"}, {"hostname", "kryten-robot"},
             {"timestamp", detail::iso8601_now()}};
  deliver(std::string{subjects::robot_startup}, robot.dump());
}

void test_service::discovery_poll() {
  deliver(std::string{subjects::discovery_poll}, "{}");
}

void test_service::group_restart(const json& notice) {
  deliver(std::string{subjects::group_restart}, notice.dump());
}

void test_service::disconnect_bus(const std::string& reason) {
  caf::anon_send(impl_->conn(), nats_event_atom::value,
                 connection_status{connection_state::disconnected, "loopback", reason,
                                   detail::unix_ns()});
}

void test_service::reconnect_bus() {
  caf::anon_send(impl_->conn(), nats_event_atom::value,
                 connection_status{connection_state::connected, "loopback", "",
                                   detail::unix_ns()});
}

void test_service::kv_create(const std::string& bucket) {
  kv_bucket_config cfg;
  cfg.bucket = bucket;
  impl_->ask<bool>("kv create " + bucket, kv_open_atom::value, cfg);
}

void test_service::kv_put(const std::string& bucket, const std::string& key, const json& value) {
  impl_->ask<std::uint64_t>("kv put " + bucket + "/" + key, kv_put_atom::value, bucket, key,
                            kv_json_value(value));
}

std::optional<json> test_service::kv_get(const std::string& bucket, const std::string& key) {
  auto e = impl_->ask<kv_entry>("kv get " + bucket + "/" + key, kv_get_atom::value, bucket, key);
  if (!e.found)
    return std::nullopt;
  return e.json();
}

}  // namespace kryten::testing
