// The handler inbox: bounded by memory, FIFO per producer (through the ring
// and the overflow list behind it), and no event or wake-up lost when several
// delivery threads push while the consumer goes idle.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <caf/make_message.hpp>

#include "actors/handler_inbox.hpp"

using kryten::detail::handler_inbox;

TEST_CASE("past its ring the inbox goes on queueing, in order, until its byte limit",
          "[inbox]") {
  handler_inbox inbox{5, 100 * 10};  // 8 ring slots, 100 events of 10 bytes
  REQUIRE(inbox.slots() == 8);
  for (int i = 0; i < 100; ++i)
    REQUIRE(inbox.push(caf::make_message(i), 10));
  CHECK(inbox.size_hint() == 100);
  CHECK(inbox.bytes() == 1000);
  CHECK_FALSE(inbox.push(caf::make_message(100), 10));  // full: not taken, not counted
  CHECK(inbox.bytes() == 1000);
  caf::message m;
  for (int i = 0; i < 100; ++i) {
    REQUIRE(inbox.pop(m));
    CHECK(m.get_as<int>(0) == i);
  }
  CHECK_FALSE(inbox.pop(m));
  CHECK(inbox.empty());
  CHECK(inbox.bytes() == 0);
  CHECK(inbox.push(caf::make_message(101), 10));  // room again after the pops
}

TEST_CASE("an event bigger than the whole limit is refused, smaller ones still fit", "[inbox]") {
  handler_inbox inbox{4, 4096};
  CHECK_FALSE(inbox.push(caf::make_message(1), 5000));
  CHECK(inbox.push(caf::make_message(2), 4000));
  CHECK_FALSE(inbox.push(caf::make_message(3), 100));
  caf::message m;
  REQUIRE(inbox.pop(m));
  CHECK(m.get_as<int>(0) == 2);
  CHECK(inbox.push(caf::make_message(3), 100));
}

TEST_CASE("popping and pushing in turns keeps the order across ring and overflow", "[inbox]") {
  handler_inbox inbox{2, 1 << 20};  // 2 ring slots: most events pass through the overflow
  int next_push = 0, next_pop = 0;
  caf::message m;
  for (int round = 0; round < 200; ++round) {
    for (int k = 0; k < round % 7; ++k)
      REQUIRE(inbox.push(caf::make_message(next_push++), 1));
    for (int k = 0; k < round % 5 && inbox.pop(m); ++k)
      REQUIRE(m.get_as<int>(0) == next_pop++);
  }
  while (inbox.pop(m))
    REQUIRE(m.get_as<int>(0) == next_pop++);
  CHECK(next_pop == next_push);
}

TEST_CASE("the first push into an idle inbox claims the wake, later ones do not", "[inbox]") {
  handler_inbox inbox{4, 1 << 20};
  inbox.push(caf::make_message(1), 1);
  CHECK(inbox.claim());
  inbox.push(caf::make_message(2), 1);
  CHECK_FALSE(inbox.claim());
  caf::message m;
  while (inbox.pop(m)) {
  }
  CHECK_FALSE(inbox.go_idle());  // empty: the consumer is idle now
  inbox.push(caf::make_message(3), 1);
  CHECK(inbox.claim());
}

TEST_CASE("four producers, one consumer: every event arrives once, in order per producer",
          "[inbox][threads]") {
  constexpr int producers = 4;
  constexpr int per_producer = 50000;
  // A small ring and a byte limit of 3,000 events: producers outrun the
  // consumer, so events go through the ring, the overflow list and refusals.
  handler_inbox inbox{64, 3000};

  // The consumer sleeps until woken, as an actor waits for drain_atom.
  std::mutex m;
  std::condition_variable cv;
  int wakes = 0;
  auto wake = [&] {
    std::lock_guard<std::mutex> g{m};
    ++wakes;
    cv.notify_one();
  };

  std::atomic<int> pushed_full{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        while (!inbox.push(caf::make_message(p, i), 1))
          pushed_full.fetch_add(1, std::memory_order_relaxed), std::this_thread::yield();
        if (inbox.claim())
          wake();
      }
    });

  std::vector<int> next(producers, 0);
  int received = 0;
  bool in_order = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  caf::message msg;
  while (received < producers * per_producer) {
    {
      std::unique_lock<std::mutex> g{m};
      if (!cv.wait_until(g, deadline, [&] { return wakes > 0; }))
        break;  // a lost wake-up: the events below are still queued
      --wakes;
    }
    for (;;) {
      if (!inbox.pop(msg) && !(inbox.go_idle() && inbox.pop(msg)))
        break;
      auto p = msg.get_as<int>(0);
      in_order = in_order && msg.get_as<int>(1) == next[p];
      next[p] = msg.get_as<int>(1) + 1;
      ++received;
    }
  }
  for (auto& t : threads)
    t.join();
  CHECK(received == producers * per_producer);
  CHECK(in_order);
  CHECK(inbox.empty());
  CHECK(inbox.bytes() == 0);
}
