#include "actors/handler_registry.hpp"

#include <algorithm>

#include <caf/send.hpp>

namespace kryten::detail {

bool handler_route::matches(std::string_view lowercase_name, std::string_view channel_of_event,
                            std::string_view domain_of_event) const {
  if (event_name != "*" && event_name != lowercase_name)
    return false;
  if (!channel.empty() && channel != channel_of_event)
    return false;
  return domain.empty() || domain == domain_of_event;
}

handler_registry::handler_registry() : routes_(std::make_shared<const route_list>()) {}

template <class Change>
void handler_registry::update(Change change) {
  std::lock_guard<std::mutex> guard{mx_};
  auto next = std::make_shared<route_list>(*routes_);
  change(*next);
  routes_ = std::move(next);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

handler_registry::snapshot handler_registry::current() const {
  std::lock_guard<std::mutex> guard{mx_};
  return {routes_, version_.load(std::memory_order_acquire)};
}

void handler_registry::add(handler_route route) {
  update([&](route_list& routes) { routes.push_back(std::move(route)); });
}

void handler_registry::replace(const std::string& label, caf::actor actor) {
  update([&](route_list& routes) {
    for (auto& r : routes)
      if (r.label == label)
        r.actor = actor;
  });
}

void handler_registry::remove(const std::string& label) {
  update([&](route_list& routes) {
    routes.erase(std::remove_if(routes.begin(), routes.end(),
                                [&](const handler_route& r) { return r.label == label; }),
                 routes.end());
  });
}

void wake(const handler_route& route) {
  if (route.inbox && route.inbox->claim())
    caf::anon_send(route.actor, drain_atom::value);
}

bool offer(const handler_route& route, const caf::message& msg, std::size_t bytes,
           bool* wake_later) {
  auto& queued = route.stats->queued;
  if (queued.fetch_add(1, std::memory_order_relaxed) >= route.capacity) {
    queued.fetch_sub(1, std::memory_order_relaxed);
    bump(route.stats->dropped);
    return false;
  }
  if (!route.inbox) {
    caf::anon_send(route.actor, msg);
    return true;
  }
  auto held = static_cast<std::uint32_t>(std::min<std::size_t>(bytes, UINT32_MAX));
  if (!route.inbox->push(msg, held)) {  // its memory bound
    queued.fetch_sub(1, std::memory_order_relaxed);
    bump(route.stats->dropped);
    return false;
  }
  // A wake-up (a message, a sleeping scheduler thread signalled) costs more
  // than an event: the caller may let a few gather first.
  if (wake_later != nullptr) {
    *wake_later = route.inbox->size_hint() < wake_batch;
    if (*wake_later)
      return true;
  }
  wake(route);
  return true;
}

}  // namespace kryten::detail
