// The route table: every change is a new version that the event path picks
// up, and an old version is freed once nobody uses it any more.
#include <memory>

#include <catch2/catch.hpp>

#include "actors/handler_registry.hpp"

using kryten::detail::handler_registry;
using kryten::detail::handler_route;

namespace {

handler_route route(const std::string& label) {
  handler_route r;
  r.event_name = "chatmsg";
  r.label = label;
  r.stats = std::make_shared<kryten::detail::handler_stats>();
  return r;
}

}  // namespace

TEST_CASE("route versions are freed once no snapshot holds them", "[registry]") {
  handler_registry registry;
  auto first = registry.current();
  CHECK(first.routes->empty());
  registry.add(route("chatmsg#1"));
  CHECK(registry.version() != first.version);
  auto second = registry.current();
  REQUIRE(second.routes->size() == 1);
  CHECK(second.routes->at(0).label == "chatmsg#1");

  std::weak_ptr<const kryten::detail::route_list> old = second.routes;
  registry.add(route("chatmsg#2"));
  registry.remove("chatmsg#1");
  CHECK_FALSE(old.expired());  // a delivery thread still uses it
  second = registry.current();
  CHECK(old.expired());
  REQUIRE(second.routes->size() == 1);
  CHECK(second.routes->at(0).label == "chatmsg#2");
  // The first snapshot is still valid, and unchanged.
  CHECK(first.routes->empty());
}
