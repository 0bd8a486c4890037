// Authentication against a real nats-server: user/password, token and
// credentials inside the server URL. Right credentials connect and receive
// events; wrong ones fail with connect_error; no secret ever reaches an error
// text or a log line.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include <kryten/kryten.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include "support/bot_fixtures.hpp"
#include "support/temp_file.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/text.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::bus_client;
using kryten::test::child_process;
using kryten::test::contains;
using kryten::test::nats_server;

namespace {

constexpr const char* user = "kryten-user";
constexpr const char* password = "pw-Zq8vXr2LmN4k";
constexpr const char* wrong_password = "pw-WRONG-Tt5yHu7";
constexpr const char* token = "tok-Ae3Rb6Cq9Dx1";
constexpr const char* wrong_token = "tok-WRONG-Fg4Hj8";
constexpr const char* chat_subject = "kryten.events.cytube.lounge.chatMsg";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// A logger that writes everything (trace and up) into a string.
struct captured_log {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;

  captured_log() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    logger = std::make_shared<spdlog::logger>("auth-test", std::move(sink));
    logger->set_level(spdlog::level::trace);
  }
  /// Read only once the client using the logger is gone.
  std::string text() const { return out.str(); }
};

json base_config(const std::string& url) {
  return {{"nats", {{"servers", {url}}, {"connect_timeout", 2}}},
          {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
          {"service", {{"name", "auth-test"}}},
          {"log_level", "DEBUG"}};
}

/// A chatMsg RawEvent from a user of rank 0, with neither payload.time nor
/// payload.meta.
std::string chat_event(const std::string& who, const std::string& msg) {
  return kryten::test::raw_event_json(
      "chatMsg", {{"user", {{"name", who}, {"rank", 0}}}, {"msg", msg}}, "lounge", "cytu.be",
      "5d0b7b0e-0c2a-4b8e-9a55-6f4f8f0f2a11", "2024-01-02T03:04:05.123456Z");
}

/// Connects a client with `cfg`, checks it is connected, publishes a chat
/// event through `publisher` and waits until the client's handler has it.
void connect_and_receive(const json& cfg, bus_client& publisher, captured_log& log) {
  std::mutex mx;
  std::string got;
  {
    kryten::client client{kryten::parse_config(cfg.dump()), log.logger};
    client.on("chatmsg", [&](const kryten::chat_message& m) {
      std::lock_guard<std::mutex> guard{mx};
      got = m.username + ": " + m.message;
    });
    REQUIRE_NOTHROW(client.connect());
    CHECK(client.is_connected());
    publisher.publish(chat_subject, chat_event("alice", "hello"));
    publisher.flush();
    CHECK(kryten::test::wait_until(
        [&] {
          std::lock_guard<std::mutex> guard{mx};
          return !got.empty();
        },
        5s));
    client.disconnect();
  }
  CHECK(got == "alice: hello");
}

/// Connects a client with `cfg`, which must fail; returns the error text.
std::string connect_failure(const json& cfg, captured_log& log) {
  std::optional<std::string> what;
  {
    kryten::client client{kryten::parse_config(cfg.dump()), log.logger};
    try {
      client.connect();
    } catch (const kryten::connect_error& e) {
      what = e.what();
    }
    CHECK_FALSE(client.is_connected());
  }
  REQUIRE(what.has_value());
  return *what;
}

bool says_auth_failed(const std::string& text) {
  auto l = lower(text);
  return contains(l, "authorization") || contains(l, "authentication");
}

using kryten::test::temp_file;

}  // namespace

TEST_CASE("user and password authentication", "[auth][process]") {
  nats_server server{nats_server::options{user, password, "", "", ""}};
  captured_log log;
  auto cfg = base_config(server.url());
  cfg["nats"]["user"] = user;

  SECTION("the right password connects and receives events") {
    cfg["nats"]["password"] = password;
    bus_client publisher{server.url(), user, password};
    connect_and_receive(cfg, publisher, log);
    INFO("log:\n" << log.text());
    CHECK(contains(log.text(), "connected to NATS"));
    CHECK_FALSE(contains(log.text(), password));
  }
  SECTION("a wrong password fails with connect_error and leaks nothing") {
    cfg["nats"]["password"] = wrong_password;
    auto what = connect_failure(cfg, log);
    INFO("error: " << what << "\nlog:\n" << log.text());
    CHECK(says_auth_failed(what));
    CHECK(contains(what, server.url()));
    CHECK_FALSE(contains(what, wrong_password));
    CHECK_FALSE(contains(log.text(), wrong_password));
    CHECK_FALSE(contains(log.text(), password));
    CHECK(says_auth_failed(log.text()));
  }
  SECTION("no credentials at all fail") {
    cfg["nats"].erase("user");
    auto what = connect_failure(cfg, log);
    INFO("error: " << what);
    CHECK(says_auth_failed(what));
  }
}

TEST_CASE("token authentication", "[auth][process]") {
  nats_server server{nats_server::options{"", "", token, "", ""}};
  captured_log log;
  auto cfg = base_config(server.url());

  SECTION("the right token connects and receives events") {
    cfg["nats"]["token"] = token;
    bus_client publisher{server.url(), "", "", token};
    connect_and_receive(cfg, publisher, log);
    INFO("log:\n" << log.text());
    CHECK_FALSE(contains(log.text(), token));
  }
  SECTION("a wrong token fails with connect_error and leaks nothing") {
    cfg["nats"]["token"] = wrong_token;
    auto what = connect_failure(cfg, log);
    INFO("error: " << what << "\nlog:\n" << log.text());
    CHECK(says_auth_failed(what));
    CHECK_FALSE(contains(what, wrong_token));
    CHECK_FALSE(contains(log.text(), wrong_token));
    CHECK_FALSE(contains(log.text(), token));
  }
}

TEST_CASE("credentials inside the server URL", "[auth][process]") {
  // The password contains "secret": that word must appear nowhere.
  const std::string url_password = "secret-Kp3Wm7";
  nats_server server{nats_server::options{user, url_password, "", "", ""}};
  captured_log log;
  const std::string authority = "127.0.0.1:" + std::to_string(server.port());

  SECTION("right credentials connect; the log shows no password") {
    auto cfg = base_config("nats://" + std::string{user} + ":" + url_password + "@" + authority);
    bus_client publisher{server.url(), user, url_password};
    connect_and_receive(cfg, publisher, log);
    INFO("log:\n" << log.text());
    CHECK(contains(log.text(), authority));  // the server is named, redacted
    CHECK_FALSE(contains(log.text(), "secret"));
  }
  SECTION("wrong credentials fail; neither error nor log shows them") {
    auto cfg = base_config("nats://" + std::string{user} + ":secret-WRONG@" + authority);
    auto what = connect_failure(cfg, log);
    INFO("error: " << what << "\nlog:\n" << log.text());
    CHECK(says_auth_failed(what));
    CHECK(contains(what, authority));
    CHECK_FALSE(contains(what, "secret"));
    CHECK_FALSE(contains(log.text(), "secret"));
  }
}

TEST_CASE("echo bot with a wrong password exits with 1 and does not print it",
          "[auth][echo_bot][process]") {
  nats_server server{nats_server::options{user, password, "", "", ""}};
  auto cfg = base_config(server.url());
  SECTION("password in the nats section") {
    cfg["nats"]["user"] = user;
    cfg["nats"]["password"] = wrong_password;
  }
  SECTION("password in the URL") {
    cfg["nats"]["servers"] = {"nats://" + std::string{user} + ":" + wrong_password +
                              "@127.0.0.1:" + std::to_string(server.port())};
  }
  temp_file file{cfg.dump(2)};
  child_process bot({KRYTEN_ECHO_BOT, "--config", file.path()});
  auto code = bot.wait_for_exit(20s);
  auto err = bot.stderr_text();
  auto out = bot.stdout_text();
  INFO("stderr:\n" << err);
  CHECK(code == std::optional<int>(1));
  CHECK(says_auth_failed(err));
  CHECK_FALSE(contains(err, wrong_password));
  CHECK_FALSE(contains(out, wrong_password));
}
