// kryten-raw-subscriber: the ceiling. A plain cnats async subscriber that does
// what a kryten-cpp service does per event -- the runtime's own decode
// (kryten::event_decoder: decode_envelope + to_typed), the trivial handler
// work (count, latency from payload.sent_ns, answer "!ping" with a say
// command) -- with no actors in between.
//
// Answers requests on kryten.{service}.command: "health" (counters and latency
// percentiles), "bench_reset" (clears the histograms), "ping".
#include <pthread.h>

#include <array>
#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <kryten/event_decoder.hpp>
#include <kryten/subjects.hpp>

#include "bench_util.hpp"

namespace {

using kbench::usage_error;

constexpr const char* usage_text = R"(kryten-raw-subscriber: a raw cnats subscriber doing the runtime's decode, no actors

usage: kryten-raw-subscriber [options]

  --server URL        NATS server (default nats://127.0.0.1:4222)
  --channel NAMES     channel(s) to subscribe to, comma-separated (default lounge);
                      one subscription kryten.events.cytube.{channel}.> each
  --domain NAME       domain used in say commands when an event has none (cytu.be)
  --service NAME      service name: answers kryten.{service}.command (default bench-raw)
  --threads K         deliver messages on a pool of K threads shared by the
                      subscriptions (default 0: one thread per subscription)
  --work-us N         simulated work per event, microseconds (default 0)
  --work-mode MODE    spin (burn CPU, default) or sleep
  --work-on NAME      do the work only for this (lowercased) event name
  --pending-msgs N    cnats pending message limit per subscription (default -1: none)
  --pending-bytes N   cnats pending byte limit per subscription (default -1: none)
  --quiet             log nothing but errors
  --help              this text

Per event: decode (simdjson, as the runtime), record now - payload.sent_ns, do
the work, and for chat messages starting with "!ping" (not shadow-muted)
publish {"command":"say","args":{"message":"Pong! <username>"},...} to
kryten.robot.command. Health reply data: events_received, events_handled,
decode_errors, dropped (natsSubscription_GetDropped), commands_sent, latency
(publish -> handler start, i.e. after the decode), run (handler run time),
decode (arrival -> decoded), by_event (latency per event name),
first_event_ns, last_event_ns (CLOCK_MONOTONIC).
)";

struct options {
  std::string server = "nats://127.0.0.1:4222";
  std::vector<std::string> channels{"lounge"};
  std::string domain = "cytu.be";
  std::string service = "bench-raw";
  int threads = 0;
  std::int64_t work_us = 0;
  bool spin = true;
  std::string work_on;
  std::int64_t pending_msgs = -1;
  std::int64_t pending_bytes = -1;
  bool quiet = false;
};

options parse(int argc, char** argv) {
  options o;
  kbench::arg_reader a{argc, argv};
  while (a.next()) {
    if (a.is("--help") || a.is("-h")) {
      std::cout << usage_text;
      std::exit(0);
    } else if (a.is("--server")) o.server = a.value();
    else if (a.is("--channel")) o.channels = kbench::split(a.value(), ',');
    else if (a.is("--domain")) o.domain = a.value();
    else if (a.is("--service")) o.service = a.value();
    else if (a.is("--threads")) o.threads = static_cast<int>(a.integer());
    else if (a.is("--work-us")) o.work_us = a.integer();
    else if (a.is("--work-mode")) {
      auto m = a.value();
      if (m != "spin" && m != "sleep")
        throw usage_error("--work-mode: spin or sleep");
      o.spin = m == "spin";
    } else if (a.is("--work-on")) o.work_on = kryten::to_lower(a.value());
    else if (a.is("--pending-msgs")) o.pending_msgs = a.integer();
    else if (a.is("--pending-bytes")) o.pending_bytes = a.integer();
    else if (a.is("--quiet")) o.quiet = true;
    else throw usage_error("unknown option " + a.name());
  }
  if (o.channels.empty())
    throw usage_error("--channel: at least one channel");
  return o;
}

// Event kinds with a histogram of their own ("by_event").
constexpr const char* kinds[] = {"chatmsg", "adduser", "userleave", "changemedia", "playlist", "other"};
constexpr std::size_t n_kinds = sizeof(kinds) / sizeof(kinds[0]);

std::size_t kind_of(const std::string& event_name) {
  auto lower = kryten::to_lower(event_name);
  for (std::size_t i = 0; i + 1 < n_kinds; ++i)
    if (lower == kinds[i])
      return i;
  return n_kinds - 1;
}

struct state {
  options opt;
  natsConnection* nc = nullptr;    // events and say commands
  natsConnection* ctl = nullptr;   // commands to this service: never behind events
  std::vector<natsSubscription*> subs;
  std::atomic<std::uint64_t> received{0}, handled{0}, decode_errors{0}, commands_sent{0},
    publish_errors{0};
  std::atomic<std::int64_t> first_ns{0}, last_ns{0};
  kbench::log_histogram latency, run, decode;
  std::array<kbench::log_histogram, n_kinds> by_event;
  std::string instance_id;

  // As the runtime makes request ids.
  std::string uuid() { return kryten::detail::uuid4(); }
};

struct subscription_ctx {
  state* st = nullptr;
  kryten::event_decoder decoder;
};

void answer_ping(state& st, const kryten::chat_message& m) {
  nlohmann::json cmd{
    {"command", "say"},
    {"args", {{"message", "Pong! " + m.username}}},
    {"meta",
     {{"source", st.opt.service},
      {"timestamp", kbench::iso_now()},
      {"domain", m.domain.empty() ? st.opt.domain : m.domain},
      {"channel", m.channel.empty() ? st.opt.channels.front() : m.channel},
      {"request_id", st.uuid()}}}};
  auto body = cmd.dump();
  if (natsConnection_Publish(st.nc, "kryten.robot.command", body.data(),
                             static_cast<int>(body.size())) == NATS_OK)
    st.commands_sent.fetch_add(1, std::memory_order_relaxed);
  else
    st.publish_errors.fetch_add(1, std::memory_order_relaxed);
}

void on_event(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* ctx = static_cast<subscription_ctx*>(closure);
  auto& st = *ctx->st;
  auto arrived = kbench::mono_ns();
  st.received.fetch_add(1, std::memory_order_relaxed);
  std::string_view body{natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
  kryten::event_envelope env;
  if (ctx->decoder.decode_envelope(body, env) != kryten::decode_error::none) {
    st.decode_errors.fetch_add(1, std::memory_order_relaxed);
    natsMsg_Destroy(msg);
    return;
  }
  env.subject = natsMsg_GetSubject(msg);
  env.received_ns = arrived;
  natsMsg_Destroy(msg);
  auto ev = ctx->decoder.to_typed(std::move(env));
  // The "handler" starts here, after the decode, as in the runtime.
  auto start = kbench::mono_ns();
  st.decode.record(start - arrived);
  const auto& e = kryten::envelope_of(ev);
  auto kind = kind_of(e.event_name);
  if (auto sent = kbench::find_sent_ns(e.payload_json); sent > 0) {
    st.latency.record(start - sent);
    st.by_event[kind].record(start - sent);
  }
  std::int64_t zero = 0;
  st.first_ns.compare_exchange_strong(zero, start, std::memory_order_relaxed);
  if (auto* chat = std::get_if<kryten::chat_message>(&ev))
    if (!chat->shadow && chat->message.rfind("!ping", 0) == 0)
      answer_ping(st, *chat);
  if (st.opt.work_on.empty() || st.opt.work_on == kinds[kind])
    kbench::do_work(st.opt.work_us, st.opt.spin);
  auto end = kbench::mono_ns();
  st.run.record(end - start);
  st.handled.fetch_add(1, std::memory_order_relaxed);
  st.last_ns.store(end, std::memory_order_relaxed);
}

std::int64_t dropped_total(state& st) {
  std::int64_t total = 0;
  for (auto* sub : st.subs) {
    int64_t d = 0;
    if (natsSubscription_GetDropped(sub, &d) == NATS_OK)
      total += d;
  }
  return total;
}

nlohmann::json health(state& st) {
  nlohmann::json by_event;
  for (std::size_t i = 0; i < n_kinds; ++i)
    if (st.by_event[i].count() > 0)
      by_event[kinds[i]] = st.by_event[i].to_json();
  std::int64_t pending = 0;
  for (auto* sub : st.subs) {
    int msgs = 0;
    if (natsSubscription_GetPending(sub, &msgs, nullptr) == NATS_OK)
      pending += msgs;
  }
  return {{"service", st.opt.service},
          {"status", "healthy"},
          {"instance_id", st.instance_id},
          {"events_received", st.received.load()},
          {"events_handled", st.handled.load()},
          {"decode_errors", st.decode_errors.load()},
          {"dropped", dropped_total(st)},
          {"pending", pending},
          {"commands_sent", st.commands_sent.load()},
          {"publish_errors", st.publish_errors.load()},
          {"latency", st.latency.to_json()},
          {"run", st.run.to_json()},
          {"decode", st.decode.to_json()},
          {"by_event", by_event.is_null() ? nlohmann::json::object() : by_event},
          {"first_event_ns", st.first_ns.load()},
          {"last_event_ns", st.last_ns.load()}};
}

void on_command(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
  auto& st = *static_cast<state*>(closure);
  const char* reply_to = natsMsg_GetReply(msg);
  auto req = nlohmann::json::parse(natsMsg_GetData(msg),
                                   natsMsg_GetData(msg) + natsMsg_GetDataLength(msg), nullptr, false);
  nlohmann::json reply{{"service", st.opt.service}};
  std::string command = req.is_object() && req.contains("command") && req["command"].is_string()
                          ? req["command"].get<std::string>() : "";
  reply["command"] = command;
  if (req.is_discarded()) {
    reply["success"] = false;
    reply["error"] = "Invalid JSON";
  } else if (command == "health") {
    reply["success"] = true;
    reply["data"] = health(st);
  } else if (command == "bench_reset") {
    st.latency.reset();
    st.run.reset();
    st.decode.reset();
    for (auto& h : st.by_event)
      h.reset();
    st.first_ns.store(0);
    st.last_ns.store(0);
    reply["success"] = true;
    reply["data"] = nlohmann::json::object();
  } else if (command == "ping") {
    reply["success"] = true;
    reply["data"] = {{"pong", true}, {"instance_id", st.instance_id}};
  } else {
    reply["success"] = false;
    reply["error"] = "Unknown command: " + command;
  }
  if (reply_to != nullptr && *reply_to != '\0') {
    auto body = reply.dump();
    natsConnection_Publish(nc, reply_to, body.data(), static_cast<int>(body.size()));
  }
  natsMsg_Destroy(msg);
}

void delete_ctx(void* closure) {
  delete static_cast<subscription_ctx*>(closure);
}

int run(state& st) {
  auto& o = st.opt;
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, o.server.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, o.service.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);  // as the runtime does
  if (s == NATS_OK && o.threads > 0) {
    s = nats_SetMessageDeliveryPoolSize(o.threads);
    if (s == NATS_OK)
      s = natsOptions_UseGlobalMessageDelivery(opts, true);
  }
  if (s == NATS_OK) s = natsConnection_Connect(&st.nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    std::cerr << "kryten-raw-subscriber: cannot connect to " << o.server << ": "
              << natsStatus_GetText(s) << "\n";
    return 1;
  }
  for (auto& ch : o.channels) {
    auto subject = kryten::subjects::channel_events(ch);
    auto* ctx = new subscription_ctx;
    ctx->st = &st;
    natsSubscription* sub = nullptr;
    s = natsConnection_Subscribe(&sub, st.nc, subject.c_str(), on_event, ctx);
    if (s == NATS_OK)
      s = natsSubscription_SetOnCompleteCB(sub, delete_ctx, ctx);
    if (s == NATS_OK)
      s = natsSubscription_SetPendingLimits(sub, static_cast<int>(o.pending_msgs),
                                            static_cast<int>(o.pending_bytes));
    if (s != NATS_OK) {
      std::cerr << "kryten-raw-subscriber: cannot subscribe to " << subject << ": "
                << natsStatus_GetText(s) << "\n";
      return 1;
    }
    st.subs.push_back(sub);
    if (!o.quiet)
      std::cerr << "kryten-raw-subscriber: subscribed to " << subject << "\n";
  }
  // Commands on a connection of their own (and so a delivery thread of their
  // own), as the runtime serves them in an actor of their own: a health
  // request is not stuck behind a backlog of events.
  natsOptions* copts = nullptr;
  s = natsOptions_Create(&copts);
  if (s == NATS_OK) s = natsOptions_SetURL(copts, o.server.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(copts, (o.service + "-control").c_str());
  if (s == NATS_OK) s = natsOptions_SetSendAsap(copts, true);
  if (s == NATS_OK) s = natsConnection_Connect(&st.ctl, copts);
  natsOptions_Destroy(copts);
  natsSubscription* cmd = nullptr;
  auto cmd_subject = kryten::subjects::command(o.service);
  if (s == NATS_OK)
    s = natsConnection_QueueSubscribe(&cmd, st.ctl, cmd_subject.c_str(), "q", on_command, &st);
  if (s == NATS_OK)
    s = natsConnection_FlushTimeout(st.ctl, 5000);
  if (s == NATS_OK)
    s = natsConnection_FlushTimeout(st.nc, 5000);
  if (s != NATS_OK) {
    std::cerr << "kryten-raw-subscriber: cannot serve " << cmd_subject << ": "
              << natsStatus_GetText(s) << "\n";
    return 1;
  }
  nlohmann::json startup{{"service", o.service}, {"version", "1.0.0"},
                         {"hostname", "localhost"}, {"timestamp", kbench::iso_now()},
                         {"uptime_seconds", 0}, {"instance_id", st.instance_id}};
  auto body = startup.dump();
  auto lc = kryten::subjects::lifecycle(o.service, "startup");
  natsConnection_Publish(st.nc, lc.c_str(), body.data(), static_cast<int>(body.size()));
  natsConnection_FlushTimeout(st.nc, 1000);
  if (!o.quiet)
    std::cerr << "kryten-raw-subscriber: " << o.service << " ready\n";

  // Wait for SIGINT/SIGTERM (blocked in every thread, see main).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  if (!o.quiet)
    std::cerr << "kryten-raw-subscriber: stopping\n";
  for (auto* sub : st.subs)
    natsSubscription_Unsubscribe(sub);
  natsSubscription_Unsubscribe(cmd);
  natsConnection_FlushTimeout(st.nc, 1000);
  natsConnection_Close(st.nc);
  natsConnection_Close(st.ctl);
  for (auto* sub : st.subs)
    natsSubscription_Destroy(sub);
  natsSubscription_Destroy(cmd);
  natsConnection_Destroy(st.nc);
  natsConnection_Destroy(st.ctl);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto st = std::make_unique<state>();
  try {
    st->opt = parse(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "kryten-raw-subscriber: " << e.what() << "\n(see --help)\n";
    return 2;
  }
  st->instance_id = st->uuid();
  // Block the stop signals before cnats starts threads; run() sigwaits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (nats_Open(-1) != NATS_OK) {
    std::cerr << "kryten-raw-subscriber: cannot initialise cnats\n";
    return 1;
  }
  int rc = run(*st);
  nats_CloseAndWait(2000);
  return rc;
}
