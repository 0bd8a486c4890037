// Users' actors composing with the runtime through the typed protocol alone
// (kryten/runtime_protocol.hpp): no reference to the client inside an actor.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "kryten/client.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"
#include "support/timestamps.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::chat_event;
using kryten::test::lounge_chat;
using kryten::test::make_config;
using kryten::test::nats_server;
using kryten::test::recorder;
using kryten::test::wait_until;

namespace {

/// The greeters' answer to `m`: a say command back to its channel.
kryten::outgoing_command greeting_for(const kryten::chat_message& m) {
  return {"robot", "say", {{"message", "hello " + m.username}}, m.domain, m.channel};
}

/// Answers "!hello" by asking the runtime to send the robot a say command,
/// and records the request id the runtime answered with.
caf::behavior greeter(caf::event_based_actor* self, kryten::runtime_actor rt,
                      recorder<std::string>* ids) {
  return {
    [=](const kryten::chat_message& m) {
      if (m.message != "!hello")
        return;
      self->request(rt, 5s, kryten::command_atom::value, greeting_for(m))
        .then([ids](const std::string& id) { ids->add(id); });
    },
  };
}

/// Answers "!hello" with a say command it does not wait for, under a request
/// id of its own (a UUID): the fire-and-forget form of command_atom.
caf::behavior unanswered_greeter(caf::event_based_actor* self, kryten::runtime_actor rt,
                                 std::string request_id) {
  return {
    [=](const kryten::chat_message& m) {
      if (m.message != "!hello")
        return;
      self->send(rt, kryten::command_atom::value, greeting_for(m), request_id);
    },
  };
}

/// Serves "echo": the args back, or a failure (`failure`) when args.fail is
/// set. (CAF 0.17 cannot spawn a function actor without arguments.)
caf::behavior echo_command(caf::event_based_actor*, std::string failure) {
  return {
    [failure](const kryten::command_request& req) {
      if (req.args.value("fail", false))
        return kryten::command_result::failure(failure);
      return kryten::command_result::ok({{"echo", req.args}});
    },
  };
}

/// Records what it is sent: bus messages and chat events.
caf::behavior listener(caf::event_based_actor*, recorder<std::string>* seen) {
  return {
    [seen](const kryten::bus_message& m) { seen->add(m.subject + " " + m.data); },
    [seen](const kryten::chat_message& m) { seen->add("chat " + m.message); },
  };
}

/// Runs a service "proto" whose chat handler is the actor `factory` makes,
/// says "!hello" as `user`, and returns the command it sends the robot
/// (with `ids`: once the actor has recorded the request id it was answered).
json command_after_hello(const kryten::runtime_actor_factory& factory, const std::string& user,
                         recorder<std::string>* ids = nullptr) {
  nats_server server;
  bus_client observer{server.url()};
  observer.subscribe("kryten.robot.command");
  kryten::client client{make_config(server.url(), "proto")};
  client.on_actor("chatmsg", factory);
  client.connect();
  observer.publish(lounge_chat, chat_event(user, "!hello"));
  auto cmd = observer.wait_for("kryten.robot.command", 5s);
  REQUIRE(cmd);
  if (ids)
    REQUIRE(ids->wait_size(1));
  client.disconnect();
  return json::parse(cmd->data);
}

/// Asks the runtime from the test's thread, as an actor would, and waits.
template <class T, class... Ts>
caf::expected<T> ask(kryten::client& c, Ts&&... xs) {
  caf::expected<T> out{caf::sec::request_timeout};
  caf::scoped_actor self{c.system()};
  self->request(c.runtime(), 5s, std::forward<Ts>(xs)...)
    .receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
  return out;
}

bool answered_true(const caf::expected<bool>& x) {
  return x && *x;
}

}  // namespace

TEST_CASE("a user actor made by a factory sends commands through the runtime handle",
          "[protocol]") {
  recorder<std::string> ids;
  auto body = command_after_hello(
    [&ids](caf::actor_system& sys, kryten::runtime_actor rt) {
      return sys.spawn(greeter, rt, &ids);
    },
    "alice", &ids);
  CHECK(body["command"] == "say");
  CHECK(body["args"]["message"] == "hello alice");
  CHECK(body["meta"]["source"] == "proto");
  CHECK(body["meta"]["channel"] == "lounge");
  CHECK(body["meta"]["domain"] == "cytu.be");
  CHECK(kryten::test::is_iso8601(body["meta"]["timestamp"].get<std::string>()));
  REQUIRE(ids.size() == 1);
  CHECK(ids.items()[0] == body["meta"]["request_id"]);
  CHECK(kryten::test::is_uuid4(ids.items()[0]));
}

TEST_CASE("a user actor sends a command without waiting, under its own request id",
          "[protocol]") {
  const std::string id = "0b9a5c1e-2f4d-4c8a-9e1f-3a7b6c5d4e21";
  auto body = command_after_hello(
    [&id](caf::actor_system& sys, kryten::runtime_actor rt) {
      return sys.spawn(unanswered_greeter, rt, id);
    },
    "bob");
  CHECK(body["command"] == "say");
  CHECK(body["args"]["message"] == "hello bob");
  CHECK(body["meta"]["request_id"] == id);
  CHECK(body["meta"]["source"] == "proto");
}

TEST_CASE("an actor serves a command and its command_result is the reply", "[protocol]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "proto")};
  client.connect();
  auto echo = client.system().spawn(echo_command, std::string{"asked to fail"});
  REQUIRE(answered_true(ask<bool>(client, kryten::serve_atom::value, std::string{"echo"}, echo)));
  bus_client caller{server.url()};
  auto ok = caller.request("kryten.proto.command",
                           R"({"command":"echo","args":{"x":1}})", 5s);
  REQUIRE(ok);
  auto reply = json::parse(*ok);
  CHECK(reply["success"] == true);
  CHECK(reply["service"] == "proto");
  CHECK(reply["command"] == "echo");
  CHECK(reply["data"]["echo"]["x"] == 1);
  auto failed = caller.request("kryten.proto.command",
                               R"({"command":"echo","args":{"fail":true}})", 5s);
  REQUIRE(failed);
  reply = json::parse(*failed);
  CHECK(reply["success"] == false);
  CHECK(reply["error"] == "asked to fail");
  client.disconnect();
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}

TEST_CASE("an actor subscribes to a subject and unsubscribes by label", "[protocol]") {
  nats_server server;
  recorder<std::string> seen;
  kryten::client client{make_config(server.url(), "proto")};
  client.connect();
  auto actor = client.system().spawn(listener, &seen);
  auto label = ask<std::string>(client, kryten::subscribe_atom::value, std::string{"test.a"}, actor);
  REQUIRE(label);
  CHECK(label->rfind("test.a#", 0) == 0);
  bus_client bus{server.url()};
  bus.publish("test.a", "one");
  REQUIRE(seen.wait_size(1));
  CHECK(seen.items()[0] == "test.a one");

  REQUIRE(answered_true(ask<bool>(client, kryten::unsubscribe_atom::value, *label)));
  // A second subscription shows when the server has passed the first message on.
  REQUIRE(ask<std::string>(client, kryten::subscribe_atom::value, std::string{"test.b"}, actor));
  bus.publish("test.a", "two");
  bus.publish("test.b", "marker");
  REQUIRE(seen.wait_size(2));
  CHECK(seen.items() == std::vector<std::string>{"test.a one", "test.b marker"});

  auto again = ask<bool>(client, kryten::unsubscribe_atom::value, *label);
  REQUIRE_FALSE(again);
  CHECK(kryten::code_of(again.error()) == kryten::error_code::unknown_handler);
  client.disconnect();
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("an actor registered as a handler by the protocol gets events until removed",
          "[protocol]") {
  nats_server server;
  recorder<std::string> seen;
  kryten::client client{make_config(server.url(), "proto")};
  client.connect();
  auto actor = client.system().spawn(listener, &seen);
  auto label = ask<std::string>(client, kryten::add_atom::value, std::string{"chatMsg"}, actor,
                                kryten::handler_filter{"lounge", ""});
  REQUIRE(label);
  CHECK(label->rfind("chatmsg#", 0) == 0);
  auto health = ask<kryten::health_status>(client, kryten::health_atom::value);
  REQUIRE(health);
  CHECK(health->service == "proto");
  auto listed = [&](const kryten::health_status& h) {
    for (auto& hh : h.handlers)
      if (hh.label == *label)
        return true;
    return false;
  };
  CHECK(listed(*health));

  bus_client bus{server.url()};
  bus.publish(lounge_chat, chat_event("bob", "first"));
  REQUIRE(seen.wait_size(1));
  REQUIRE(answered_true(ask<bool>(client, kryten::remove_atom::value, *label)));
  health = ask<kryten::health_status>(client, kryten::health_atom::value);
  REQUIRE(health);
  CHECK_FALSE(listed(*health));
  CHECK_FALSE(health->degraded);
  // A handler added after the removal sees the next event; the removed one does not.
  recorder<std::string> later;
  client.on("chatmsg", [&](const kryten::chat_message& m) { later.add(m.message); });
  bus.publish(lounge_chat, chat_event("bob", "second"));
  REQUIRE(later.wait_size(1));
  CHECK(seen.items() == std::vector<std::string>{"chat first"});
  client.disconnect();
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("request/reply answers the asking actor and failures are kryten errors", "[protocol]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "proto")};
  client.connect();
  bus_client silent{server.url()};
  silent.subscribe("silent.subject");  // takes requests, never answers

  auto none = ask<std::string>(client, kryten::request_atom::value, std::string{"nobody.here"},
                               std::string{"{}"}, caf::timespan{1s});
  REQUIRE_FALSE(none);
  CHECK(kryten::code_of(none.error()) == kryten::error_code::no_responders);

  auto late = ask<std::string>(client, kryten::request_atom::value, std::string{"silent.subject"},
                               std::string{"{}"}, caf::timespan{200ms});
  REQUIRE_FALSE(late);
  CHECK(kryten::code_of(late.error()) == kryten::error_code::timeout);
  CHECK(kryten::describe(late.error()).find("silent.subject") != std::string::npos);

  auto bad = ask<std::string>(client, kryten::request_atom::value, std::string{},
                              std::string{"{}"}, caf::timespan{1s});
  REQUIRE_FALSE(bad);
  CHECK(kryten::code_of(bad.error()) == kryten::error_code::bad_input);

  auto pong = ask<std::string>(client, kryten::request_atom::value,
                               std::string{"kryten.proto.command"},
                               std::string{R"({"command":"ping"})"}, caf::timespan{2s});
  REQUIRE(pong);
  CHECK(json::parse(*pong)["data"]["pong"] == true);
  client.disconnect();
}

TEST_CASE("an actor asks for a graceful stop: run() returns 0", "[protocol]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "proto")};
  client.connect();
  auto result = std::async(std::launch::async, [&] { return client.run(); });
  caf::anon_send(client.runtime(), kryten::stop_atom::value, std::string{"asked by an actor"});
  REQUIRE(result.wait_for(10s) == std::future_status::ready);
  CHECK(result.get() == 0);
  CHECK_FALSE(client.is_connected());
}

TEST_CASE("handlers taking const event& see the runtime's copy of the event, not their own",
          "[protocol][events]") {
  nats_server server;
  kryten::client client{make_config(server.url(), "proto")};
  recorder<const void*> at;
  client.on("*", [&](const kryten::event& e) { at.add(&e.envelope()); });
  client.on("chatmsg", [&](const kryten::chat_message& m) {
    at.add(static_cast<const kryten::event_envelope*>(&m));
  });
  client.connect();
  bus_client bus{server.url()};
  bus.publish(lounge_chat, chat_event("carol", "hi"));
  REQUIRE(at.wait_size(2));
  CHECK(at.items()[0] == at.items()[1]);  // one event object, shared by both handlers
  client.disconnect();
}
