// Self-tests for the integration-test support: nats_server, bus_client,
// child_process, free_port and wait_until.
#include <catch2/catch.hpp>

#include <csignal>
#include <future>
#include <set>
#include <stdexcept>

#include "support/nats_server.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using kryten::test::bus_client;
using kryten::test::child_process;
using kryten::test::nats_server;
using kryten::test::time_of;

TEST_CASE("free_port returns usable loopback ports", "[support]") {
  std::set<int> ports;
  for (int i = 0; i < 5; ++i) {
    int port = kryten::test::free_port();
    CHECK(port > 0);
    CHECK(port < 65536);
    ports.insert(port);
  }
  CHECK(ports.size() > 1);
}

TEST_CASE("wait_until polls until the condition holds or the deadline passes", "[support]") {
  int calls = 0;
  CHECK(kryten::test::wait_until([&] { return ++calls >= 3; }, 1000ms, 1ms));
  CHECK(calls == 3);

  bool result = true;
  auto took = time_of([&] { result = kryten::test::wait_until([] { return false; }, 50ms); });
  CHECK_FALSE(result);
  CHECK(took >= 50ms);
  CHECK(took < 1000ms);
}

TEST_CASE("child_process reports exit codes, signals and output", "[support][process]") {
  SECTION("exit code") {
    child_process p({"sh", "-c", "exit 3"});
    CHECK(p.pid() > 0);
    CHECK(p.wait_for_exit(5s) == std::optional<int>(3));
    CHECK_FALSE(p.running());
  }
  SECTION("killed by a signal gives 128 + signal") {
    child_process p({"sleep", "10"});
    CHECK(p.running());
    CHECK_FALSE(p.wait_for_exit(20ms).has_value());
    p.signal(SIGTERM);
    CHECK(p.wait_for_exit(5s) == std::optional<int>(128 + SIGTERM));
    CHECK_FALSE(p.running());
  }
  SECTION("stdout, stderr and extra environment") {
    child_process p({"sh", "-c", "echo \"out $KRYTEN_SUPPORT_VAR\"; echo err >&2"},
                    {{"KRYTEN_SUPPORT_VAR", "hello"}});
    REQUIRE(p.wait_for_exit(5s) == std::optional<int>(0));
    CHECK(p.stdout_text() == "out hello\n");
    CHECK(p.stderr_text() == "err\n");
  }
  SECTION("a missing executable exits with 127") {
    child_process p({"kryten-no-such-program-xyz"});
    CHECK(p.wait_for_exit(5s) == std::optional<int>(127));
    CHECK(p.stderr_text().find("kryten-no-such-program-xyz") != std::string::npos);
  }
  SECTION("the destructor kills a running child") {
    int pid = 0;
    {
      child_process p({"sleep", "30"});
      pid = p.pid();
      REQUIRE(p.running());
    }
    // Reaped by the destructor: the pid no longer names our child.
    CHECK(::kill(pid, 0) != 0);
  }
}

TEST_CASE("nats_server and bus_client: publish and subscribe", "[support][nats]") {
  nats_server server;
  REQUIRE(server.running());
  CHECK(server.url() == "nats://127.0.0.1:" + std::to_string(server.port()));

  bus_client watcher(server.url());
  watcher.subscribe("test.>");
  bus_client sender(server.url());
  sender.publish("test.a", "hello");
  sender.publish("test.b", std::string("bin\0ary", 7));
  sender.publish("test.a", "again");
  sender.flush();

  auto second = watcher.wait_for("test.a", 5s, 2);
  REQUIRE(second);
  CHECK(second->data == "again");
  auto bin = watcher.wait_for("test.b", 5s);
  REQUIRE(bin);
  CHECK(bin->data == std::string("bin\0ary", 7));
  CHECK(bin->reply.empty());

  CHECK(watcher.messages().size() == 3);
  auto on_a = watcher.messages_on("test.a");
  REQUIRE(on_a.size() == 2);
  CHECK(on_a[0].data == "hello");
  CHECK(watcher.messages_on("test").empty());

  // A missing message times out within its deadline.
  auto took = time_of([&] { CHECK_FALSE(watcher.wait_for("test.c", 100ms)); });
  CHECK(took < 2s);

  watcher.clear();
  CHECK(watcher.messages().empty());
}

TEST_CASE("bus_client requests", "[support][nats]") {
  nats_server server;
  bus_client client(server.url());

  SECTION("no responder returns nullopt quickly") {
    std::optional<std::string> reply = std::string("unset");
    auto took = time_of([&] { reply = client.request("nobody.home", "ping", 5s); });
    CHECK_FALSE(reply);
    CHECK(took < 2s);
  }
  SECTION("a responder's reply is returned") {
    bus_client responder(server.url());
    responder.subscribe("svc.echo");
    auto pending = std::async(std::launch::async,
                              [&] { return client.request("svc.echo", "ping", 5s); });
    auto req = responder.wait_for("svc.echo", 5s);
    REQUIRE(req);
    CHECK(req->data == "ping");
    REQUIRE_FALSE(req->reply.empty());
    responder.publish(req->reply, "pong:" + req->data);
    responder.flush();
    CHECK(pending.get() == std::optional<std::string>("pong:ping"));
  }
}

TEST_CASE("bus_client survives a server restart", "[support][nats]") {
  nats_server server;
  const int port = server.port();
  bus_client watcher(server.url());
  watcher.subscribe("restart.>");
  bus_client sender(server.url());

  sender.publish("restart.before", "1");
  REQUIRE(watcher.wait_for("restart.before", 5s));

  server.stop();
  CHECK_FALSE(server.running());
  server.start();
  REQUIRE(server.running());
  CHECK(server.port() == port);

  // Both clients reconnect on their own; the watcher's subscription is re-sent
  // before it reports connected. (A publish buffered while reconnecting could
  // reach the server before the watcher is back, so wait for both.)
  REQUIRE(watcher.wait_connected(10s));
  REQUIRE(sender.wait_connected(10s));
  sender.publish("restart.after", "2");
  auto after = watcher.wait_for("restart.after", 10s);
  REQUIRE(after);
  CHECK(after->data == "2");
  CHECK(watcher.messages_on("restart.before").size() == 1);
}

TEST_CASE("nats_server with authentication", "[support][nats]") {
  SECTION("user and password") {
    nats_server::options opts;
    opts.user = "kryten";
    opts.password = "s3cret";
    nats_server server(opts);

    bus_client good(server.url(), "kryten", "s3cret");
    good.subscribe("auth.x");
    good.publish("auth.x", "ok");
    REQUIRE(good.wait_for("auth.x", 5s));

    CHECK_THROWS_AS(bus_client(server.url(), "kryten", "wrong"), std::runtime_error);
    CHECK_THROWS_AS(bus_client(server.url()), std::runtime_error);
  }
  SECTION("token") {
    nats_server::options opts;
    opts.token = "t0ken";
    nats_server server(opts);

    bus_client good(server.url(), "", "", "t0ken");
    good.subscribe("auth.y");
    good.publish("auth.y", "ok");
    REQUIRE(good.wait_for("auth.y", 5s));

    CHECK_THROWS_AS(bus_client(server.url(), "", "", "nope"), std::runtime_error);
  }
}

TEST_CASE("nats_server: independent servers, stop and start are idempotent", "[support][nats]") {
  nats_server first;
  nats_server second;
  CHECK(second.port() != first.port());
  CHECK(first.running());
  CHECK(second.running());

  second.start();  // already running: no-op
  CHECK(second.running());
  second.stop();
  second.stop();
  CHECK_FALSE(second.running());
  CHECK(first.running());
}

TEST_CASE("nats_server with extra configuration: max_payload", "[support][nats]") {
  nats_server::options opts;
  opts.config = "max_payload: 600\n";
  nats_server server(opts);
  bus_client client(server.url());
  client.subscribe("limit.x");
  client.publish("limit.x", std::string(500, 'a'));
  REQUIRE(client.wait_for("limit.x", 5s));
  // cnats refuses a payload over the server's limit before sending anything.
  CHECK_THROWS_AS(client.publish("limit.x", std::string(700, 'b')), std::runtime_error);

  // The limit (and the flags given beside the file) hold after a restart.
  const int port = server.port();
  server.stop();
  server.start();
  CHECK(server.port() == port);
  REQUIRE(client.wait_connected(10s));
  CHECK_THROWS_AS(client.publish("limit.x", std::string(700, 'c')), std::runtime_error);
  client.publish("limit.x", std::string(500, 'd'));
  auto second = client.wait_for("limit.x", 5s, 2);
  REQUIRE(second);
  CHECK(second->data == std::string(500, 'd'));
}
