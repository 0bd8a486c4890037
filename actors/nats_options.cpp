#include "actors/nats_options.hpp"

#include <algorithm>
#include <climits>
#include <vector>

#include <caf/all.hpp>

#include "kryten/logging.hpp"
#include "kryten/message_types.hpp"
#include "messages/clock.hpp"

namespace kryten::detail {

namespace {

int clamp_limit(std::int64_t v) {
  return v < 0 ? -1 : static_cast<int>(std::min<std::int64_t>(v, INT_MAX));
}

void send_status(void* closure, connection_state state, natsConnection* nc, std::string reason) {
  auto* ev = static_cast<connection_events*>(closure);
  connection_status st{state, connected_url(nc), std::move(reason), unix_ns()};
  if (auto owner = caf::actor_cast<caf::actor>(ev->owner))
    caf::anon_send(owner, nats_event_atom::value, std::move(st));
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

// The server's own words for the last error (a permission violation names
// the subject there); empty when it gave none.
std::string server_error_text(natsConnection* nc) {
  const char* text = nullptr;
  if (nc == nullptr || natsConnection_GetLastError(nc, &text) == NATS_OK || text == nullptr)
    return {};
  return text;
}

void on_async_error(natsConnection* nc, natsSubscription* sub, natsStatus err, void* closure) {
  auto* ev = static_cast<connection_events*>(closure);
  auto subject = sub ? natsSubscription_GetSubject(sub) : nullptr;
  std::string where = subject ? subject : "connection";
  std::string what = natsStatus_GetText(err);
  if (err == NATS_SLOW_CONSUMER) {
    bump(ev->stats->slow_consumer_errors);
    // cnats is dropping: its counts are read from now until they stop rising.
    if (auto owner = caf::actor_cast<caf::actor>(ev->owner))
      caf::anon_send(owner, drop_check_atom::value, true);
  } else if (err == NATS_NOT_PERMITTED) {
    bump(ev->stats->permission_errors);
    if (auto text = server_error_text(nc); !text.empty()) what += ": " + text;
  } else {
    bump(ev->stats->nats_errors);
  }
  std::uint64_t suppressed = 0;
  if (ev->limiter.admit(what + where, suppressed))
    ev->log->error("NATS error on {}: {}{}", where, what,
                   suppressed ? fmt::format(" ({} more suppressed)", suppressed) : "");
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

}  // namespace

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

natsStatus make_options(const nats_config& n, const std::string& client_name,
                        connection_events* events, natsOptions** out) {
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
    s = natsOptions_SetName(opts, client_name.c_str());
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
  if (s == NATS_OK)
    s = natsOptions_SetReconnectBufSize(opts, clamp_limit(n.reconnect_buffer_size));
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

natsStatus raise_limits(natsSubscription* sub, const nats_config& n) {
  return natsSubscription_SetPendingLimits(sub, clamp_limit(n.pending_msgs_limit),
                                           clamp_limit(n.pending_bytes_limit));
}

}  // namespace kryten::detail
