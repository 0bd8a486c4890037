#include "actors/reply_router.hpp"

#include <cstdlib>
#include <memory>
#include <string_view>

#include <caf/all.hpp>

#include "actors/event_path.hpp"
#include "actors/nats_options.hpp"

namespace kryten::detail {

namespace {

struct reply_inbox {
  cnats_closures::token held;  // first: freed last
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

}  // namespace

std::string reply_router::open(natsConnection* conn,
                               const std::shared_ptr<cnats_closures>& closures,
                               const caf::actor& owner,
                               natsSubscription** sub) {
  if (*sub != nullptr)
    return {};
  natsInbox* inbox = nullptr;
  if (auto st = natsInbox_Create(&inbox); st != NATS_OK)
    return nats_error_text(st);
  prefix_ = std::string{inbox} + ".";
  natsInbox_Destroy(inbox);
  auto ctx = std::make_unique<reply_inbox>(
    reply_inbox{cnats_closures::token{closures}, owner, prefix_.size()});
  auto wildcard = prefix_ + "*";
  auto st = natsConnection_Subscribe(sub, conn, wildcard.c_str(), on_reply_msg, ctx.get());
  if (st == NATS_OK)
    st = natsSubscription_SetOnCompleteCB(*sub, delete_closure<reply_inbox>, ctx.get());
  if (st != NATS_OK) {
    if (*sub != nullptr)
      natsSubscription_Destroy(*sub);
    *sub = nullptr;
    return nats_error_text(st);
  }
  ctx.release();  // cnats frees it through the on-complete callback
  return {};
}

std::pair<std::uint64_t, std::string> reply_router::add(caf::response_promise promise) {
  auto token = next_token_++;
  pending_.emplace(token, std::move(promise));
  return {token, prefix_ + std::to_string(token)};
}

void reply_router::finish(std::uint64_t token, caf::message result) {
  auto i = pending_.find(token);
  if (i == pending_.end())
    return;  // answered already, or timed out
  i->second.deliver(std::move(result));
  pending_.erase(i);
}

void reply_router::fail_all(const caf::error& error) {
  for (auto& [token, promise] : pending_)
    promise.deliver(error);
  pending_.clear();
}

}  // namespace kryten::detail
