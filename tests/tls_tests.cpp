// TLS against a real nats-server with certificates made by openssl at test
// time: a CA, a server certificate for 127.0.0.1, a client certificate, and a
// second CA that signed none of them.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include <kryten/kryten.hpp>
#include <nlohmann/json.hpp>

#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/temp_file.hpp"
#include "support/text.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;
using kryten::test::child_process;
using kryten::test::contains;
using kryten::test::make_config;
using kryten::test::nats_server;
using kryten::test::temp_dir;
using kryten::test::temp_file;
using kryten::test::wait_until;

namespace {

/// The certificates, made once per test in a folder of their own.
struct test_pki {
  temp_dir dir;
  std::string path(const std::string& name) const { return dir.path() + "/" + name; }
  std::string ca() const { return path("ca.pem"); }
  std::string other_ca() const { return path("other-ca.pem"); }
  std::string server_cert() const { return path("server.pem"); }
  std::string server_key() const { return path("server.key"); }
  std::string client_cert() const { return path("client.pem"); }
  std::string client_key() const { return path("client.key"); }

  test_pki() {
    const std::string script = R"(set -e
cd ")" + dir.path() + R"("
req() { openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null; }
ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$1" 2>/dev/null; }
sign() { openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null; }
ca ca; ca other-ca
req server 127.0.0.1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
sign server
req client kryten-service
printf 'extendedKeyUsage=clientAuth\n' > client.ext
sign client
)";
    temp_file sh{script, ".sh"};
    if (std::system(("bash " + sh.path()).c_str()) != 0)
      throw std::runtime_error("openssl could not make the test certificates");
  }

  /// nats-server settings: TLS with this server certificate; with
  /// `client_certs`, clients must present a certificate signed by the CA.
  std::string server_tls(bool client_certs) const {
    std::string block = "tls { cert_file: \"" + server_cert() + "\", key_file: \"" + server_key()
                        + "\", timeout: 2";
    if (client_certs) block += ", ca_file: \"" + ca() + "\", verify: true";
    return block + " }";
  }
};

nats_server tls_server(const test_pki& pki, bool client_certs) {
  nats_server::options o;
  o.config = pki.server_tls(client_certs);
  return nats_server{o};
}

std::string tls_url(const nats_server& s) { return "tls://127.0.0.1:" + std::to_string(s.port()); }

/// Connects over TLS and sends a message to itself through the server.
void check_round_trip(kryten::kryten_config cfg) {
  kryten::client client{std::move(cfg)};
  std::atomic<int> got{0};
  client.connect();
  REQUIRE(client.is_connected());
  client.subscribe("tls.check", [&](const kryten::bus_message&) { ++got; });
  REQUIRE(wait_until(
    [&] {
      client.publish("tls.check", std::string_view{"hello"});
      return got > 0;
    },
    5s, 100ms));
  CHECK(client.health().connected);
  client.disconnect();
}

json bot_config(const std::string& url, json nats_extra) {
  json nats = {{"servers", {url}}, {"connect_timeout", 2}, {"max_reconnect_attempts", 0}};
  nats.update(nats_extra);
  return {{"nats", nats},
          {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
          {"service", {{"name", "tls-bot"}, {"health_port", nullptr}}},
          {"log_level", "INFO"}};
}

struct bot_exit {
  std::optional<int> code;
  std::string err;
  std::chrono::milliseconds took{0};
};

bot_exit run_echo_bot(const json& cfg) {
  temp_file file{cfg.dump()};
  child_process bot({KRYTEN_ECHO_BOT, "--config", file.path()});
  bot_exit out;
  out.took = kryten::test::time_of([&] { out.code = bot.wait_for_exit(20s); });
  out.err = bot.stderr_text() + bot.stdout_text();
  return out;
}

}  // namespace

TEST_CASE("a tls:// server is verified with tls_ca", "[tls][process]") {
  test_pki pki;
  auto server = tls_server(pki, false);
  auto cfg = make_config(tls_url(server), "tls-bot");
  cfg.nats.tls_ca = pki.ca();
  check_round_trip(cfg);
}

TEST_CASE("a server certificate from another CA fails with exit 1 within connect_timeout",
          "[tls][process]") {
  test_pki pki;
  auto server = tls_server(pki, false);
  auto out = run_echo_bot(bot_config(tls_url(server), {{"tls_ca", pki.other_ca()}}));
  INFO(out.err);
  CHECK(out.code == 1);
  CHECK(out.took < 3s);  // connect_timeout 2 s
  CHECK(contains(out.err, "cannot connect to NATS at " + tls_url(server)));
  CHECK(contains(out.err, "SSL"));
  CHECK(contains(out.err, "certificate"));
}

TEST_CASE("mutual TLS: a server requiring client certificates takes tls_cert and tls_key",
          "[tls][process]") {
  test_pki pki;
  auto server = tls_server(pki, true);
  auto cfg = make_config(tls_url(server), "tls-bot");
  cfg.nats.tls_ca = pki.ca();

  SECTION("without a client certificate the connection is refused") {
    kryten::client client{cfg};
    CHECK_THROWS_AS(client.connect(), kryten::connect_error);
    CHECK_FALSE(client.is_connected());
  }
  SECTION("with one it connects") {
    cfg.nats.tls_cert = pki.client_cert();
    cfg.nats.tls_key = pki.client_key();
    check_round_trip(cfg);
  }
}

TEST_CASE("a missing certificate file is a config error naming the field (exit 2)",
          "[tls][process][config]") {
  test_pki pki;
  auto server = tls_server(pki, false);
  const std::string missing = pki.path("no-such-ca.pem");
  auto out = run_echo_bot(bot_config(tls_url(server), {{"tls_ca", missing}}));
  INFO(out.err);
  CHECK(out.code == 2);
  CHECK(contains(out.err, "nats.tls_ca: file cannot be read or is empty"));

  out = run_echo_bot(
    bot_config(tls_url(server), {{"tls_ca", pki.ca()}, {"tls_cert", pki.client_cert()},
                                 {"tls_key", pki.path("missing.key")}}));
  INFO(out.err);
  CHECK(out.code == 2);
  CHECK(contains(out.err, "nats.tls_key"));
}
