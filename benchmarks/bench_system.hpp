// kryten-bench: one system under test (kryten-cpp, raw cnats or Node) and
// what the bench records about it while it runs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"

namespace kbench {

using json = nlohmann::json;

enum column { col_kryten = 0, col_raw = 1, col_node = 2 };
inline constexpr const char* column_labels[] = {"kryten-cpp", "raw cnats", "Node nats.js"};

struct system_ut {
  column col = col_kryten;
  std::string name;     // e.g. "kryten", "kryten-k4"
  std::string service;  // NATS service name
  std::vector<std::string> argv;
  std::string log;
  bool available = true;
  std::string reason;  // why not available
  pid_t pid = -1;
  std::int64_t spawn_ns = 0;
  kbench::log_histogram e2e;  // publish -> "Pong!" say command, measured by the bench
  std::mutex tl_mx;
  bool timeline_on = false;
  std::vector<std::pair<std::int64_t, std::int64_t>> timeline;  // (arrival, latency) of pings
  json startup = json::object();
  json shutdown = json::object();
};

}  // namespace kbench
