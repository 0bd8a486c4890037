// kryten-bench-bot: the kryten-cpp service under test, built on kryten::client
// like any user's bot. Its handlers do the trivial work the comparison peers
// do (count, latency from payload.sent_ns, answer "!ping" with a say command),
// optionally plus simulated work, and record publish -> handler start latency
// and handler run time in bounded histograms.
//
// Commands on kryten.{service}.command: "health" (the runtime's counters from
// client.health() plus the histograms), "bench_reset" (clears the histograms),
// "ping".
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <kryten/kryten.hpp>

#include "bench_util.hpp"

namespace {

using kbench::usage_error;

constexpr const char* usage_text = R"(kryten-bench-bot: the kryten-cpp service the benchmark measures

usage: kryten-bench-bot --config FILE [options]

  --config FILE       service configuration (PROTOCOL.md §7); or KRYTEN_CONFIG
  --handlers K        register K handler actors (default 1). With K > 1, handler
                      i takes only the events of configured channel i mod C (a
                      channel filter), so K handlers share a multi-channel load
  --events NAME       event name the handlers take (default "*": every event)
  --work-us N         simulated work per event in each handler, microseconds (0)
  --work-mode MODE    spin (burn CPU, default) or sleep
  --fast-handler NAME also register one handler without work for event NAME
                      (e.g. adduser), to show whether slow handlers delay it
  --help              this text

Each handler: latency = steady_clock now - payload.sent_ns at handler start; the
work; for chat messages starting with "!ping" (not shadow-muted) a say command
"Pong! <username>" to the robot (client.send_command); run time recorded.
Health reply data: events_received, events_handled, dropped (= dropped_events:
full handler queues and cnats pending-limit drops), decode_errors,
commands_sent, latency, run, handlers[], first_event_ns, last_event_ns
(CLOCK_MONOTONIC), runtime (client.health().to_json()).

Exit codes: 0 after SIGINT/SIGTERM, 1 when NATS cannot be reached, 2 bad usage.
)";

struct options {
  std::string config;
  int handlers = 1;
  std::string events = "*";
  std::int64_t work_us = 0;
  bool spin = true;
  std::string fast_handler;
};

options parse(int argc, char** argv) {
  options o;
  kbench::arg_reader a{argc, argv};
  while (a.next()) {
    if (a.is("--help") || a.is("-h")) {
      std::cout << usage_text;
      std::exit(0);
    } else if (a.is("--config") || a.is("-c")) o.config = a.value();
    else if (a.is("--handlers")) o.handlers = static_cast<int>(a.integer());
    else if (a.is("--events")) o.events = a.value();
    else if (a.is("--work-us")) o.work_us = a.integer();
    else if (a.is("--work-mode")) {
      auto m = a.value();
      if (m != "spin" && m != "sleep")
        throw usage_error("--work-mode: spin or sleep");
      o.spin = m == "spin";
    } else if (a.is("--fast-handler")) o.fast_handler = a.value();
    else throw usage_error("unknown option " + a.name());
  }
  if (o.config.empty())
    if (auto env = std::getenv("KRYTEN_CONFIG"))
      o.config = env;
  if (o.config.empty())
    throw usage_error("--config FILE is required");
  if (o.handlers < 1 || o.handlers > 1024)
    throw usage_error("--handlers: 1..1024");
  return o;
}

/// What one handler records. Written by its actor only (relaxed atomics so
/// that the command actor may read them).
struct handler_record {
  std::string label;
  bool slow = true;
  kbench::log_histogram latency, run;
  std::atomic<std::uint64_t> handled{0};
};

struct bench_state {
  kbench::log_histogram latency, run;  // over every handler
  std::vector<std::unique_ptr<handler_record>> handlers;
  std::atomic<std::int64_t> first_ns{0}, last_ns{0};

  void reset() {
    latency.reset();
    run.reset();
    for (auto& h : handlers) {
      h->latency.reset();
      h->run.reset();
      h->handled.store(0);
    }
    first_ns.store(0);
    last_ns.store(0);
  }
};

std::optional<std::string> unless_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

/// The handler body, for every typed event.
template <class Event>
void handle(kryten::client& client, bench_state& st, handler_record& rec, std::int64_t work_us,
            bool spin, const Event& ev) {
  auto start = kbench::mono_ns();
  const kryten::event_envelope& env = ev;
  if (auto sent = kbench::find_sent_ns(env.payload_json); sent > 0) {
    st.latency.record(start - sent);
    rec.latency.record(start - sent);
  }
  std::int64_t zero = 0;
  st.first_ns.compare_exchange_strong(zero, start, std::memory_order_relaxed);
  if constexpr (std::is_same_v<Event, kryten::chat_message>) {
    if (!ev.shadow && ev.message.rfind("!ping", 0) == 0)
      client.send_command("robot", "say", {{"message", "Pong! " + ev.username}},
                          unless_empty(ev.domain), unless_empty(ev.channel));
  }
  kbench::do_work(work_us, spin);
  auto end = kbench::mono_ns();
  st.run.record(end - start);
  rec.run.record(end - start);
  rec.handled.fetch_add(1, std::memory_order_relaxed);
  st.last_ns.store(end, std::memory_order_relaxed);
}

nlohmann::json health_data(kryten::client& client, bench_state& st) {
  auto h = client.health();
  nlohmann::json handlers = nlohmann::json::array();
  for (auto& r : st.handlers)
    handlers.push_back({{"label", r->label},
                        {"slow", r->slow},
                        {"handled", r->handled.load()},
                        {"latency", r->latency.to_json()},
                        {"run", r->run.to_json()}});
  return {{"service", h.service},
          {"status", h.connected ? "healthy" : "degraded"},
          {"instance_id", client.instance_id()},
          {"events_received", h.events_received},
          {"events_handled", h.events_handled},
          {"dropped", h.dropped_events},
          {"decode_errors", h.decode_errors},
          {"commands_sent", h.commands_sent},
          {"nats_errors", h.nats_errors},
          {"latency", st.latency.to_json()},
          {"run", st.run.to_json()},
          {"handlers", handlers},
          {"first_event_ns", st.first_ns.load()},
          {"last_event_ns", st.last_ns.load()},
          {"runtime", h.to_json()}};
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "kryten-bench-bot: " << e.what() << "\n(see --help)\n";
    return 2;
  }
  kryten::kryten_config config;
  try {
    config = kryten::load_config(o.config);
  } catch (const kryten::config_error& e) {
    std::cerr << "config error: " << e.what() << "\n";
    return 2;
  }
  bench_state st;
  kryten::client client{config};
  auto channels = config.channels.size();
  for (int i = 0; i < o.handlers; ++i) {
    kryten::handler_filter filter;
    if (o.handlers > 1)
      filter.channel = config.channels[static_cast<std::size_t>(i) % channels].channel;
    auto rec = std::make_unique<handler_record>();
    rec->label = o.events + "#" + std::to_string(i) + (filter.channel.empty() ? "" : "@" + filter.channel);
    auto* r = rec.get();
    st.handlers.push_back(std::move(rec));
    auto work = o.work_us;
    auto spin = o.spin;
    client.on(o.events,
              [&client, &st, r, work, spin](const auto& ev) { handle(client, st, *r, work, spin, ev); },
              filter);
  }
  if (!o.fast_handler.empty()) {
    auto rec = std::make_unique<handler_record>();
    rec->label = o.fast_handler + "#fast";
    rec->slow = false;
    auto* r = rec.get();
    st.handlers.push_back(std::move(rec));
    client.on(o.fast_handler,
              [&client, &st, r](const auto& ev) { handle(client, st, *r, 0, true, ev); });
  }
  client.on_command("health", [&](const kryten::command_request&) { return health_data(client, st); });
  client.on_command("bench_reset", [&](const kryten::command_request&) {
    st.reset();
    return nlohmann::json::object();
  });
  client.on_command("ping", [&](const kryten::command_request&) {
    return nlohmann::json{{"pong", true}, {"instance_id", client.instance_id()}};
  });
  try {
    client.connect();
  } catch (const kryten::connect_error&) {
    return 1;
  }
  return client.run();
}
