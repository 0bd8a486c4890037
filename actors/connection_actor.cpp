#include "actors/connection_actor.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <unordered_map>

#include <caf/all.hpp>
#include <nats/nats.h>

#include "actors/log_limiter.hpp"
#include "kryten/errors.hpp"
#include "kryten/event_decoder.hpp"
#include "kryten/logging.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

using namespace std::chrono_literals;
using drop_check_atom = caf::atom_constant<caf::atom("kdropchk")>;
using reply_atom = caf::atom_constant<caf::atom("kreply")>;

constexpr auto drop_check_interval = 1s;
constexpr std::int64_t flush_timeout_ms = 5000;

int clamp_limit(std::int64_t v) {
  return v < 0 ? -1 : static_cast<int>(std::min<std::int64_t>(v, INT_MAX));
}

std::string nats_error_text(natsStatus s) {
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::string text = natsStatus_GetText(s);
  if (detail != nullptr && *detail != '\0' && text != detail)
    text += std::string{" ("} + detail + ")";
  return text;
}

std::string connected_url(natsConnection* nc) {
  char buf[256] = {0};
  if (nc == nullptr || natsConnection_GetConnectedUrl(nc, buf, sizeof(buf)) != NATS_OK)
    return {};
  return redact_url(buf);
}

// -- event subscriptions: run on the subscription's cnats delivery thread ------

/// Everything one channel's subscription needs on its delivery thread. Owned
/// by cnats once subscribed: freed by the subscription's on-complete callback,
/// after the last message callback has returned.
struct event_subscription {
  std::string subject;
  std::shared_ptr<handler_registry> registry;
  std::shared_ptr<subscription_stats> stats;
  std::shared_ptr<spdlog::logger> log;
  event_decoder decoder;
  log_limiter limiter;
  std::string lowercase_name;  // reused buffer
  std::vector<const handler_route*> matched;
  // The routes this thread uses; to_wake points into them, so they are
  // renewed only after those wake-ups went out.
  handler_registry::snapshot routes;
  // Handlers with events not yet woken for: woken when cnats has no more pending.
  std::vector<const handler_route*> to_wake;

  /// Takes the registry's newest routes if they changed.
  void refresh_routes();

  void handle(const char* subj, std::string_view body, bool more_coming);
  void wake_all();
  void report_bad(decode_error err, const char* subj, std::size_t size);
  void report_drop(const handler_route& route);
};

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
  for (auto* route : matched) {
    bool later = false;
    if (!offer(*route, msg, more_coming ? &later : nullptr))
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
  if (limiter.admit("drop:" + route.label, suppressed))
    log->warn("handler {} is {} events behind (its queue limit): event dropped{}", route.label,
              route.capacity,
              suppressed ? fmt::format(" ({} more dropped since)", suppressed) : "");
}

/// Whether cnats holds more messages for `sub` right now (its next callback
/// follows at once).
bool more_pending(natsSubscription* sub) {
  int msgs = 0;
  int bytes = 0;
  return natsSubscription_GetPending(sub, &msgs, &bytes) == NATS_OK && msgs > 0;
}

void on_event_msg(natsConnection*, natsSubscription* nsub, natsMsg* msg, void* closure) {
  auto* sub = static_cast<event_subscription*>(closure);
  bool more = more_pending(nsub);  // then the next callback wakes the handlers
  sub->handle(natsMsg_GetSubject(msg),
              std::string_view{natsMsg_GetData(msg),
                               static_cast<std::size_t>(natsMsg_GetDataLength(msg))},
              more);
  if (!more)
    sub->wake_all();
  natsMsg_Destroy(msg);
}

template <class T>
void delete_closure(void* closure) {
  delete static_cast<T*>(closure);
}

/// After the subscription's last message callback: events it left for a
/// later wake-up (it was closed with more pending) are woken for now.
void complete_event_subscription(void* closure) {
  auto* sub = static_cast<event_subscription*>(closure);
  sub->wake_all();
  delete sub;
}

// -- plain subscriptions and request replies -------------------------------------

struct plain_subscription {
  handler_route route;
};

void on_plain_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* sub = static_cast<plain_subscription*>(closure);
  auto reply = natsMsg_GetReply(msg);
  bus_message m{natsMsg_GetSubject(msg),
                std::string{natsMsg_GetData(msg),
                            static_cast<std::size_t>(natsMsg_GetDataLength(msg))},
                reply ? reply : ""};
  natsMsg_Destroy(msg);
  offer(sub->route, caf::make_message(std::move(m)));
}

struct reply_inbox {
  caf::actor owner;
  std::size_t prefix_len;  // "_INBOX.xxx." : the token follows
};

void on_reply_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* inbox = static_cast<reply_inbox*>(closure);
  std::string_view subject = natsMsg_GetSubject(msg);
  auto token = std::strtoull(std::string{subject.substr(inbox->prefix_len)}.c_str(), nullptr, 10);
  bool no_responders = natsMsg_IsNoResponders(msg);
  std::string data{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
  natsMsg_Destroy(msg);
  caf::anon_send(inbox->owner, reply_atom::value, static_cast<std::uint64_t>(token),
                 std::move(data), no_responders);
}

// -- connection-level callbacks: cnats' callback thread ---------------------------

struct connection_events {
  caf::actor owner;
  std::shared_ptr<connection_stats> stats;
  std::shared_ptr<spdlog::logger> log;
  log_limiter limiter;
};

void send_status(void* closure, connection_state state, natsConnection* nc, std::string reason) {
  auto* ev = static_cast<connection_events*>(closure);
  connection_status st{state, connected_url(nc), std::move(reason), unix_ns()};
  caf::anon_send(ev->owner, nats_event_atom::value, std::move(st));
}

void on_disconnected(natsConnection* nc, void* closure) {
  send_status(closure, connection_state::disconnected, nc, "Connection lost");
}

void on_reconnected(natsConnection* nc, void* closure) {
  send_status(closure, connection_state::connected, nc, "");
}

void on_closed(natsConnection* nc, void* closure) {
  send_status(closure, connection_state::closed, nc, "Connection closed");
  delete static_cast<connection_events*>(closure);  // the last callback cnats makes
}

void on_async_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure) {
  auto* ev = static_cast<connection_events*>(closure);
  auto subject = sub ? natsSubscription_GetSubject(sub) : nullptr;
  std::string where = subject ? subject : "connection";
  if (err == NATS_SLOW_CONSUMER)
    bump(ev->stats->slow_consumer_errors);
  else
    bump(ev->stats->nats_errors);
  std::uint64_t suppressed = 0;
  if (ev->limiter.admit(std::string{natsStatus_GetText(err)} + where, suppressed))
    ev->log->error("NATS error on {}: {}{}", where, natsStatus_GetText(err),
                   suppressed ? fmt::format(" ({} more suppressed)", suppressed) : "");
}

// -- the actor --------------------------------------------------------------------

struct subscription_handle {
  natsSubscription* sub = nullptr;
  std::shared_ptr<subscription_stats> stats;  // null for plain subscriptions
  std::int64_t dropped_seen = 0;
  std::string label;  // plain subscriptions: the handler's label
};

void close_subscriptions(std::vector<subscription_handle>& subs) {
  for (auto& h : subs) {
    natsSubscription_Unsubscribe(h.sub);
    natsSubscription_Destroy(h.sub);
  }
  subs.clear();
}

/// The one owner of the cnats connection and its subscriptions: whatever way
/// the actor ends (a graceful close, an exit, a crash), the destructor closes
/// what is still open. CAF 0.17 destroys an actor's state before its
/// attachables run, so this lives in the state and needs no attachable.
struct nats_session {
  natsConnection* conn = nullptr;
  std::vector<subscription_handle> event_subs;
  std::vector<subscription_handle> plain_subs;
  natsSubscription* inbox_sub = nullptr;

  nats_session() = default;
  nats_session(const nats_session&) = delete;
  nats_session& operator=(const nats_session&) = delete;
  ~nats_session() { close(false); }

  /// Unsubscribes everything and closes the connection; with `flush`, what
  /// was published goes out first (bounded).
  void close(bool flush) {
    if (conn == nullptr)
      return;
    close_subscriptions(event_subs);
    close_subscriptions(plain_subs);
    if (inbox_sub != nullptr) {
      natsSubscription_Unsubscribe(inbox_sub);
      natsSubscription_Destroy(inbox_sub);
      inbox_sub = nullptr;
    }
    if (flush && !natsConnection_IsClosed(conn))
      natsConnection_FlushTimeout(conn, flush_timeout_ms);
    natsConnection_Close(conn);
    natsConnection_Destroy(conn);
    conn = nullptr;
  }
};

struct connection_actor_state {
  connection_spec spec;
  nats_session nats;
  connection_status status;
  std::string inbox_prefix;
  std::uint64_t next_token = 1;
  std::unordered_map<std::uint64_t, caf::response_promise> pending_requests;
  log_limiter limiter;
  bool drop_checks_running = false;
  std::vector<caf::actor> listeners;  // get every connection_status
  static inline const char* name = "kryten.connection";
};

using connection_self = caf::stateful_actor<connection_actor_state>;

void set_status(connection_self* self, connection_status st) {
  auto& s = self->state;
  auto previous = s.status.state;
  if (st.server.empty())
    st.server = s.status.server;
  s.status = std::move(st);
  if (s.status.state == connection_state::connected && previous == connection_state::disconnected)
    bump(s.spec.stats->reconnects);
  if (s.status.state == connection_state::disconnected)
    bump(s.spec.stats->disconnects);
  switch (s.status.state) {
    case connection_state::connected:
      s.spec.log->info("connected to NATS at {}", s.status.server);
      break;
    case connection_state::disconnected:
      s.spec.log->warn("disconnected from NATS ({}): {}", s.status.server, s.status.reason);
      break;
    case connection_state::closed:
      s.spec.log->info("NATS connection closed");
      break;
    default:
      break;
  }
  if (s.spec.on_status)
    s.spec.on_status(s.status);
  for (auto& listener : s.listeners)
    self->send(listener, s.status);
}

natsStatus apply_auth_and_tls(natsOptions* opts, const nats_config& n) {
  natsStatus s = NATS_OK;
  if (n.user)
    s = natsOptions_SetUserInfo(opts, n.user->c_str(), n.password ? n.password->c_str() : "");
  if (s == NATS_OK && n.token)
    s = natsOptions_SetToken(opts, n.token->c_str());
  bool tls = n.tls_ca || n.tls_cert;
  if (s == NATS_OK && tls)
    s = natsOptions_SetSecure(opts, true);
  if (s == NATS_OK && n.tls_ca)
    s = natsOptions_LoadCATrustedCertificates(opts, n.tls_ca->c_str());
  if (s == NATS_OK && n.tls_cert)
    s = natsOptions_LoadCertificatesChain(opts, n.tls_cert->c_str(),
                                          n.tls_key ? n.tls_key->c_str() : nullptr);
  return s;
}

natsStatus make_options(const connection_spec& spec, connection_events* events,
                        natsOptions** out) {
  auto& n = spec.nats;
  std::vector<const char*> servers;
  for (auto& url : n.servers)
    servers.push_back(url.c_str());
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  auto ms = [](double seconds) { return static_cast<int64_t>(seconds * 1000.0); };
  if (s == NATS_OK)
    s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK)
    s = natsOptions_SetNoRandomize(opts, true);
  if (s == NATS_OK)
    s = natsOptions_SetName(opts, spec.client_name.c_str());
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(opts, std::max<int64_t>(1, ms(n.connect_timeout)));
  if (s == NATS_OK)
    s = natsOptions_SetAllowReconnect(opts, true);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(opts, ms(n.reconnect_time_wait));
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(opts, n.max_reconnect_attempts);
  if (s == NATS_OK)
    s = natsOptions_SetPingInterval(opts, std::max<int64_t>(1, ms(n.ping_interval)));
  // Publishes (commands, replies, lifecycle events) go out at once instead of
  // waiting for cnats' flusher: measured, that wait added about 1 ms to every
  // !ping reply; the cost is a write per publish, and a bot publishes far
  // less than it receives.
  if (s == NATS_OK)
    s = natsOptions_SetSendAsap(opts, true);
  if (s == NATS_OK && n.pending_msgs_limit > 0)
    s = natsOptions_SetMaxPendingMsgs(opts, clamp_limit(n.pending_msgs_limit));
  if (s == NATS_OK)
    s = apply_auth_and_tls(opts, n);
  if (s == NATS_OK)
    s = natsOptions_SetErrorHandler(opts, on_async_error, events);
  if (s == NATS_OK)
    s = natsOptions_SetDisconnectedCB(opts, on_disconnected, events);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectedCB(opts, on_reconnected, events);
  if (s == NATS_OK)
    s = natsOptions_SetClosedCB(opts, on_closed, events);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return s;
  }
  *out = opts;
  return NATS_OK;
}

/// Raises cnats' pending limits (65,536 messages by default, then silent drops).
natsStatus raise_limits(natsSubscription* sub, const nats_config& n) {
  return natsSubscription_SetPendingLimits(sub, clamp_limit(n.pending_msgs_limit),
                                           clamp_limit(n.pending_bytes_limit));
}

std::string subscribe_channel(connection_self* self, const channel_config& ch,
                              std::shared_ptr<subscription_stats> stats) {
  auto& s = self->state;
  auto ctx = std::make_unique<event_subscription>();
  ctx->subject = subjects::channel_events(ch.channel);
  ctx->registry = s.spec.registry;
  ctx->stats = stats;
  ctx->log = s.spec.log;
  natsSubscription* sub = nullptr;
  auto subject = ctx->subject;
  natsStatus st = natsConnection_Subscribe(&sub, s.nats.conn, subject.c_str(), on_event_msg, ctx.get());
  if (st == NATS_OK)
    st = natsSubscription_SetOnCompleteCB(sub, complete_event_subscription, ctx.get());
  if (st != NATS_OK) {
    if (sub != nullptr)
      natsSubscription_Destroy(sub);  // ctx is still ours: on-complete was never set
    return "cannot subscribe to " + subject + ": " + nats_error_text(st);
  }
  ctx.release();  // cnats frees it through the on-complete callback
  if (auto lim = raise_limits(sub, s.spec.nats); lim != NATS_OK)
    s.spec.log->warn("cannot raise pending limits on {}: {}", subject, nats_error_text(lim));
  s.nats.event_subs.push_back({sub, std::move(stats), 0, {}});
  s.spec.log->info("subscribed to {}", subject);
  return {};
}

void check_drops(connection_self* self, std::vector<subscription_handle>& subs) {
  for (auto& h : subs) {
    int64_t dropped = 0;
    if (h.sub == nullptr || natsSubscription_GetDropped(h.sub, &dropped) != NATS_OK)
      continue;
    if (dropped > h.dropped_seen) {
      self->state.spec.log->warn(
        "cnats dropped {} messages on {} (pending limits reached; {} in total)",
        dropped - h.dropped_seen, natsSubscription_GetSubject(h.sub), dropped);
      if (h.stats)
        h.stats->dropped_by_nats.store(static_cast<std::uint64_t>(dropped),
                                       std::memory_order_relaxed);
      h.dropped_seen = dropped;
    }
  }
}

std::string connect(connection_self* self) {
  auto& s = self->state;
  if (s.nats.conn != nullptr)
    return {};
  auto* events = new connection_events{caf::actor_cast<caf::actor>(self), s.spec.stats,
                                       s.spec.log, log_limiter{}};
  natsOptions* opts = nullptr;
  natsStatus st = make_options(s.spec, events, &opts);
  if (st == NATS_OK) {
    st = natsConnection_Connect(&s.nats.conn, opts);
    natsOptions_Destroy(opts);
  }
  if (st != NATS_OK) {
    delete events;  // no connection: cnats will never call back
    s.nats.conn = nullptr;
    std::string servers;
    for (auto& url : s.spec.nats.servers)
      servers += (servers.empty() ? "" : ", ") + redact_url(url);
    return "cannot connect to NATS at " + servers + ": " + nats_error_text(st);
  }
  std::string err;
  for (std::size_t i = 0; i < s.spec.channels.size() && err.empty(); ++i)
    err = subscribe_channel(self, s.spec.channels[i], s.spec.channel_stats[i]);
  if (err.empty())
    if (auto fl = natsConnection_FlushTimeout(s.nats.conn, flush_timeout_ms); fl != NATS_OK)
      err = "NATS did not confirm the subscriptions: " + nats_error_text(fl);
  if (!err.empty()) {
    s.nats.close(false);  // a failed connect() leaves nothing connected
    return err;
  }
  set_status(self, {connection_state::connected, connected_url(s.nats.conn), "", unix_ns()});
  return {};
}

bool publish(connection_self* self, const std::string& subject, const std::string& data,
             const char* reply) {
  auto& s = self->state;
  natsStatus st = NATS_CONNECTION_CLOSED;
  // natsConnection_PublishRequest rejects a null or empty reply subject.
  if (s.nats.conn != nullptr)
    st = reply != nullptr && *reply != '\0'
           ? natsConnection_PublishRequest(s.nats.conn, subject.c_str(), reply, data.data(),
                                           static_cast<int>(data.size()))
           : natsConnection_Publish(s.nats.conn, subject.c_str(), data.data(),
                                    static_cast<int>(data.size()));
  if (st == NATS_OK) {
    bump(s.spec.stats->published);
    return true;
  }
  bump(s.spec.stats->publish_errors);
  std::uint64_t suppressed = 0;
  if (s.limiter.admit("publish", suppressed))
    s.spec.log->error("cannot publish to {}: {}{}", subject,
                      s.nats.conn ? nats_error_text(st) : std::string{"not connected"},
                      suppressed ? fmt::format(" ({} more failures suppressed)", suppressed)
                                 : "");
  return false;
}

std::string ensure_inbox(connection_self* self) {
  auto& s = self->state;
  if (s.nats.inbox_sub != nullptr)
    return {};
  natsInbox* inbox = nullptr;
  if (auto st = natsInbox_Create(&inbox); st != NATS_OK)
    return nats_error_text(st);
  s.inbox_prefix = std::string{inbox} + ".";
  natsInbox_Destroy(inbox);
  auto ctx = std::make_unique<reply_inbox>(
    reply_inbox{caf::actor_cast<caf::actor>(self), s.inbox_prefix.size()});
  auto wildcard = s.inbox_prefix + "*";
  auto st = natsConnection_Subscribe(&s.nats.inbox_sub, s.nats.conn, wildcard.c_str(), on_reply_msg,
                                     ctx.get());
  if (st == NATS_OK)
    st = natsSubscription_SetOnCompleteCB(s.nats.inbox_sub, delete_closure<reply_inbox>, ctx.get());
  if (st != NATS_OK) {
    if (s.nats.inbox_sub != nullptr)
      natsSubscription_Destroy(s.nats.inbox_sub);
    s.nats.inbox_sub = nullptr;
    return nats_error_text(st);
  }
  ctx.release();
  return {};
}

caf::result<std::string> request(connection_self* self, const std::string& subject,
                                 const std::string& data, std::int64_t timeout_ms) {
  auto& s = self->state;
  if (s.nats.conn == nullptr)
    return make_error(error_code::not_connected, "not connected to NATS");
  if (auto err = ensure_inbox(self); !err.empty())
    return make_error(error_code::not_connected, "cannot create reply inbox: " + err);
  auto token = s.next_token++;
  auto reply = s.inbox_prefix + std::to_string(token);
  s.pending_requests.emplace(token, self->make_response_promise());
  publish(self, subject, data, reply.c_str());
  self->delayed_send(self, std::chrono::milliseconds(timeout_ms), timeout_atom::value, token,
                     "no reply from " + subject + " within " + std::to_string(timeout_ms)
                       + " ms");
  return s.pending_requests[token];
}

void finish_request(connection_self* self, std::uint64_t token, caf::message result) {
  auto& pending = self->state.pending_requests;
  auto i = pending.find(token);
  if (i == pending.end())
    return;  // answered already, or timed out
  i->second.deliver(std::move(result));
  pending.erase(i);
}

/// With `confirm`, waits until the server has this (and every earlier)
/// subscription: one round trip, so a batch confirms only its last.
std::string subscribe_plain(connection_self* self, const std::string& subject,
                            const std::string& queue, handler_route route, bool confirm) {
  auto& s = self->state;
  if (s.nats.conn == nullptr)
    return "not connected to NATS";
  auto route_label = route.label;
  auto ctx = std::make_unique<plain_subscription>(plain_subscription{std::move(route)});
  natsSubscription* sub = nullptr;
  natsStatus st = queue.empty()
                    ? natsConnection_Subscribe(&sub, s.nats.conn, subject.c_str(), on_plain_msg,
                                               ctx.get())
                    : natsConnection_QueueSubscribe(&sub, s.nats.conn, subject.c_str(),
                                                    queue.c_str(), on_plain_msg, ctx.get());
  if (st == NATS_OK)
    st = natsSubscription_SetOnCompleteCB(sub, delete_closure<plain_subscription>, ctx.get());
  if (st == NATS_OK && confirm)
    st = natsConnection_FlushTimeout(s.nats.conn, flush_timeout_ms);
  if (st != NATS_OK) {
    if (sub != nullptr)
      natsSubscription_Destroy(sub);
    return "cannot subscribe to " + subject + ": " + nats_error_text(st);
  }
  ctx.release();
  raise_limits(sub, s.spec.nats);
  s.nats.plain_subs.push_back({sub, nullptr, 0, route_label});
  s.spec.log->info("subscribed to {}{}", subject, queue.empty() ? "" : " (queue " + queue + ")");
  return {};
}

/// Ends the plain subscription of handler `label` (the user removed it).
void unsubscribe_plain(connection_self* self, const std::string& label) {
  auto& subs = self->state.nats.plain_subs;
  auto i = std::find_if(subs.begin(), subs.end(),
                        [&](const subscription_handle& h) { return h.label == label; });
  if (i == subs.end())
    return;
  self->state.spec.log->info("unsubscribed from {}", natsSubscription_GetSubject(i->sub));
  natsSubscription_Unsubscribe(i->sub);
  natsSubscription_Destroy(i->sub);
  subs.erase(i);
}

void close_connection(connection_self* self, const std::string& reason) {
  auto& s = self->state;
  if (s.nats.conn == nullptr)
    return;
  for (auto& [token, promise] : s.pending_requests)
    promise.deliver(make_error(error_code::not_connected, "connection closed"));
  s.pending_requests.clear();
  s.nats.close(true);
  set_status(self, {connection_state::closed, "", reason, unix_ns()});
}

/// Shutdown's first step: the server stops sending events, and cnats goes on
/// delivering what it has already buffered (the drain deadline is the
/// supervisor's; cnats' own is only a backstop).
void drain_event_subscriptions(connection_self* self) {
  for (auto& h : self->state.nats.event_subs)
    if (auto st = natsSubscription_DrainTimeout(h.sub, 600'000); st != NATS_OK)
      self->state.spec.log->warn("cannot drain {}: {}", natsSubscription_GetSubject(h.sub),
                                 nats_error_text(st));
}

/// Events cnats still holds for the draining event subscriptions, and whether
/// every one of them has completed (delivered its last event).
drain_progress drain_status(connection_self* self) {
  drain_progress p;
  for (auto& h : self->state.nats.event_subs) {
    if (!natsSubscription_IsValid(h.sub))
      continue;
    p.complete = false;
    int msgs = 0;
    int bytes = 0;
    if (natsSubscription_GetPending(h.sub, &msgs, &bytes) == NATS_OK)
      p.pending += msgs;
  }
  return p;
}

caf::behavior connection_actor(connection_self* self, connection_spec spec) {
  self->state.spec = std::move(spec);
  return {
    [self](connect_atom) -> std::string {
      auto err = connect(self);
      if (err.empty() && !self->state.drop_checks_running) {
        self->state.drop_checks_running = true;
        self->delayed_send(self, drop_check_interval, drop_check_atom::value);
      }
      return err;
    },
    [self](drop_check_atom) {
      check_drops(self, self->state.nats.event_subs);
      check_drops(self, self->state.nats.plain_subs);
      self->delayed_send(self, drop_check_interval, drop_check_atom::value);
    },
    // Fire and forget: a returned value would be sent back to the sender.
    [self](publish_atom, const std::string& subject, const std::string& data) {
      publish(self, subject, data, nullptr);
    },
    [self](publish_atom, const std::string& subject, const std::string& data,
           const std::string& reply) {
      publish(self, subject, data, reply.empty() ? nullptr : reply.c_str());
    },
    [self](confirm_atom, const std::string& subject, const std::string& data) {
      return publish(self, subject, data, nullptr);
    },
    [self](command_atom, const std::string& subject, const std::string& data) {
      publish(self, subject, data, nullptr);
      bump(self->state.spec.stats->commands_sent);
    },
    [self](request_atom, const std::string& subject, const std::string& data,
           std::int64_t timeout_ms) { return request(self, subject, data, timeout_ms); },
    [self](reply_atom, std::uint64_t token, std::string& data, bool no_responders) {
      if (no_responders)
        finish_request(self, token,
                       caf::make_message(make_error(error_code::no_responders, "no responders")));
      else
        finish_request(self, token, caf::make_message(std::move(data)));
    },
    [self](timeout_atom, std::uint64_t token, std::string& what) {
      finish_request(self, token, caf::make_message(make_error(error_code::timeout, std::move(what))));
    },
    [self](subscribe_atom, const std::string& subject, const std::string& queue,
           handler_route& route, bool confirm) -> std::string {
      return subscribe_plain(self, subject, queue, std::move(route), confirm);
    },
    [self](unsubscribe_atom) {
      drain_event_subscriptions(self);
      return true;
    },
    [self](unsubscribe_atom, const std::string& label) {
      unsubscribe_plain(self, label);
      return true;
    },
    [self](drain_atom) { return drain_status(self); },
    [self](nats_event_atom, connection_status& st) {
      if (self->state.nats.conn != nullptr)  // else: we closed it, and said so
        set_status(self, std::move(st));
    },
    [self](status_atom) { return self->state.status; },
    [self](status_atom, caf::actor& listener) {
      self->send(listener, self->state.status);
      self->state.listeners.push_back(std::move(listener));
    },
    [self](close_atom, const std::string& reason) {
      close_connection(self, reason);
      return true;
    },
  };
}

}  // namespace

caf::actor spawn_connection_actor(caf::actor_system& sys, connection_spec spec) {
  return sys.spawn<caf::detached>(connection_actor, std::move(spec));
}

}  // namespace kryten::detail
