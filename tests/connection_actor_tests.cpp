// The connection actor on its own against a real nats-server: its RAII owner
// closes the connection and subscriptions on any exit, a crash included
// (run under AddressSanitizer: no use of freed state on the way out).
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

#include <caf/all.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "actors/connection_actor.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"

using namespace std::chrono_literals;
using kryten::test::bus_client;
using kryten::test::nats_server;
using kryten::test::wait_until;

namespace {

/// Whether nobody listens on `subject` any more: the server answers a
/// request at once with "no responders" instead of letting it time out.
bool nobody_listens(bus_client& bus, const std::string& subject) {
  auto start = std::chrono::steady_clock::now();
  auto reply = bus.request(subject, "{}", 1s);
  return !reply && std::chrono::steady_clock::now() - start < 500ms;
}

}  // namespace

TEST_CASE("a connection actor that dies abnormally while connected closes NATS",
          "[connection][lifetime]") {
  nats_server server;
  caf::actor_system_config cfg;
  kryten::add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto stats = std::make_shared<kryten::detail::subscription_stats>();
  kryten::detail::connection_spec spec;
  spec.nats.servers = {server.url()};
  spec.nats.connect_timeout = 2;
  spec.channels = {{"cytu.be", "lounge"}};
  spec.client_name = "conn-test";
  spec.registry = std::make_shared<kryten::detail::handler_registry>();
  spec.stats = std::make_shared<kryten::detail::connection_stats>();
  spec.channel_stats = {stats};
  spec.log = std::make_shared<spdlog::logger>("conn-test",
                                              std::make_shared<spdlog::sinks::null_sink_mt>());
  auto conn = kryten::detail::spawn_connection_actor(sys, spec);
  {
    caf::scoped_actor self{sys};
    std::string err = "no answer";
    self->request(conn, 10s, kryten::connect_atom::value)
      .receive([&](std::string& e) { err = e; }, [&](caf::error& e) { err = sys.render(e); });
    REQUIRE(err.empty());
  }
  bus_client bus(server.url());
  bus.publish(kryten::test::lounge_chat, kryten::test::chat_event("alice", "hi"));
  bus.flush();
  REQUIRE(wait_until([&] { return kryten::detail::read(stats->received) == 1; }, 5s));
  CHECK_FALSE(nobody_listens(bus, kryten::test::lounge_chat));  // the actor's subscription

  {
    caf::scoped_actor self{sys};
    self->monitor(conn);
    self->send_exit(conn, caf::sec::runtime_error);  // a crash, not a graceful close
    bool down = false;
    self->receive([&](caf::down_msg& d) { down = d.reason == caf::sec::runtime_error; },
                  caf::after(5s) >> [] {});
    REQUIRE(down);
  }
  conn = nullptr;
  REQUIRE(wait_until([&] { return nobody_listens(bus, kryten::test::lounge_chat); }, 5s));
}
