// The JetStream key-value store against a real nats-server with JetStream on
// (its store in a temporary folder): every operation from the blocking
// facade, kryten-py's JSON encoding on the wire, watches delivered to a
// callback and to an actor, the typed protocol from a user's actor, a
// missing bucket, and a server without JetStream.
#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "kryten/client.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"
#include "support/temp_file.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::make_config;
using kryten::test::nats_server;
using kryten::test::temp_dir;
using kryten::test::wait_until;

namespace {

struct jetstream_server {
  temp_dir store;
  nats_server server{nats_server::options{"", "", "", "", store.path()}};
};

kryten::kv_bucket_config bucket_named(const std::string& name) {
  kryten::kv_bucket_config cfg;
  cfg.bucket = name;
  cfg.description = "kryten-cpp tests";
  return cfg;
}

/// The changes a watch delivered, in order.
struct change_log {
  std::mutex mutex;
  std::vector<kryten::kv_entry> seen;
  void add(const kryten::kv_entry& e) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(e);
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return seen.size();
  }
  kryten::kv_entry at(std::size_t i) {
    std::lock_guard<std::mutex> lock(mutex);
    return seen.at(i);
  }
};

}  // namespace

TEST_CASE("a bucket is created, then opened, and every operation works", "[kv]") {
  jetstream_server js;
  kryten::client client{make_config(js.server.url())};
  client.connect();

  auto stats = client.kv(bucket_named("test_stats"));
  CHECK(stats.name() == "test_stats");
  CHECK_FALSE(stats.get("lounge"));  // never set

  auto r1 = stats.put("lounge", "raw bytes \x01\x02");
  CHECK(r1 >= 1);
  CHECK(stats.get("lounge") == std::string{"raw bytes \x01\x02"});
  auto r2 = stats.put_json("lounge", json{{"chats", 12}, {"users", json::array({"ann", "bob"})}});
  CHECK(r2 > r1);
  CHECK(stats.get_json("lounge") == json{{"chats", 12}, {"users", json::array({"ann", "bob"})}});
  stats.put_json("cinema", 7);
  CHECK(stats.keys() == std::vector<std::string>{"cinema", "lounge"});
  auto all = stats.get_all_json();
  REQUIRE(all.size() == 2);
  CHECK(all["cinema"] == 7);

  stats.erase("cinema");
  CHECK_FALSE(stats.get("cinema"));
  CHECK(stats.keys() == std::vector<std::string>{"lounge"});
  CHECK(stats.get_all().size() == 1);

  // Opened again, by name only: the same bucket and values.
  auto again = client.kv("test_stats");
  CHECK(again.get_json("lounge")->at("chats") == 12);

  stats.put("not-json", "{oops");
  CHECK_THROWS_AS(stats.get_json("not-json"), kryten::kv_error);
  CHECK(stats.get_all_json().count("not-json") == 0);  // logged and left out
}

TEST_CASE("JSON values are stored as kryten-py's json.dumps writes them", "[kv][interop]") {
  jetstream_server js;
  kryten::client client{make_config(js.server.url())};
  client.connect();
  auto bucket = client.kv(bucket_named("kryten_lounge_state"));

  // What a Python service reads: the bytes json.dumps(value).encode() makes.
  bucket.put_json("state", json{{"a", 1}, {"b", json::array({1, "x", nullptr, true})},
                                {"c", json{{"d", 1.5}}}, {"e", "caf\u00e9"}});
  CHECK(bucket.get("state")
        == std::string{R"({"a": 1, "b": [1, "x", null, true], "c": {"d": 1.5}, "e": "caf\u00e9"})"});

  // What a Python service wrote (json.dumps of a list) reads back as JSON.
  bucket.put("playlist", R"([{"uid": 7, "title": "x"}, {"uid": 8, "title": "y"}])");
  CHECK(bucket.get_json("playlist")->at(1).at("uid") == 8);

  // On the wire: the value is the message body on $KV.{bucket}.{key}.
  bus_client bus{js.server.url()};
  bus.subscribe("$KV.kryten_lounge_state.>");
  bucket.put_json("count", json{{"n", 3}});
  auto msg = bus.wait_for("$KV.kryten_lounge_state.count", 5s);
  REQUIRE(msg);
  CHECK(msg->data == R"({"n": 3})");
}

TEST_CASE("a watch delivers the current values, then each change, to a callback", "[kv][watch]") {
  jetstream_server js;
  kryten::client client{make_config(js.server.url())};
  client.connect();
  auto bucket = client.kv(bucket_named("watched"));
  bucket.put("before", "1");

  change_log changes;
  auto label = bucket.watch(">", [&](const kryten::kv_entry& e) { changes.add(e); });
  REQUIRE(wait_until([&] { return changes.size() >= 1; }, 5s));
  CHECK(changes.at(0).key == "before");
  CHECK(changes.at(0).value == "1");

  bucket.put_json("after", json{{"x", 1}});
  bucket.erase("before");
  REQUIRE(wait_until([&] { return changes.size() >= 3; }, 5s));
  CHECK(changes.at(1).key == "after");
  CHECK(changes.at(1).json() == json{{"x", 1}});
  CHECK(changes.at(1).operation == kryten::kv_operation::put);
  CHECK(changes.at(2).key == "before");
  CHECK(changes.at(2).operation == kryten::kv_operation::erase);
  CHECK(changes.at(2).bucket == "watched");
  CHECK(changes.at(2).revision > changes.at(1).revision);

  bucket.unwatch(label);
  bucket.put("later", "2");
  // The watch is gone: a second watch sees "later", the first does not.
  change_log second;
  bucket.watch("later", [&](const kryten::kv_entry& e) { second.add(e); });
  REQUIRE(wait_until([&] { return second.size() >= 1; }, 5s));
  CHECK(changes.size() == 3);
  CHECK_THROWS_AS(bucket.unwatch(label), kryten::kv_error);
}

TEST_CASE("a user's actor uses the store by typed messages and watches a key", "[kv][actor]") {
  jetstream_server js;
  kryten::client client{make_config(js.server.url())};
  client.connect();
  client.kv(bucket_named("counts"));
  auto rt = client.runtime();

  caf::scoped_actor self{client.system()};
  std::uint64_t rev = 0;
  self->request(rt, 10s, kryten::kv_put_atom::value, std::string{"counts"}, std::string{"a"},
                std::string{"41"})
    .receive([&](std::uint64_t r) { rev = r; }, [&](caf::error& e) { FAIL(kryten::describe(e)); });
  CHECK(rev >= 1);
  self->request(rt, 10s, kryten::kv_get_atom::value, std::string{"counts"}, std::string{"a"})
    .receive([&](const kryten::kv_entry& e) {
      CHECK(e.found);
      CHECK(e.value == "41");
      CHECK(e.revision == rev);
    }, [&](caf::error& e) { FAIL(kryten::describe(e)); });
  self->request(rt, 10s, kryten::kv_get_atom::value, std::string{"counts"}, std::string{"zz"})
    .receive([&](const kryten::kv_entry& e) { CHECK_FALSE(e.found); },
             [&](caf::error& e) { FAIL(kryten::describe(e)); });
  self->request(rt, 10s, kryten::kv_get_atom::value, std::string{"nope"}, std::string{"a"})
    .receive([&](const kryten::kv_entry&) { FAIL("a missing bucket answered"); },
             [&](caf::error& e) {
               CHECK(kryten::code_of(e) == kryten::error_code::no_such_bucket);
             });

  // A watch to an actor: it gets kv_entry messages; the watch ends with it.
  change_log changes;
  auto watcher = client.system().spawn([&](caf::event_based_actor*, int) -> caf::behavior {
    return {[&](const kryten::kv_entry& e) { changes.add(e); }};
  }, 0);
  std::string label;
  self->request(rt, 10s, kryten::kv_watch_atom::value, std::string{"counts"}, std::string{"a"},
                watcher)
    .receive([&](const std::string& l) { label = l; }, [&](caf::error& e) { FAIL(kryten::describe(e)); });
  REQUIRE(wait_until([&] { return changes.size() >= 1; }, 5s));
  CHECK(changes.at(0).value == "41");
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  // Its end ends the watch: unwatching it afterwards finds nothing.
  REQUIRE(wait_until([&] {
    bool gone = false;
    self->request(rt, 10s, kryten::unsubscribe_atom::value, label)
      .receive([&](bool) {}, [&](caf::error& e) {
        gone = kryten::code_of(e) == kryten::error_code::unknown_handler;
      });
    return gone;
  }, 5s, 20ms));
}

TEST_CASE("a missing bucket and a server without JetStream are typed errors", "[kv][errors]") {
  SECTION("no such bucket") {
    jetstream_server js;
    kryten::client client{make_config(js.server.url())};
    client.connect();
    try {
      client.kv("never_made");
      FAIL("opened a bucket that does not exist");
    } catch (const kryten::kv_error& e) {
      CHECK(e.code() == kryten::error_code::no_such_bucket);
      CHECK(std::string{e.what()}.find("never_made") != std::string::npos);
    }
  }
  SECTION("JetStream off") {
    nats_server plain;
    kryten::client client{make_config(plain.url())};
    client.connect();
    auto took = kryten::test::time_of([&] {
      try {
        client.kv(bucket_named("anything"));
        FAIL("a bucket without JetStream");
      } catch (const kryten::kv_error& e) {
        CHECK(e.code() == kryten::error_code::no_jetstream);
      }
    });
    CHECK(took < 6s);
  }
  SECTION("before connect()") {
    nats_server plain;
    kryten::client client{make_config(plain.url())};
    try {
      client.kv("anything");
      FAIL("a bucket before connect()");
    } catch (const kryten::kv_error& e) {
      CHECK(e.code() == kryten::error_code::not_connected);
    }
  }
}
