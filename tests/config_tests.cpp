// Tests of the configuration loader (PROTOCOL.md §7): defaults, every validation
// rule, ${VAR} substitution, unknown-key warnings and secret hygiene.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "support/temp_file.hpp"
#include "kryten/config.hpp"

using Catch::Matchers::Contains;
using kryten::config_error;
using kryten::kryten_config;
using kryten::parse_config;
using json = nlohmann::json;

namespace {

const char* const minimal_text =
    R"({"nats":{"servers":["nats://127.0.0.1:4222"]},"channels":[{"domain":"cytu.be","channel":"lounge"}]})";

json minimal() { return json::parse(minimal_text); }

// The minimal config with the value at JSON pointer `ptr` replaced (or added).
json with(const std::string& ptr, json value, json base = minimal()) {
  base[json::json_pointer(ptr)] = std::move(value);
  return base;
}

json without(const std::string& ptr) {
  auto base = minimal();
  auto p = json::json_pointer(ptr);
  base[p.parent_pointer()].erase(p.back());
  return base;
}

kryten_config parse(const json& j) { return parse_config(j.dump()); }

// Expects a config_error naming `field` whose message contains `text`.
void check_error(const json& j, const std::string& field, const std::string& text) {
  INFO("config: " << j.dump());
  try {
    parse(j);
    FAIL("no config_error thrown");
  } catch (const config_error& e) {
    CHECK(e.field() == field);
    CHECK_THAT(e.what(), Contains(text));
  }
}

// Sets an environment variable for one test and restores the previous state.
class scoped_env {
public:
  scoped_env(std::string name, const char* value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value)
      ::setenv(name_.c_str(), value, 1);
    else
      ::unsetenv(name_.c_str());
  }
  ~scoped_env() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

private:
  std::string name_;
  std::optional<std::string> old_;
};

// A file under the temp directory, removed at scope end.
using kryten::test::temp_file;

}  // namespace

TEST_CASE("config_error joins field and rule", "[config]") {
  config_error e("service.heartbeat_interval", "must be between 5 and 300 (got 2)");
  CHECK(e.field() == "service.heartbeat_interval");
  CHECK(std::string(e.what()) == "service.heartbeat_interval: must be between 5 and 300 (got 2)");
}

TEST_CASE("a minimal config yields every default of PROTOCOL.md 7", "[config]") {
  auto c = parse_config(minimal_text);
  REQUIRE(c.nats.servers == std::vector<std::string>{"nats://127.0.0.1:4222"});
  CHECK_FALSE(c.nats.user);
  CHECK_FALSE(c.nats.password);
  CHECK_FALSE(c.nats.token);
  CHECK_FALSE(c.nats.tls_cert);
  CHECK_FALSE(c.nats.tls_key);
  CHECK_FALSE(c.nats.tls_ca);
  CHECK(c.nats.connect_timeout == 10.0);
  CHECK(c.nats.reconnect_time_wait == 2.0);
  CHECK(c.nats.max_reconnect_attempts == -1);
  CHECK(c.nats.ping_interval == 120.0);
  CHECK(c.nats.pending_msgs_limit == -1);
  CHECK(c.nats.pending_bytes_limit == 1024LL * 1024 * 1024);
  REQUIRE(c.channels.size() == 1);
  CHECK(c.channels[0].domain == "cytu.be");
  CHECK(c.channels[0].channel == "lounge");
  CHECK_FALSE(c.service);
  CHECK_FALSE(c.metrics);
  CHECK(c.retry_attempts == 3);
  CHECK(c.retry_delay == 1.0);
  CHECK(c.handler_timeout == 30.0);
  CHECK(c.chat_min_delay == 1.0);
  CHECK(c.chat_jitter == 0.5);
  CHECK(c.max_concurrent_handlers == 1000);
  CHECK(c.handler_queue_size == 10000000);
  CHECK(c.handler_queue_bytes == 1073741824);
  CHECK(c.log_level == "INFO");
  CHECK(c.warnings.empty());
  CHECK(c.service_name() == "kryten-client");
}

TEST_CASE("an empty service object yields the service defaults", "[config][service]") {
  auto c = parse(with("/service", json::object()));
  REQUIRE(c.service);
  const auto& s = *c.service;
  CHECK(s.name == "kryten-service");
  CHECK(s.version == "1.0.0");
  CHECK(s.enable_lifecycle);
  CHECK(s.enable_heartbeat);
  CHECK(s.heartbeat_interval == 30);
  CHECK(s.enable_discovery);
  CHECK(s.reregister_on_robot_startup);
  CHECK(s.health_host == "0.0.0.0");
  CHECK_FALSE(s.health_port);
  CHECK(s.health_path == "/health");
  CHECK_FALSE(s.metrics_port);
  CHECK(s.metrics_path == "/metrics");
  CHECK_FALSE(s.restart_on_notice);
  CHECK(s.shutdown_timeout == 10.0);
  CHECK(c.service_name() == "kryten-service");
}

TEST_CASE("a full config is read field by field", "[config]") {
  temp_file cert{"CERT", ".pem"}, key{"KEY", ".pem"}, ca{"CA", ".pem"};
  auto text = std::string{R"({
    "nats": {"servers": ["nats://a:4222", "nats://b:4222"], "user": "u", "password": "p",
             "token": "t", "tls_cert": "CERT_PATH", "tls_key": "KEY_PATH", "tls_ca": "CA_PATH",
             "connect_timeout": 2.5, "reconnect_time_wait": 0, "max_reconnect_attempts": 7,
             "ping_interval": 30, "pending_msgs_limit": -1, "pending_bytes_limit": 1024,
             "reconnect_buffer_size": 4096},
    "channels": [{"domain": "cytu.be", "channel": "lounge"}, {"domain": "x.y", "channel": "z"}],
    "service": {"name": "my-bot", "version": "2.1.0", "enable_lifecycle": false,
                "enable_heartbeat": false, "heartbeat_interval": 60, "enable_discovery": false,
                "reregister_on_robot_startup": false, "health_host": "127.0.0.1", "health_port": 8080, "health_path": "/hz",
                "metrics_port": 9090, "metrics_path": "/m", "restart_on_notice": true,
                "shutdown_timeout": 3},
    "retry_attempts": 0, "retry_delay": 0.5, "handler_timeout": 5,
    "max_concurrent_handlers": 10, "handler_queue_size": 50, "log_level": "debug"})"};
  for (auto [from, to] : {std::pair{"CERT_PATH", &cert}, {"KEY_PATH", &key}, {"CA_PATH", &ca}})
    text.replace(text.find(from), std::string{from}.size(), to->path());
  auto c = parse_config(text);
  CHECK(c.nats.servers.size() == 2);
  CHECK(c.nats.user == "u");
  CHECK(c.nats.password == "p");
  CHECK(c.nats.token == "t");
  CHECK(c.nats.tls_cert == cert.path());
  CHECK(c.nats.tls_key == key.path());
  CHECK(c.nats.tls_ca == ca.path());
  CHECK(c.nats.connect_timeout == 2.5);
  CHECK(c.nats.reconnect_time_wait == 0.0);
  CHECK(c.nats.max_reconnect_attempts == 7);
  CHECK(c.nats.ping_interval == 30.0);
  CHECK(c.nats.pending_msgs_limit == -1);
  CHECK(c.nats.pending_bytes_limit == 1024);
  CHECK(c.nats.reconnect_buffer_size == 4096);
  REQUIRE(c.channels.size() == 2);
  CHECK(c.channels[1].domain == "x.y");
  CHECK(c.channels[1].channel == "z");
  REQUIRE(c.service);
  CHECK(c.service->name == "my-bot");
  CHECK(c.service->version == "2.1.0");
  CHECK_FALSE(c.service->enable_lifecycle);
  CHECK_FALSE(c.service->enable_heartbeat);
  CHECK(c.service->heartbeat_interval == 60);
  CHECK_FALSE(c.service->enable_discovery);
  CHECK_FALSE(c.service->reregister_on_robot_startup);
  CHECK(c.service->health_host == "127.0.0.1");
  CHECK(c.service->health_port == 8080);
  CHECK(c.service->health_path == "/hz");
  CHECK(c.service->metrics_port == 9090);
  CHECK(c.service->metrics_path == "/m");
  CHECK(c.service->restart_on_notice);
  CHECK(c.service->shutdown_timeout == 3.0);
  CHECK(c.retry_attempts == 0);
  CHECK(c.retry_delay == 0.5);
  CHECK(c.handler_timeout == 5.0);
  CHECK(c.max_concurrent_handlers == 10);
  CHECK(c.handler_queue_size == 50);
  CHECK(c.log_level == "DEBUG");
  CHECK(c.warnings.empty());
  CHECK(c.service_name() == "my-bot");
}

TEST_CASE("substitute_env replaces set variables and leaves the rest as written", "[config][env]") {
  scoped_env a("KRYTEN_TEST_A", "alpha");
  scoped_env b("KRYTEN_TEST_B", "");
  scoped_env unset("KRYTEN_TEST_UNSET", nullptr);
  using kryten::substitute_env;
  CHECK(substitute_env("x ${KRYTEN_TEST_A} y") == "x alpha y");
  CHECK(substitute_env("${KRYTEN_TEST_A}${KRYTEN_TEST_A}") == "alphaalpha");
  CHECK(substitute_env("[${KRYTEN_TEST_B}]") == "[]");
  CHECK(substitute_env("${KRYTEN_TEST_UNSET}") == "${KRYTEN_TEST_UNSET}");
  CHECK(substitute_env("$KRYTEN_TEST_A") == "$KRYTEN_TEST_A");
  CHECK(substitute_env("${KRYTEN_TEST_A") == "${KRYTEN_TEST_A");
  CHECK(substitute_env("${}") == "${}");
  CHECK(substitute_env("${1A}") == "${1A}");
  CHECK(substitute_env("${A-B}") == "${A-B}");
  CHECK(substitute_env("$${KRYTEN_TEST_A}") == "$alpha");
  CHECK(substitute_env("${${KRYTEN_TEST_A}}") == "${alpha}");
  CHECK(substitute_env("") == "");
  CHECK(substitute_env("no variables") == "no variables");
}

TEST_CASE("substituted values are not expanded again", "[config][env]") {
  scoped_env a("KRYTEN_TEST_A", "${KRYTEN_TEST_B}");
  scoped_env b("KRYTEN_TEST_B", "nested");
  CHECK(kryten::substitute_env("${KRYTEN_TEST_A}") == "${KRYTEN_TEST_B}");
}

TEST_CASE("parse_config substitutes ${VAR} before parsing", "[config][env]") {
  scoped_env url("KRYTEN_TEST_URL", "nats://10.0.0.1:4222");
  scoped_env port("KRYTEN_TEST_PORT", "8081");
  scoped_env unset("KRYTEN_TEST_UNSET", nullptr);
  auto c =
      parse_config(R"({"nats":{"servers":["${KRYTEN_TEST_URL}"],"token":"${KRYTEN_TEST_UNSET}"},
      "channels":[{"domain":"cytu.be","channel":"lounge"}],
      "service":{"health_port":${KRYTEN_TEST_PORT}}})");
  CHECK(c.nats.servers[0] == "nats://10.0.0.1:4222");
  CHECK(c.nats.token == "${KRYTEN_TEST_UNSET}");
  REQUIRE(c.service);
  CHECK(c.service->health_port == 8081);
}

TEST_CASE("invalid JSON is a config error carrying the parser's message", "[config]") {
  try {
    parse_config(R"({"nats": )");
    FAIL("no config_error thrown");
  } catch (const config_error& e) {
    CHECK(e.field() == "config");
    CHECK_THAT(e.what(), Contains("config: invalid JSON") && Contains("parse error at line 1"));
  }
  CHECK_THROWS_AS(parse_config(""), config_error);
  CHECK_THROWS_AS(parse_config(R"({"a": 1} trailing)"), config_error);
  CHECK_THROWS_AS(parse_config(R"({"a": 1e999})"), config_error);
}

TEST_CASE("the parser's excerpt of invalid JSON is not repeated", "[config][secrets]") {
  // An unterminated string: nlohmann would quote it ("last read: ...") in its message.
  auto text = std::string(minimal_text);
  text.insert(text.find("\"servers\""), R"("password": "hunter2-secret)");
  CHECK_THROWS_WITH(parse_config(text), !Contains("hunter2"));
  CHECK_THROWS_WITH(parse_config(text), Contains("config: invalid JSON"));
}

TEST_CASE("the top level must be an object", "[config]") {
  for (const char* text : {"[]", "42", "\"x\"", "null", "true"}) {
    INFO(text);
    try {
      parse_config(text);
      FAIL("no config_error thrown");
    } catch (const config_error& e) {
      CHECK(e.field() == "config");
      CHECK_THAT(e.what(), Contains("config: must be a JSON object (got "));
    }
  }
}

TEST_CASE("load_config reads a file", "[config][file]") {
  scoped_env url("KRYTEN_TEST_URL", "nats://10.0.0.2:4222");
  temp_file file(R"({"nats":{"servers":["${KRYTEN_TEST_URL}"]},
                     "channels":[{"domain":"cytu.be","channel":"lounge"}],
                     "service":{"name":"From.File"}})");
  auto c = kryten::load_config(file.path());
  CHECK(c.nats.servers[0] == "nats://10.0.0.2:4222");
  CHECK(c.service_name() == "from-file");
}

TEST_CASE("load_config validates the file's content", "[config][file]") {
  temp_file file(R"({"nats":{"servers":[]},"channels":[{"domain":"a","channel":"b"}]})");
  CHECK_THROWS_WITH(kryten::load_config(file.path()),
                    Contains("nats.servers: must contain at least one"));
  temp_file broken("{");
  CHECK_THROWS_WITH(kryten::load_config(broken.path()), Contains("config: invalid JSON"));
}

TEST_CASE("an unreadable path is a config error naming the path", "[config][file]") {
  auto missing = std::filesystem::temp_directory_path() / "kryten-no-such-dir" / "nope.json";
  try {
    kryten::load_config(missing);
    FAIL("no config_error thrown");
  } catch (const config_error& e) {
    CHECK(e.field() == "config");
    CHECK_THAT(e.what(), Contains("cannot read file") && Contains(missing.string()));
  }
  auto dir = std::filesystem::temp_directory_path();
  try {
    kryten::load_config(dir);
    FAIL("no config_error thrown");
  } catch (const config_error& e) {
    CHECK(e.field() == "config");
    CHECK_THAT(e.what(), Contains(dir.string()));
  }
}

TEST_CASE("nats is a required object", "[config][nats]") {
  check_error(without("/nats"), "nats", "nats: is required");
  check_error(with("/nats", json::array()), "nats", "nats: must be an object (got array)");
  check_error(with("/nats", nullptr), "nats", "nats: must be an object (got null)");
}

TEST_CASE("nats.servers needs at least one non-empty string", "[config][nats]") {
  check_error(without("/nats/servers"), "nats.servers", "nats.servers: is required");
  check_error(with("/nats/servers", "nats://x:4222"), "nats.servers",
              "must be an array of strings (got string)");
  check_error(with("/nats/servers", json::array()), "nats.servers",
              "nats.servers: must contain at least one server (got [])");
  check_error(with("/nats/servers", {"nats://a:4222", 5}), "nats.servers[1]",
              "nats.servers[1]: must be a string (got number)");
  check_error(with("/nats/servers", {"   "}), "nats.servers[0]",
              "nats.servers[0]: must not be empty (got \"   \")");
  check_error(with("/nats/servers", {""}), "nats.servers[0]", "must not be empty");
  auto c = parse(with("/nats/servers", {"  nats://a:4222 \t"}));
  CHECK(c.nats.servers == std::vector<std::string>{"nats://a:4222"});
}

TEST_CASE("optional nats strings must be strings, null means absent", "[config][nats]") {
  for (const char* key : {"user", "password", "token", "tls_cert", "tls_key", "tls_ca"}) {
    INFO(key);
    std::string field = std::string("nats.") + key;
    check_error(with("/nats/" + std::string(key), 12), field,
                field + ": must be a string (got number)");
    check_error(with("/nats/" + std::string(key), false), field, "must be a string (got boolean)");
    auto c = parse(with("/nats/" + std::string(key), nullptr));
    CHECK_FALSE(c.nats.user);
    CHECK_FALSE(c.nats.password);
    CHECK_FALSE(c.nats.token);
    CHECK_FALSE(c.nats.tls_cert);
    CHECK_FALSE(c.nats.tls_key);
    CHECK_FALSE(c.nats.tls_ca);
  }
}

TEST_CASE("TLS files must be readable, and a certificate needs its key", "[config][nats][tls]") {
  temp_file pem{"-----BEGIN CERTIFICATE-----\n", ".pem"};
  temp_file empty{"", ".pem"};
  const std::string missing = "/nonexistent/kryten/ca.pem";
  for (const char* key : {"tls_ca", "tls_cert", "tls_key"}) {
    INFO(key);
    std::string field = std::string("nats.") + key;
    auto base = with("/nats/tls_cert", pem.path(), with("/nats/tls_key", pem.path()));
    check_error(with("/nats/" + std::string(key), missing, base), field,
                field + ": file cannot be read or is empty (got \"" + missing + "\")");
    check_error(with("/nats/" + std::string(key), empty.path(), base), field,
                "file cannot be read or is empty");
  }
  check_error(with("/nats/tls_cert", pem.path()), "nats.tls_cert", "needs nats.tls_key");
  check_error(with("/nats/tls_key", pem.path()), "nats.tls_key", "needs nats.tls_cert");
  auto c = parse(with("/nats/tls_ca", pem.path()));
  CHECK(c.nats.tls_ca == pem.path());
}

TEST_CASE("nats.reconnect_buffer_size is 8 MiB unless set, 1 .. 2^31-1", "[config][nats]") {
  CHECK(parse(minimal()).nats.reconnect_buffer_size == 8 * 1024 * 1024);
  CHECK(parse(with("/nats/reconnect_buffer_size", 1)).nats.reconnect_buffer_size == 1);
  check_error(with("/nats/reconnect_buffer_size", 0), "nats.reconnect_buffer_size",
              "nats.reconnect_buffer_size: must be >= 1 (got 0)");
  check_error(with("/nats/reconnect_buffer_size", 4294967296LL), "nats.reconnect_buffer_size",
              "must be <= 2147483647");
  check_error(with("/nats/reconnect_buffer_size", "big"), "nats.reconnect_buffer_size",
              "must be an integer");
}

TEST_CASE("nats.connect_timeout must be > 0", "[config][nats]") {
  check_error(with("/nats/connect_timeout", 0), "nats.connect_timeout",
              "nats.connect_timeout: must be > 0 (got 0)");
  check_error(with("/nats/connect_timeout", -1.5), "nats.connect_timeout",
              "must be > 0 (got -1.5)");
  CHECK(parse(with("/nats/connect_timeout", 3)).nats.connect_timeout == 3.0);
  CHECK(parse(with("/nats/connect_timeout", 0.25)).nats.connect_timeout == 0.25);
}

TEST_CASE("nats.reconnect_time_wait must be >= 0", "[config][nats]") {
  check_error(with("/nats/reconnect_time_wait", -0.5), "nats.reconnect_time_wait",
              "nats.reconnect_time_wait: must be >= 0 (got -0.5)");
  CHECK(parse(with("/nats/reconnect_time_wait", 0)).nats.reconnect_time_wait == 0.0);
}

TEST_CASE("nats.max_reconnect_attempts is an integer >= -1", "[config][nats]") {
  check_error(with("/nats/max_reconnect_attempts", -2), "nats.max_reconnect_attempts",
              "nats.max_reconnect_attempts: must be >= -1 (got -2)");
  check_error(with("/nats/max_reconnect_attempts", 2.5), "nats.max_reconnect_attempts",
              "must be an integer (got 2.5)");
  check_error(with("/nats/max_reconnect_attempts", "5"), "nats.max_reconnect_attempts",
              "must be an integer (got string)");
  check_error(with("/nats/max_reconnect_attempts", 5000000000LL), "nats.max_reconnect_attempts",
              "must be <= 2147483647 (got 5000000000)");
  CHECK(parse(with("/nats/max_reconnect_attempts", -1)).nats.max_reconnect_attempts == -1);
  CHECK(parse(with("/nats/max_reconnect_attempts", 0)).nats.max_reconnect_attempts == 0);
  CHECK(parse(with("/nats/max_reconnect_attempts", 60)).nats.max_reconnect_attempts == 60);
}

TEST_CASE("nats.ping_interval must be > 0", "[config][nats]") {
  check_error(with("/nats/ping_interval", 0), "nats.ping_interval",
              "nats.ping_interval: must be > 0 (got 0)");
  CHECK(parse(with("/nats/ping_interval", 5)).nats.ping_interval == 5.0);
}

TEST_CASE("nats pending limits are integers >= 1 or exactly -1", "[config][nats]") {
  for (const char* key : {"pending_msgs_limit", "pending_bytes_limit"}) {
    INFO(key);
    std::string ptr = std::string("/nats/") + key;
    std::string field = std::string("nats.") + key;
    check_error(with(ptr, 0), field, field + ": must be >= 1 or -1 (got 0)");
    check_error(with(ptr, -2), field, "must be >= 1 or -1 (got -2)");
    check_error(with(ptr, 1.5), field, "must be an integer (got 1.5)");
    check_error(with(ptr, "1"), field, "must be an integer (got string)");
  }
  auto c =
      parse(with("/nats/pending_bytes_limit", 1LL << 40, with("/nats/pending_msgs_limit", -1)));
  CHECK(c.nats.pending_msgs_limit == -1);
  CHECK(c.nats.pending_bytes_limit == 1LL << 40);
  CHECK(parse(with("/nats/pending_msgs_limit", 1)).nats.pending_msgs_limit == 1);
}

TEST_CASE("channels is a non-empty array of objects", "[config][channels]") {
  check_error(without("/channels"), "channels", "channels: is required");
  check_error(with("/channels", json::object()), "channels",
              "channels: must be an array (got object)");
  check_error(with("/channels", json::array()), "channels",
              "channels: must contain at least one channel (got [])");
  check_error(with("/channels", {"lounge"}), "channels[0]",
              "channels[0]: must be an object (got string)");
}

TEST_CASE("channel domain and channel are trimmed non-empty strings", "[config][channels]") {
  check_error(without("/channels/0/domain"), "channels[0].domain",
              "channels[0].domain: is required");
  check_error(without("/channels/0/channel"), "channels[0].channel",
              "channels[0].channel: is required");
  check_error(with("/channels/0/domain", 1), "channels[0].domain", "must be a string (got number)");
  check_error(with("/channels/0/channel", "  "), "channels[0].channel",
              "channels[0].channel: must not be empty (got \"  \")");
  check_error(with("/channels/1", {{"domain", "a"}, {"channel", ""}}), "channels[1].channel",
              "must not be empty");
  auto c = parse(with("/channels/0", {{"domain", " cytu.be "}, {"channel", "\tlounge\n"}}));
  CHECK(c.channels[0].domain == "cytu.be");
  CHECK(c.channels[0].channel == "lounge");
}

TEST_CASE("service must be an object, null means absent", "[config][service]") {
  check_error(with("/service", json::array()), "service", "service: must be an object (got array)");
  check_error(with("/service", "my-bot"), "service", "service: must be an object (got string)");
  auto c = parse(with("/service", nullptr));
  CHECK_FALSE(c.service);
  CHECK(c.service_name() == "kryten-client");
}

TEST_CASE("service.name is normalised and must not end up empty", "[config][service]") {
  CHECK(parse(with("/service/name", "  My.Cool.Bot ")).service_name() == "my-cool-bot");
  CHECK(parse(with("/service/name", "UPPER_case")).service_name() == "upper_case");
  check_error(with("/service/name", "  "), "service.name",
              "service.name: must not be empty (got \"  \")");
  check_error(with("/service/name", ""), "service.name", "must not be empty");
  check_error(with("/service/name", 7), "service.name",
              "service.name: must be a string (got number)");
  check_error(with("/service/name", nullptr), "service.name", "must be a string (got null)");
}

TEST_CASE("service.version is a string", "[config][service]") {
  check_error(with("/service/version", 1.0), "service.version",
              "service.version: must be a string (got number)");
  CHECK(parse(with("/service/version", "3.0.0-rc1")).service->version == "3.0.0-rc1");
}

TEST_CASE("service switches must be JSON booleans", "[config][service]") {
  for (const char* key :
       {"enable_lifecycle", "enable_heartbeat", "enable_discovery", "reregister_on_robot_startup",
        "restart_on_notice"}) {
    INFO(key);
    std::string ptr = std::string("/service/") + key;
    std::string field = std::string("service.") + key;
    check_error(with(ptr, "true"), field, field + ": must be a boolean (got string)");
    check_error(with(ptr, 1), field, "must be a boolean (got number)");
    check_error(with(ptr, nullptr), field, "must be a boolean (got null)");
  }
  auto c =
      parse(with("/service/restart_on_notice", true, with("/service/enable_discovery", false)));
  CHECK(c.service->restart_on_notice);
  CHECK_FALSE(c.service->enable_discovery);
}

TEST_CASE("service.heartbeat_interval is an integer between 5 and 300", "[config][service]") {
  const std::string field = "service.heartbeat_interval";
  CHECK_THROWS_WITH(parse(with("/service/heartbeat_interval", 2)),
                    "service.heartbeat_interval: must be between 5 and 300 (got 2)");
  check_error(with("/service/heartbeat_interval", 4), field, "must be between 5 and 300 (got 4)");
  check_error(with("/service/heartbeat_interval", 301), field,
              "must be between 5 and 300 (got 301)");
  check_error(with("/service/heartbeat_interval", 30.5), field, "must be an integer (got 30.5)");
  check_error(with("/service/heartbeat_interval", "30"), field, "must be an integer (got string)");
  check_error(with("/service/heartbeat_interval", true), field, "must be an integer (got boolean)");
  check_error(with("/service/heartbeat_interval", 18446744073709551615ULL), field,
              "must be between 5 and 300");
  check_error(with("/service/heartbeat_interval", -1e300), field, "must be between 5 and 300");
  CHECK(parse(with("/service/heartbeat_interval", 5)).service->heartbeat_interval == 5);
  CHECK(parse(with("/service/heartbeat_interval", 300)).service->heartbeat_interval == 300);
  CHECK(parse(with("/service/heartbeat_interval", 60.0)).service->heartbeat_interval == 60);
}

TEST_CASE("service ports are integers 1..65535 or null", "[config][service]") {
  for (const char* key : {"health_port", "metrics_port"}) {
    INFO(key);
    std::string ptr = std::string("/service/") + key;
    std::string field = std::string("service.") + key;
    check_error(with(ptr, 0), field, field + ": must be between 1 and 65535 (got 0)");
    check_error(with(ptr, 65536), field, "must be between 1 and 65535 (got 65536)");
    check_error(with(ptr, "8080"), field, "must be an integer (got string)");
    check_error(with(ptr, 80.5), field, "must be an integer (got 80.5)");
  }
  auto c = parse(with("/service/health_port", 1, with("/service/metrics_port", 65535)));
  CHECK(c.service->health_port == 1);
  CHECK(c.service->metrics_port == 65535);
  auto n = parse(with("/service/health_port", nullptr, with("/service/metrics_port", nullptr)));
  CHECK_FALSE(n.service->health_port);
  CHECK_FALSE(n.service->metrics_port);
}

TEST_CASE("service paths are strings starting with '/'", "[config][service]") {
  for (const char* key : {"health_path", "metrics_path"}) {
    INFO(key);
    std::string ptr = std::string("/service/") + key;
    std::string field = std::string("service.") + key;
    check_error(with(ptr, "health"), field, field + ": must start with '/' (got \"health\")");
    check_error(with(ptr, ""), field, "must start with '/' (got \"\")");
    check_error(with(ptr, 1), field, "must be a string (got number)");
  }
  auto c = parse(with("/service/health_path", "/live", with("/service/metrics_path", "/prom")));
  CHECK(c.service->health_path == "/live");
  CHECK(c.service->metrics_path == "/prom");
}

TEST_CASE("service.health_host is a non-empty string", "[config][service]") {
  check_error(with("/service/health_host", ""), "service.health_host",
              "service.health_host: must not be empty");
  check_error(with("/service/health_host", " "), "service.health_host", "must not be empty");
  check_error(with("/service/health_host", 127), "service.health_host",
              "must be a string (got number)");
  CHECK(parse(with("/service/health_host", "::1")).service->health_host == "::1");
}

TEST_CASE("service.shutdown_timeout is a number > 0", "[config][service]") {
  check_error(with("/service/shutdown_timeout", 0), "service.shutdown_timeout",
              "service.shutdown_timeout: must be > 0 (got 0)");
  check_error(with("/service/shutdown_timeout", "5"), "service.shutdown_timeout",
              "must be a number (got string)");
  CHECK(parse(with("/service/shutdown_timeout", 2.5)).service->shutdown_timeout == 2.5);
}

TEST_CASE("metrics alone creates a default service with its port and paths", "[config][metrics]") {
  auto c =
      parse(with("/metrics", {{"port", 28282}, {"health_path", "/hz"}, {"metrics_path", "/m"}}));
  REQUIRE(c.metrics);
  CHECK(c.metrics->port == 28282);
  REQUIRE(c.service);
  CHECK(c.service->name == "kryten-service");
  CHECK(c.service->health_port == 28282);
  CHECK(c.service->metrics_port == 28282);
  CHECK(c.service->health_path == "/hz");
  CHECK(c.service->metrics_path == "/m");
}

TEST_CASE("an empty metrics object keeps the default paths and no ports", "[config][metrics]") {
  auto c = parse(with("/metrics", json::object()));
  REQUIRE(c.metrics);
  CHECK_FALSE(c.metrics->port);
  CHECK(c.metrics->health_path == "/health");
  CHECK(c.metrics->metrics_path == "/metrics");
  REQUIRE(c.service);
  CHECK_FALSE(c.service->health_port);
  CHECK_FALSE(c.service->metrics_port);
  CHECK(c.service->health_path == "/health");
}

TEST_CASE("metrics.port only fills service ports left unset", "[config][metrics]") {
  auto base = with("/metrics/port", 28282);
  auto c = parse(with("/service/health_port", 8080, base));
  CHECK(c.service->health_port == 8080);
  CHECK(c.service->metrics_port == 28282);
  auto d = parse(with("/service/metrics_port", 9090, base));
  CHECK(d.service->health_port == 28282);
  CHECK(d.service->metrics_port == 9090);
}

TEST_CASE("metrics paths apply only where service sets none", "[config][metrics]") {
  auto base = with("/metrics", {{"health_path", "/mh"}, {"metrics_path", "/mm"}});
  auto c = parse(with("/service/health_path", "/sh", base));
  CHECK(c.service->health_path == "/sh");
  CHECK(c.service->metrics_path == "/mm");
  // A service path equal to the default still counts as set.
  auto d = parse(with("/service/metrics_path", "/metrics", base));
  CHECK(d.service->health_path == "/mh");
  CHECK(d.service->metrics_path == "/metrics");
}

TEST_CASE("metrics_port falls back to health_port", "[config][metrics]") {
  auto c = parse(with("/service/health_port", 8080));
  CHECK(c.service->metrics_port == 8080);
  auto d = parse(with("/service/health_port", 8080, with("/service/metrics_port", 9090)));
  CHECK(d.service->metrics_port == 9090);
}

TEST_CASE("metrics fields are validated", "[config][metrics]") {
  check_error(with("/metrics", json::array()), "metrics", "metrics: must be an object (got array)");
  check_error(with("/metrics/port", 0), "metrics.port",
              "metrics.port: must be between 1 and 65535 (got 0)");
  check_error(with("/metrics/port", 70000), "metrics.port",
              "must be between 1 and 65535 (got 70000)");
  check_error(with("/metrics/port", "28282"), "metrics.port", "must be an integer (got string)");
  check_error(with("/metrics/health_path", "h"), "metrics.health_path",
              "metrics.health_path: must start with '/'");
  check_error(with("/metrics/metrics_path", 1), "metrics.metrics_path",
              "must be a string (got number)");
  auto c = parse(with("/metrics", nullptr));
  CHECK_FALSE(c.metrics);
  CHECK_FALSE(c.service);
}

TEST_CASE("retry_attempts is an integer >= 0", "[config][tunables]") {
  check_error(with("/retry_attempts", -1), "retry_attempts",
              "retry_attempts: must be >= 0 (got -1)");
  check_error(with("/retry_attempts", 1.5), "retry_attempts", "must be an integer (got 1.5)");
  CHECK(parse(with("/retry_attempts", 0)).retry_attempts == 0);
}

TEST_CASE("retry_delay is a number >= 0", "[config][tunables]") {
  check_error(with("/retry_delay", -0.1), "retry_delay", "retry_delay: must be >= 0 (got -0.1)");
  CHECK(parse(with("/retry_delay", 0)).retry_delay == 0.0);
  CHECK(parse(with("/retry_delay", 2)).retry_delay == 2.0);
}

TEST_CASE("chat_min_delay and chat_jitter are numbers >= 0", "[config][tunables]") {
  for (const char* field : {"chat_min_delay", "chat_jitter"}) {
    INFO(field);
    auto pointer = std::string{"/"} + field;
    check_error(with(pointer, -0.5), field, std::string{field} + ": must be >= 0 (got -0.5)");
    check_error(with(pointer, "1"), field, field);
    CHECK(parse(with(pointer, 0)).warnings.empty());
  }
  auto c = parse(with("/chat_min_delay", 2.5, with("/chat_jitter", 0)));
  CHECK(c.chat_min_delay == 2.5);
  CHECK(c.chat_jitter == 0.0);
}

TEST_CASE("handler_timeout is a number > 0", "[config][tunables]") {
  check_error(with("/handler_timeout", 0), "handler_timeout",
              "handler_timeout: must be > 0 (got 0)");
  CHECK(parse(with("/handler_timeout", 0.5)).handler_timeout == 0.5);
}

TEST_CASE("max_concurrent_handlers is an integer >= 1", "[config][tunables]") {
  check_error(with("/max_concurrent_handlers", 0), "max_concurrent_handlers",
              "max_concurrent_handlers: must be >= 1 (got 0)");
  CHECK(parse(with("/max_concurrent_handlers", 1)).max_concurrent_handlers == 1);
}

TEST_CASE("handler_queue_size is an integer >= 1", "[config][tunables]") {
  check_error(with("/handler_queue_size", 0), "handler_queue_size",
              "handler_queue_size: must be >= 1 (got 0)");
  check_error(with("/handler_queue_size", 2.5), "handler_queue_size",
              "must be an integer (got 2.5)");
  CHECK(parse(with("/handler_queue_size", 1)).handler_queue_size == 1);
  CHECK(parse(with("/handler_queue_size", 5000000000LL)).handler_queue_size == 5000000000LL);
}

TEST_CASE("handler_queue_bytes is an integer >= 4096", "[config][tunables]") {
  check_error(with("/handler_queue_bytes", 4095), "handler_queue_bytes",
              "handler_queue_bytes: must be >= 4096 (got 4095)");
  check_error(with("/handler_queue_bytes", 65536.5), "handler_queue_bytes", "must be an integer");
  CHECK(parse(with("/handler_queue_bytes", 4096)).handler_queue_bytes == 4096);
  CHECK(parse(with("/handler_queue_bytes", 1LL << 40)).handler_queue_bytes == 1LL << 40);
}

TEST_CASE("log_level is a known level, case-insensitive, stored uppercased", "[config][tunables]") {
  CHECK(parse(with("/log_level", "debug")).log_level == "DEBUG");
  CHECK(parse(with("/log_level", "Warning")).log_level == "WARNING");
  CHECK(parse(with("/log_level", "warn")).log_level == "WARN");
  CHECK(parse(with("/log_level", "error")).log_level == "ERROR");
  CHECK(parse(with("/log_level", "CRITICAL")).log_level == "CRITICAL");
  check_error(
      with("/log_level", "verbose"), "log_level",
      "log_level: must be one of DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL (got \"verbose\")");
  check_error(with("/log_level", 10), "log_level", "must be a string (got number)");
}

TEST_CASE("a bool is never a number", "[config][types]") {
  for (const char* ptr : {"/nats/connect_timeout", "/nats/ping_interval", "/retry_delay",
                          "/handler_timeout", "/service/shutdown_timeout"}) {
    INFO(ptr);
    CHECK_THROWS_WITH(parse(with(ptr, true)), Contains("must be a number (got boolean)"));
  }
  for (const char* ptr :
       {"/nats/max_reconnect_attempts", "/nats/pending_msgs_limit", "/retry_attempts",
        "/max_concurrent_handlers", "/handler_queue_size", "/handler_queue_bytes",
        "/metrics/port"}) {
    INFO(ptr);
    CHECK_THROWS_WITH(parse(with(ptr, false)), Contains("must be an integer (got boolean)"));
  }
}

TEST_CASE("wrong JSON types anywhere are config errors", "[config][types]") {
  const char* pointers[] = {"/nats/servers",
                            "/nats/servers/0",
                            "/nats/user",
                            "/nats/password",
                            "/nats/connect_timeout",
                            "/nats/reconnect_time_wait",
                            "/nats/max_reconnect_attempts",
                            "/nats/pending_bytes_limit",
                            "/channels",
                            "/channels/0",
                            "/channels/0/domain",
                            "/channels/0/channel",
                            "/service",
                            "/service/name",
                            "/service/version",
                            "/service/enable_heartbeat",
                            "/service/heartbeat_interval",
                            "/service/health_port",
                            "/service/health_path",
                            "/service/health_host",
                            "/metrics",
                            "/metrics/port",
                            "/metrics/health_path",
                            "/retry_attempts",
                            "/retry_delay",
                            "/handler_timeout",
                            "/max_concurrent_handlers",
                            "/handler_queue_size",
                            "/handler_queue_bytes",
                            "/log_level"};
  const json wrong[] = {json::array({1, 2}), json::object({{"k", 1}}), "text", 3.5, -7, true};
  for (const char* ptr : pointers) {
    for (const auto& value : wrong) {
      INFO(ptr << " = " << value.dump());
      auto j = with(ptr, value);
      try {
        parse(j);  // some values are legal for some fields; only the exception type matters
      } catch (const config_error&) {
      } catch (const std::exception& e) {
        FAIL("unexpected exception: " << e.what());
      }
    }
  }
}

TEST_CASE("unknown keys are warnings, not errors", "[config][warnings]") {
  auto j = minimal();
  j["colour"] = "blue";
  j["nats"]["sever"] = "nats://typo";
  j["channels"][0]["room"] = "x";
  j["service"] = {{"nam", "typo"}};
  j["metrics"] = {{"prot", 1}};
  auto c = parse(j);
  using Catch::Matchers::VectorContains;
  CHECK(c.warnings.size() == 5);
  CHECK_THAT(c.warnings, VectorContains(std::string("unknown key 'colour' ignored")));
  CHECK_THAT(c.warnings, VectorContains(std::string("unknown key 'nats.sever' ignored")));
  CHECK_THAT(c.warnings, VectorContains(std::string("unknown key 'channels[0].room' ignored")));
  CHECK_THAT(c.warnings, VectorContains(std::string("unknown key 'service.nam' ignored")));
  CHECK_THAT(c.warnings, VectorContains(std::string("unknown key 'metrics.prot' ignored")));
  CHECK(c.service->name == "kryten-service");
}

TEST_CASE("secret values never appear in errors or warnings", "[config][secrets]") {
  for (const char* key : {"password", "token"}) {
    INFO(key);
    std::string ptr = std::string("/nats/") + key;
    CHECK_THROWS_WITH(parse(with(ptr, 987654321)),
                      !Contains("987654321") && Contains("got number"));
    CHECK_THROWS_WITH(parse(with(ptr, {"s3cr3t-value"})), !Contains("s3cr3t"));
    CHECK_THROWS_WITH(parse(with(ptr, {{"v", "s3cr3t-value"}})), !Contains("s3cr3t"));
  }
  auto j = with("/nats/password", "s3cr3t-value", with("/nats/token", "s3cr3t-token"));
  j["nats"]["extra"] = "s3cr3t-extra";
  auto c = parse(j);
  for (const auto& w : c.warnings) CHECK_THAT(w, !Contains("s3cr3t"));
  // An error elsewhere in a config with secrets does not echo them either.
  CHECK_THROWS_WITH(parse(with("/nats/connect_timeout", 0, j)), !Contains("s3cr3t"));
}

TEST_CASE("config_from_command_line: --config, usage and config errors", "[config]") {
  std::ostringstream err;
  const char* none[] = {"my_bot"};
  ::unsetenv("KRYTEN_CONFIG");
  CHECK_FALSE(kryten::config_from_command_line(1, none, err));
  CHECK(err.str().find("usage: my_bot --config FILE") != std::string::npos);

  temp_file bad(R"({"nats":{"servers":[]},"channels":[{"domain":"a","channel":"b"}]})");
  const char* with_bad[] = {"my_bot", "--config", bad.path().c_str()};
  err.str("");
  CHECK_FALSE(kryten::config_from_command_line(3, with_bad, err));
  CHECK(err.str().find("config error: nats.servers") != std::string::npos);

  temp_file good(R"({"nats":{"servers":["nats://127.0.0.1:4222"]},
                     "channels":[{"domain":"cytu.be","channel":"lounge"}]})");
  std::string arg = "--config=" + good.path();
  const char* with_good[] = {"my_bot", arg.c_str()};
  auto cfg = kryten::config_from_command_line(2, with_good, err);
  REQUIRE(cfg);
  CHECK(cfg->channels.front().channel == "lounge");
}
