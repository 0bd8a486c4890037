// SIGINT/SIGTERM for a standalone client's run(): the first signal calls back
// (on a thread of the watcher's, never in the signal handler); a second one
// ends the process at once with 128 + signal number.
#pragma once

#include <functional>
#include <thread>

namespace kryten::detail {

class signal_watcher {
public:
  explicit signal_watcher(std::function<void(int)> on_signal);
  ~signal_watcher();  // restores the previous handlers
  signal_watcher(const signal_watcher&) = delete;
  signal_watcher& operator=(const signal_watcher&) = delete;

private:
  std::function<void(int)> on_signal_;
  std::thread thread_;
};

}  // namespace kryten::detail
