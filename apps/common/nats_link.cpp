#include "nats_link.hpp"

#include <nats/nats.h>

namespace kryten::apps {

namespace {

using clock = std::chrono::steady_clock;

std::string status_text(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0')
    text += std::string{": "} + last;
  return text;
}

void check(natsStatus s, const std::string& what) {
  if (s != NATS_OK)
    throw link_error(what + ": " + status_text(s));
}

double ms_since(clock::time_point start) {
  return std::chrono::duration<double, std::milli>(clock::now() - start).count();
}

/// Owns a natsOptions while the connection is made.
struct options_guard {
  natsOptions* opts = nullptr;
  ~options_guard() { natsOptions_Destroy(opts); }
};

natsOptions* make_options(const link_options& o, options_guard& guard) {
  check(natsOptions_Create(&guard.opts), "options");
  auto* opts = guard.opts;
  std::vector<const char*> servers;
  for (auto& s : o.servers)
    servers.push_back(s.c_str());
  check(natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size())), "servers");
  check(natsOptions_SetName(opts, o.name.c_str()), "name");
  check(natsOptions_SetTimeout(opts, static_cast<int64_t>(o.connect_timeout * 1000)), "timeout");
  check(natsOptions_SetMaxReconnect(opts, o.max_reconnect), "reconnect");
  check(natsOptions_SetReconnectWait(opts, static_cast<int64_t>(o.reconnect_wait * 1000)),
        "reconnect wait");
  if (!o.user.empty())
    check(natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str()), "user");
  if (!o.token.empty())
    check(natsOptions_SetToken(opts, o.token.c_str()), "token");
  if (!o.creds.empty())
    check(natsOptions_SetUserCredentialsFromFiles(opts, o.creds.c_str(), nullptr), "creds");
  bool tls = !o.tls_ca.empty() || !o.tls_cert.empty();
  for (auto& s : o.servers)
    tls = tls || s.rfind("tls://", 0) == 0;
  if (tls) {
    check(natsOptions_SetSecure(opts, true), "tls");
    if (!o.tls_ca.empty())
      check(natsOptions_LoadCATrustedCertificates(opts, o.tls_ca.c_str()), "tls_ca");
    if (!o.tls_cert.empty())
      check(natsOptions_LoadCertificatesChain(opts, o.tls_cert.c_str(), o.tls_key.c_str()),
            "tls_cert");
  }
  return opts;
}

}  // namespace

link_options link_options_from(const nats_config& n, const std::string& name) {
  link_options o;
  o.servers = n.servers;
  o.user = n.user.value_or("");
  o.password = n.password.value_or("");
  o.token = n.token.value_or("");
  o.tls_ca = n.tls_ca.value_or("");
  o.tls_cert = n.tls_cert.value_or("");
  o.tls_key = n.tls_key.value_or("");
  o.connect_timeout = n.connect_timeout;
  o.max_reconnect = n.max_reconnect_attempts;
  o.reconnect_wait = n.reconnect_time_wait;
  o.name = name;
  return o;
}

struct nats_link::impl {
  natsConnection* nc = nullptr;
  ~impl() {
    if (nc != nullptr) {
      natsConnection_FlushTimeout(nc, 1000);
      natsConnection_Destroy(nc);
    }
  }
};

nats_link::nats_link(const link_options& options) : impl_(std::make_unique<impl>()) {
  options_guard guard;
  auto* opts = make_options(options, guard);
  check(natsConnection_Connect(&impl_->nc, opts), "cannot connect");
}

nats_link::~nats_link() = default;

void nats_link::publish(const std::string& subject, const std::string& data) {
  check(natsConnection_Publish(impl_->nc, subject.c_str(), data.data(), static_cast<int>(data.size())),
        "publish " + subject);
  check(natsConnection_FlushTimeout(impl_->nc, 2000), "flush");
}

namespace {

/// Reads messages from a synchronous subscription until `deadline` or `max`.
std::vector<link_reply> drain(natsSubscription* sub, clock::time_point start,
                              clock::time_point deadline, std::size_t max) {
  std::vector<link_reply> out;
  while (out.size() < max) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0)
      break;
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub, left.count()) != NATS_OK)
      break;  // timeout: the window is over
    link_reply r;
    r.subject = natsMsg_GetSubject(msg);
    r.data.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    r.round_trip_ms = ms_since(start);
    natsMsg_Destroy(msg);
    // A "no responders" status message has an empty body and headers only.
    if (!r.data.empty())
      out.push_back(std::move(r));
  }
  return out;
}

struct subscription_guard {
  natsSubscription* sub = nullptr;
  ~subscription_guard() {
    if (sub != nullptr) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
  }
};

}  // namespace

std::vector<link_reply> nats_link::gather(const std::string& subject, const std::string& data,
                                          std::chrono::milliseconds window,
                                          std::size_t max_replies) {
  natsInbox* inbox = nullptr;
  check(natsInbox_Create(&inbox), "inbox");
  std::string reply = inbox;
  natsInbox_Destroy(inbox);
  subscription_guard sub;
  check(natsConnection_SubscribeSync(&sub.sub, impl_->nc, reply.c_str()), "subscribe");
  auto start = clock::now();
  check(natsConnection_PublishRequest(impl_->nc, subject.c_str(), reply.c_str(), data.data(),
                                      static_cast<int>(data.size())),
        "request " + subject);
  natsConnection_Flush(impl_->nc);
  return drain(sub.sub, start, start + window, max_replies);
}

std::vector<link_reply> nats_link::publish_and_collect(const std::string& listen,
                                                       const std::string& subject,
                                                       const std::string& data,
                                                       std::chrono::milliseconds window) {
  subscription_guard sub;
  check(natsConnection_SubscribeSync(&sub.sub, impl_->nc, listen.c_str()), "subscribe " + listen);
  check(natsConnection_Flush(impl_->nc), "flush");
  auto start = clock::now();
  publish(subject, data);
  return drain(sub.sub, start, start + window, static_cast<std::size_t>(-1));
}

void nats_link::follow(const std::string& subject,
                       const std::function<void(const std::string&, const std::string&)>& on_message,
                       const std::function<bool()>& keep_going, std::chrono::milliseconds poll) {
  subscription_guard sub;
  check(natsConnection_SubscribeSync(&sub.sub, impl_->nc, subject.c_str()), "subscribe " + subject);
  check(natsConnection_Flush(impl_->nc), "flush");
  while (keep_going()) {
    natsMsg* msg = nullptr;
    natsStatus s = natsSubscription_NextMsg(&msg, sub.sub, poll.count());
    if (s == NATS_TIMEOUT)
      continue;
    if (s != NATS_OK)
      throw link_error("subscription ended: " + status_text(s));
    std::string data(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    std::string subj = natsMsg_GetSubject(msg);
    natsMsg_Destroy(msg);
    on_message(subj, data);
  }
}

}  // namespace kryten::apps
