// kryten-micro: in-process micro-benchmarks of the event path, with Google
// Benchmark. No NATS server, no other process: figures for one step at a time.
//
//   decode        bytes -> typed event (kryten::event_decoder, as the runtime)
//   decode_envelope/fresh, /reused, decode_to_message
//                 its steps: what the event's allocations and its CAF
//                 message cost (the one-allocation lever of the event path)
//   inbox         one push and one pop of a handler inbox (the hand-off)
//   runtime/...   a batch of events through the real runtime to a handler:
//                 decode -> route -> inbox -> handler actor, over the test
//                 kit's loopback connection (kryten::testing::test_service)
//                 instead of cnats. Time per event, the handler's work included.
//
// The last one is how to benchmark your own handler: register it on the test
// service's client (or your actor with on_actor) instead of count_chat below.
//
//   build/release/benchmarks/kryten-micro [--benchmark_filter=runtime]
#include <atomic>
#include <chrono>
#include <string>
#include <variant>

#include <benchmark/benchmark.h>
#include <caf/make_message.hpp>
#include <nlohmann/json.hpp>

#include <kryten/event_decoder.hpp>
#include <kryten/testing.hpp>

#include "actors/handler_inbox.hpp"

namespace {

using nlohmann::json;

/// A chat message as Kryten-Robot publishes it (PROTOCOL.md §1).
std::string chat_body(int i) {
  json payload{{"user", {{"name", "alice"}, {"rank", 2}}},
               {"msg", "hello there, message number " + std::to_string(i)},
               {"time", 1700000000000LL},
               {"meta", json::object()}};
  return json{{"event_name", "chatMsg"},
              {"channel", "lounge"},
              {"domain", "cytu.be"},
              {"timestamp", "2026-12-06T20:00:00.000000Z"},
              {"payload", payload}}
    .dump();
}

void decode(benchmark::State& state) {
  kryten::event_decoder decoder;
  auto body = chat_body(1);
  for (auto _ : state) {
    kryten::any_event out;
    auto err = decoder.decode(body, out);
    benchmark::DoNotOptimize(err);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(decode);

/// The envelope only (the first of decode's two walks), into a new event
/// each time or into one reused event whose strings keep their memory: the
/// difference is what the envelope's allocations cost.
void decode_envelope(benchmark::State& state, bool reuse) {
  kryten::event_decoder decoder;
  auto body = chat_body(1);
  kryten::event_envelope kept;
  for (auto _ : state) {
    kryten::event_envelope fresh;
    auto& env = reuse ? kept : fresh;
    auto err = decoder.decode_envelope(body, env);
    benchmark::DoNotOptimize(err);
    benchmark::DoNotOptimize(env);
  }
}
BENCHMARK_CAPTURE(decode_envelope, fresh, false);
BENCHMARK_CAPTURE(decode_envelope, reused, true);

/// The typed event wrapped in the CAF message the inbox carries.
void decode_to_message(benchmark::State& state) {
  kryten::event_decoder decoder;
  auto body = chat_body(1);
  for (auto _ : state) {
    kryten::event_envelope env;
    decoder.decode_envelope(body, env);
    auto typed = decoder.to_typed(std::move(env));
    auto msg = std::visit([](auto& x) { return caf::make_message(std::move(x)); }, typed);
    benchmark::DoNotOptimize(msg);
  }
}
BENCHMARK(decode_to_message);

void inbox(benchmark::State& state) {
  kryten::detail::handler_inbox box{16384, std::int64_t{1} << 30};
  auto event = caf::make_message(std::string{"an event"});
  caf::message out;
  for (auto _ : state) {
    box.push(event, 600);
    box.pop(out);
  }
}
BENCHMARK(inbox);

/// Events per iteration in the runtime benchmark: enough that the handler
/// actor works in batches, as under load.
constexpr int batch = 10000;

/// The test kit's own defaults, quieter: no start-up and shutdown lines
/// between the benchmark's rows.
kryten::kryten_config quiet_config() {
  kryten::kryten_config cfg;
  cfg.nats.servers = {"nats://loopback:4222"};  // the loopback bus: never dialled
  cfg.channels = {{"cytu.be", "lounge"}};
  kryten::service_config service;
  service.name = "micro-bot";
  cfg.service = service;
  cfg.log_level = "WARNING";
  return cfg;
}

/// Events through the runtime: `body` to a handler that counts them.
void run_events(benchmark::State& state, const std::string& body) {
  kryten::testing::test_service svc{quiet_config()};
  std::atomic<std::int64_t> handled{0};
  svc.client().on("chatmsg", [&](const kryten::chat_message& m) {
    benchmark::DoNotOptimize(m.message.size());
    handled.fetch_add(1, std::memory_order_relaxed);
  });
  svc.start();
  const std::string subject = "kryten.events.cytube.lounge.chatMsg";
  std::int64_t expected = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i)
      svc.deliver(subject, body);
    expected += batch;
    if (!kryten::testing::eventually([&] { return handled.load() >= expected; },
                                     std::chrono::seconds(60))) {
      state.SkipWithError("events were not handled within 60 s");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["ns_per_event"] = benchmark::Counter(
    static_cast<double>(state.iterations() * batch),
    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  svc.stop();
}

void runtime(benchmark::State& state) {
  run_events(state, chat_body(1));
}

BENCHMARK(runtime)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
