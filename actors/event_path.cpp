#include "actors/event_path.hpp"

#include <algorithm>
#include <variant>

#include <caf/all.hpp>

#include "actors/memory_release.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

/// Whether cnats holds more messages for `sub` right now (its next callback
/// follows at once); `peak_bytes` keeps the most they held.
bool more_pending(natsSubscription* sub, std::int64_t& peak_bytes) {
  int msgs = 0;
  int bytes = 0;
  if (natsSubscription_GetPending(sub, &msgs, &bytes) != NATS_OK)
    return false;
  peak_bytes = std::max<std::int64_t>(peak_bytes, bytes);
  return msgs > 0;
}

}  // namespace

void event_subscription::wake_all() {
  for (auto* route : to_wake)
    wake(*route);
  to_wake.clear();
}

void event_subscription::refresh_routes() {
  if (routes.routes && registry->version() == routes.version)
    return;
  wake_all();
  routes = registry->current();
}

void event_subscription::handle(const char* subj, std::string_view body, bool more_coming) {
  auto arrived = steady_ns();
  bump(stats->received);
  stats->last_event_unix_ns.store(unix_ns(), std::memory_order_relaxed);
  event_envelope env;
  if (auto err = decoder.decode_envelope(body, env); err != decode_error::none) {
    bump(stats->decode_errors[static_cast<std::size_t>(err)]);
    report_bad(err, subj, body.size());
    return;
  }
  lowercase_name.assign(env.event_name);
  for (auto& c : lowercase_name)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  matched.clear();
  refresh_routes();
  for (auto& route : *routes.routes)
    if (route.matches(lowercase_name, env.channel, env.domain))
      matched.push_back(&route);
  if (matched.empty()) {
    bump(stats->unmatched);
    return;
  }
  env.subject = subj;
  env.received_ns = arrived;
  auto typed = decoder.to_typed(std::move(env));
  auto msg = std::visit([](auto& x) { return caf::make_message(std::move(x)); }, typed);
  auto bytes = queued_event_bytes(body.size());
  for (auto* route : matched) {
    bool later = false;
    if (!offer(*route, msg, bytes, more_coming ? &later : nullptr))
      report_drop(*route);
    if (later && std::find(to_wake.begin(), to_wake.end(), route) == to_wake.end())
      to_wake.push_back(route);
  }
}

void event_subscription::report_bad(decode_error err, const char* subj, std::size_t size) {
  std::uint64_t suppressed = 0;
  if (limiter.admit(to_string(err), suppressed))
    log->warn("skipped bad message on {} [{}], {} bytes{}", subj, to_string(err), size,
              suppressed ? fmt::format(" ({} more like it suppressed)", suppressed) : "");
}

void event_subscription::report_drop(const handler_route& route) {
  std::uint64_t suppressed = 0;
  if (!limiter.admit("drop:" + route.label, suppressed))
    return;
  auto more = suppressed ? fmt::format(" ({} more dropped since)", suppressed) : "";
  if (route.inbox)
    log->warn("handler {} has {} events queued holding {} of its {} bytes: event dropped{}",
              route.label, route.inbox->size_hint(), route.inbox->bytes(),
              route.inbox->byte_limit(), more);
  else
    log->warn("handler {} has {} events queued (its limit): event dropped{}", route.label,
              route.capacity, more);
}

void on_event_msg(natsConnection*, natsSubscription* nsub, natsMsg* msg, void* closure) {
  auto* sub = static_cast<event_subscription*>(closure);
  if (!enter_delivery(*sub->stats)) {  // past the drain deadline: abandoned, counted
    natsMsg_Destroy(msg);
    return;
  }
  // With more pending, the next callback follows at once and wakes the handlers.
  bool more = more_pending(nsub, sub->backlog_peak_bytes);
  sub->handle(natsMsg_GetSubject(msg),
              std::string_view{natsMsg_GetData(msg),
                               static_cast<std::size_t>(natsMsg_GetDataLength(msg))},
              more);
  natsMsg_Destroy(msg);
  if (!more) {
    sub->wake_all();
    // A backlog that cnats held is worked off: its memory goes back.
    release_after_backlog(sub->backlog_peak_bytes, "subscription", sub->subject, sub->log);
  }
  leave_delivery(*sub->stats);
}

/// After the subscription's last message callback: events it left for a
/// later wake-up (it was closed with more pending) are woken for now.
void complete_event_subscription(void* closure) {
  auto* sub = static_cast<event_subscription*>(closure);
  sub->wake_all();
  delete sub;
}

void on_plain_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* sub = static_cast<plain_subscription*>(closure);
  auto reply = natsMsg_GetReply(msg);
  bus_message m{natsMsg_GetSubject(msg),
                std::string{natsMsg_GetData(msg),
                            static_cast<std::size_t>(natsMsg_GetDataLength(msg))},
                reply ? reply : ""};
  natsMsg_Destroy(msg);
  auto bytes = queued_event_bytes(m);
  offer(sub->route, caf::make_message(std::move(m)), bytes);
}

}  // namespace kryten::detail
