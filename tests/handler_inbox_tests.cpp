// The handler inbox: bounded, FIFO, and no event or wake-up lost when several
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

TEST_CASE("the inbox rounds its room up to a power of two and refuses past it", "[inbox]") {
  handler_inbox inbox{5};
  REQUIRE(inbox.slots() == 8);
  for (int i = 0; i < 8; ++i)
    REQUIRE(inbox.push(caf::make_message(i)));
  CHECK_FALSE(inbox.push(caf::make_message(8)));
  caf::message m;
  for (int i = 0; i < 8; ++i) {
    REQUIRE(inbox.pop(m));
    CHECK(m.get_as<int>(0) == i);
  }
  CHECK_FALSE(inbox.pop(m));
  CHECK(inbox.empty());
  CHECK(inbox.push(caf::make_message(9)));  // room again after the pops
}

TEST_CASE("the first push into an idle inbox claims the wake, later ones do not", "[inbox]") {
  handler_inbox inbox{4};
  inbox.push(caf::make_message(1));
  CHECK(inbox.claim());
  inbox.push(caf::make_message(2));
  CHECK_FALSE(inbox.claim());
  caf::message m;
  while (inbox.pop(m)) {
  }
  CHECK_FALSE(inbox.go_idle());  // empty: the consumer is idle now
  inbox.push(caf::make_message(3));
  CHECK(inbox.claim());
}

TEST_CASE("four producers, one consumer: every event arrives once, in order per producer",
          "[inbox][threads]") {
  constexpr int producers = 4;
  constexpr int per_producer = 50000;
  handler_inbox inbox{1024};

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
        while (!inbox.push(caf::make_message(p, i)))
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
}
