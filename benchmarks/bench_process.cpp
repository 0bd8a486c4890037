#include "bench_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench_util.hpp"
#include "process_control.hpp"

namespace kbench {

namespace {

// Set by the signal handler, read by the bench's loops: the one global a
// signal handler needs.
volatile std::sig_atomic_t interrupt_flag = 0;

extern "C" void on_stop_signal(int) {
  interrupt_flag = 1;
}

}  // namespace

void stop_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() {
  return interrupt_flag != 0;
}

void check_interrupt() {
  if (interrupted())
    throw interrupted_error{};
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log, const std::string& out,
            const std::string& cwd) {
  kryten::process::spawn_options o;
  o.stdout_path = out.empty() ? log : out;
  o.stderr_path = log;
  o.cwd = cwd;
  o.own_process_group = true;
  o.terminate_with_parent = true;
  return kryten::process::spawn(args, o);
}

std::optional<int> wait_exit(pid_t pid, std::int64_t timeout_ms, struct rusage* usage) {
  return kryten::process::wait_exit(pid, std::chrono::milliseconds(timeout_ms), usage);
}

int run_command(const std::vector<std::string>& args, const std::string& log, double timeout_s,
                const std::string& cwd) {
  pid_t pid = spawn(args, log, {}, cwd);
  auto deadline = mono_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  while (mono_ns() < deadline) {
    if (auto st = wait_exit(pid, 100))
      return *st;
    if (interrupted())
      break;
  }
  kill(pid, SIGKILL);
  wait_exit(pid, 2000);
  return -1;
}

std::string read_text(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& path, std::size_t lines) {
  auto text = read_text(path);
  std::vector<std::string> all = split(text, '\n');
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : " | ") + all[i];
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out{path};
  out << text;
}

int free_port() {
  return kryten::process::free_loopback_port();
}

std::string http_get(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return {};
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  std::string resp;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (int i = 0; i < 1000; ++i) {
        auto n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
          break;
        resp.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? std::string{} : resp.substr(body + 4);
}

}  // namespace kbench
