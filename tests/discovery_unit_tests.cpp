// The NATS Service API's identity rules (PROTOCOL.md §8): a service name of
// [A-Za-z0-9_-]+ and a SemVer 2.0.0 version, or the API is not served.
#include <string>

#include <catch2/catch.hpp>

#include "actors/discovery_actor.hpp"

using kryten::detail::micro_identity_ok;

namespace {

bool version_ok(const std::string& v) {
  std::string why;
  return micro_identity_ok("bot", v, why);
}

}  // namespace

TEST_CASE("SemVer versions are accepted as semver.org defines them", "[discovery][semver]") {
  for (auto v : {"1.0.0", "0.1.2", "10.20.30", "1.2.3-alpha", "1.2.3-alpha.1", "1.2.3-0.3.7",
                 "1.0.0-x.7.z.92", "1.0.0-alpha-a.b-c", "1.0.0+20130313144700",
                 "1.0.0-beta+exp.sha.5114f85", "1.0.0+001"}) {
    INFO(v);
    CHECK(version_ok(v));
  }
  for (auto v : {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3-01",
                 "1.2.3+", "1.2.3-a..b", "1.2.3-a.", "a.b.c", "1.2.3-a_b", "1.2.3+a_b", "v1.2.3",
                 "1.2.3 ", "1..3"}) {
    INFO(v);
    CHECK_FALSE(version_ok(v));
  }
}

TEST_CASE("service names for the Service API are [A-Za-z0-9_-]+", "[discovery][names]") {
  std::string why;
  CHECK(micro_identity_ok("echo-bot_1", "1.0.0", why));
  for (auto name : {"", "echo bot", "bot.x", "bot*", "b\u00e9t"}) {
    INFO(name);
    CHECK_FALSE(micro_identity_ok(name, "1.0.0", why));
    CHECK(why.find("service name") == 0);
  }
  CHECK_FALSE(micro_identity_ok("bot", "1.0", why));
  CHECK(why == "version '1.0' is not SemVer");
}
