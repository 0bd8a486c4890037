#include "runtime/signal_watcher.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace kryten::detail {

namespace {

// A signal handler gets no context pointer, so the self-pipe and the count
// have to be process-wide; only one watcher is active at a time (run()).
int wake_fds[2] = {-1, -1};
std::atomic<int> signals_seen{0};
struct sigaction previous_int;
struct sigaction previous_term;

void on_signal(int sig) {
  if (signals_seen.fetch_add(1) > 0)
    _exit(128 + sig);
  auto byte = static_cast<char>(sig);
  [[maybe_unused]] auto n = write(wake_fds[1], &byte, 1);
}

}  // namespace

signal_watcher::signal_watcher(std::function<void(int)> cb) : on_signal_(std::move(cb)) {
  if (pipe(wake_fds) != 0)
    return;
  signals_seen = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &previous_int);
  sigaction(SIGTERM, &sa, &previous_term);
  thread_ = std::thread{[this] {
    char byte = 0;
    while (read(wake_fds[0], &byte, 1) < 0 && errno == EINTR) {
    }
    if (byte != 0)
      on_signal_(byte);
  }};
}

signal_watcher::~signal_watcher() {
  if (!thread_.joinable())
    return;
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
  char zero = 0;  // wakes the thread when no signal came
  [[maybe_unused]] auto n = write(wake_fds[1], &zero, 1);
  thread_.join();
  close(wake_fds[0]);
  close(wake_fds[1]);
  wake_fds[0] = wake_fds[1] = -1;
}

}  // namespace kryten::detail
