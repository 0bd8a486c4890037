#include "actors/connection_actor.hpp"

#include <algorithm>
#include <chrono>

#include <caf/all.hpp>
#include <nats/nats.h>

#include "actors/event_path.hpp"
#include "actors/kv_actor.hpp"
#include "actors/log_limiter.hpp"
#include "actors/nats_options.hpp"
#include "actors/reply_router.hpp"
#include "kryten/errors.hpp"
#include "kryten/event_decoder.hpp"
#include "kryten/logging.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

using namespace std::chrono_literals;

constexpr auto drop_check_interval = 1s;
constexpr std::int64_t flush_timeout_ms = 5000;

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
  std::shared_ptr<cnats_closures> closures = std::make_shared<cnats_closures>();
  std::shared_ptr<publish_gate> gate;  // may be null

  nats_session() = default;
  nats_session(const nats_session&) = delete;
  nats_session& operator=(const nats_session&) = delete;
  ~nats_session() { close(false); }

  /// Unsubscribes everything and closes the connection; with `flush`, what
  /// was published goes out first (bounded).
  void close(bool flush) {
    if (conn == nullptr)
      return;
    if (gate)
      gate->close();  // from here on, only this actor publishes
    close_subscriptions(event_subs);
    close_subscriptions(plain_subs);
    if (inbox_sub != nullptr) {
      natsSubscription_Unsubscribe(inbox_sub);
      natsSubscription_Destroy(inbox_sub);
      inbox_sub = nullptr;
    }
    // Only a live connection can flush; one that is reconnecting would wait
    // out the whole timeout.
    if (flush && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED)
      natsConnection_FlushTimeout(conn, flush_timeout_ms);
    natsConnection_Close(conn);
    natsConnection_Destroy(conn);
    conn = nullptr;
    // Bounded: cnats frees them at once unless a callback is stuck.
    (void) closures->wait_all_freed(std::chrono::seconds(2));
  }
};

/// The key-value actor, made on first use and stopped with this actor.
struct kv_handle {
  caf::actor actor;
  kv_handle() = default;
  kv_handle(const kv_handle&) = delete;
  kv_handle& operator=(const kv_handle&) = delete;
  ~kv_handle() {
    if (actor)
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }
};

struct connection_actor_state {
  connection_spec spec;
  nats_session nats;
  kv_handle kv;
  connection_status status;
  reply_router requests;
  log_limiter limiter;
  bool drop_checks_running = false;
  std::vector<caf::actor> listeners;  // get every connection_status
  static inline const char* name = "kryten.connection";
};

using connection_self = caf::stateful_actor<connection_actor_state>;

void set_status(connection_self* self, connection_status st) {
  auto& s = self->state;
  auto previous = s.status.state;
  auto lost = s.status.server;
  // cnats reports a disconnect on its callback thread, after it may have
  // moved to the next server: the server lost is the one we were connected to.
  if (st.server.empty() || (st.state == connection_state::disconnected && !lost.empty()))
    st.server = lost;
  s.status = std::move(st);
  if (s.status.state == connection_state::connected && previous == connection_state::disconnected)
    bump(s.spec.stats->reconnects);
  if (s.status.state == connection_state::disconnected)
    bump(s.spec.stats->disconnects);
  switch (s.status.state) {
    case connection_state::connected:
      if (previous == connection_state::disconnected)
        s.spec.log->info("reconnected to NATS at {} (lost {})", s.status.server, lost);
      else
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

std::string subscribe_channel(connection_self* self, const channel_config& ch,
                              std::shared_ptr<subscription_stats> stats) {
  auto& s = self->state;
  auto ctx = std::make_unique<event_subscription>();
  ctx->held = cnats_closures::token{s.nats.closures};
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

/// Reads cnats' drop counts into the stats; true when any rose.
bool check_drops(connection_self* self, std::vector<subscription_handle>& subs) {
  bool rose = false;
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
      rose = true;
    }
  }
  return rose;
}

std::string connect(connection_self* self) {
  auto& s = self->state;
  if (s.nats.conn != nullptr)
    return {};
  auto* events = new connection_events{cnats_closures::token{s.nats.closures},
                                       caf::actor_cast<caf::weak_actor_ptr>(self), s.spec.stats,
                                       s.spec.log, log_limiter{}};
  natsOptions* opts = nullptr;
  natsStatus st = make_options(s.spec.nats, s.spec.client_name, events, &opts);
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
  if (s.nats.gate)
    s.nats.gate->open(s.nats.conn);
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

caf::result<std::string> request(connection_self* self, const std::string& subject,
                                 const std::string& data, std::int64_t timeout_ms) {
  auto& s = self->state;
  if (s.nats.conn == nullptr)
    return make_error(error_code::not_connected, "not connected to NATS");
  if (auto err = s.requests.open(s.nats.conn, s.nats.closures, caf::actor_cast<caf::actor>(self),
                                 &s.nats.inbox_sub);
      !err.empty())
    return make_error(error_code::not_connected, "cannot create reply inbox: " + err);
  auto promise = self->make_response_promise();
  auto [token, reply] = s.requests.add(promise);
  publish(self, subject, data, reply.c_str());
  self->delayed_send(self, std::chrono::milliseconds(timeout_ms), timeout_atom::value, token,
                     "no reply from " + subject + " within " + std::to_string(timeout_ms)
                       + " ms");
  return promise;
}

/// With `confirm`, waits until the server has this (and every earlier)
/// subscription: one round trip, so a batch confirms only its last.
std::string subscribe_plain(connection_self* self, const std::string& subject,
                            const std::string& queue, handler_route route, bool confirm) {
  auto& s = self->state;
  if (s.nats.conn == nullptr)
    return "not connected to NATS";
  auto route_label = route.label;
  auto ctx = std::make_unique<plain_subscription>(
    plain_subscription{cnats_closures::token{s.nats.closures}, std::move(route)});
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
  s.requests.fail_all(make_error(error_code::not_connected, "connection closed"));
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
  // A drain completes only once the server confirms it; while reconnecting
  // it cannot, so what counts then is that nothing is left buffered.
  auto* conn = self->state.nats.conn;
  bool live = conn != nullptr && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED;
  for (auto& h : self->state.nats.event_subs) {
    if (!natsSubscription_IsValid(h.sub))
      continue;
    int msgs = 0;
    int bytes = 0;
    if (natsSubscription_GetPending(h.sub, &msgs, &bytes) == NATS_OK)
      p.pending += msgs;
    if (live || msgs > 0)
      p.complete = false;
  }
  return p;
}

/// What cnats received for a closed event subscription and never handed to
/// the event path: still buffered, or delivered after the cut. cnats counts
/// delivered and pending under one lock; once the path is closed `received`
/// is final, so the difference is exact.
std::int64_t abandoned_after_close(const subscription_handle& h) {
  int pending = 0;
  std::int64_t delivered = 0;
  if (natsSubscription_IsValid(h.sub)
      && natsSubscription_GetStats(h.sub, &pending, nullptr, nullptr, nullptr, &delivered, nullptr)
           == NATS_OK)
    return std::max<std::int64_t>(
      0, delivered + pending - static_cast<std::int64_t>(read(h.stats->received)));
  // Drained to its end: every message went through the callback.
  return static_cast<std::int64_t>(read(h.stats->after_close));
}

/// The drain deadline: no more events enter the event path, and what was
/// received is final. Returns what cnats holds or held that will never be
/// handled.
drain_progress close_event_delivery(connection_self* self) {
  drain_progress p;
  for (auto& h : self->state.nats.event_subs) {
    if (!close_delivery(*h.stats))
      self->state.spec.log->error("the event path of {} did not leave its last message",
                                  natsSubscription_GetSubject(h.sub));
    p.pending += abandoned_after_close(h);
    p.complete = false;
  }
  return p;
}

/// Hands a key-value request to the key-value actor, which answers it.
template <class... Ts>
caf::response_promise forward_to_kv(connection_self* self, Ts&&... xs) {
  auto& s = self->state;
  auto rp = self->make_response_promise();
  if (s.nats.conn == nullptr) {
    rp.deliver(make_error(error_code::not_connected, "the key-value store needs a connection"));
    return rp;
  }
  if (!s.kv.actor) {
    std::string error;
    kv_spec spec;
    spec.connection = s.nats.conn;
    spec.log = s.spec.log;
    s.kv.actor = spawn_kv_actor(self->system(), spec, error);
    if (!s.kv.actor) {
      rp.deliver(make_error(error_code::no_jetstream, "JetStream: " + error));
      return rp;
    }
  }
  rp.delegate(s.kv.actor, std::forward<Ts>(xs)...);
  return rp;
}

caf::behavior connection_actor(connection_self* self, connection_spec spec) {
  self->state.spec = std::move(spec);
  self->state.nats.gate = self->state.spec.gate;
  return {
    [self](connect_atom) -> std::string {
      return connect(self);
    },
    // No timer while nothing is dropped (an idle service sleeps): cnats
    // reports a slow consumer once per episode, and the counts are then
    // read every drop_check_interval until they stop rising.
    [self](drop_check_atom, bool reported) {
      auto& s = self->state;
      if (reported && s.drop_checks_running)
        return;  // the running checks count these drops too
      bool rose = check_drops(self, s.nats.event_subs);
      rose = check_drops(self, s.nats.plain_subs) || rose;
      s.drop_checks_running = rose || reported;
      if (s.drop_checks_running)
        self->delayed_send(self, drop_check_interval, drop_check_atom::value, false);
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
        self->state.requests.finish(
          token, caf::make_message(make_error(error_code::no_responders, "no responders")));
      else
        self->state.requests.finish(token, caf::make_message(std::move(data)));
    },
    [self](timeout_atom, std::uint64_t token, std::string& what) {
      self->state.requests.finish(
        token, caf::make_message(make_error(error_code::timeout, std::move(what))));
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
      if (label.rfind(kv_watch_label_prefix, 0) == 0)
        return forward_to_kv(self, unsubscribe_atom::value, label);
      unsubscribe_plain(self, label);
      auto rp = self->make_response_promise();
      rp.deliver(true);
      return rp;
    },
    [self](kv_open_atom a, const kv_bucket_config& cfg) { return forward_to_kv(self, a, cfg); },
    [self](kv_get_atom a, const std::string& bucket, const std::string& key) {
      return forward_to_kv(self, a, bucket, key);
    },
    [self](kv_get_atom a, const std::string& bucket) { return forward_to_kv(self, a, bucket); },
    [self](kv_put_atom a, const std::string& bucket, const std::string& key,
           const std::string& value) { return forward_to_kv(self, a, bucket, key, value); },
    [self](kv_delete_atom a, const std::string& bucket, const std::string& key) {
      return forward_to_kv(self, a, bucket, key);
    },
    [self](kv_keys_atom a, const std::string& bucket) { return forward_to_kv(self, a, bucket); },
    [self](kv_watch_atom a, const std::string& bucket, const std::string& key,
           const caf::actor& target) { return forward_to_kv(self, a, bucket, key, target); },
    [self](drain_atom) { return drain_status(self); },
    [self](drain_atom, stop_atom) { return close_event_delivery(self); },
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
