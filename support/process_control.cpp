#include "process_control.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace kryten::process {

namespace {

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

/// The caller's environment with `extra` added or replacing entries.
std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    if (extra.count(entry.substr(0, entry.find('='))) == 0)
      out.push_back(std::move(entry));
  }
  for (const auto& [key, value] : extra)
    out.push_back(key + "=" + value);
  return out;
}

/// The descriptors the child takes as stdin, stdout and stderr (close-on-exec
/// in the parent; dup2 clears the flag on the child's copies).
struct child_fds {
  int in = -1, out = -1, err = -1;
  ~child_fds() {
    if (in >= 0)
      ::close(in);
    if (out >= 0)
      ::close(out);
    if (err >= 0 && err != out)
      ::close(err);
  }
};

int open_output(const std::string& path) {
  int fd = ::open(path.empty() ? "/dev/null" : path.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw sys_error("spawn: cannot open " + path);
  return fd;
}

[[noreturn]] void exec_child(const child_fds& fds, const spawn_options& o, char** args,
                             char** envp) {
  if (o.own_process_group)
    ::setpgid(0, 0);
  if (o.terminate_with_parent)
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::dup2(fds.in, STDIN_FILENO) < 0 || ::dup2(fds.out, STDOUT_FILENO) < 0
      || ::dup2(fds.err, STDERR_FILENO) < 0)
    ::_exit(127);
  if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0)
    ::_exit(126);
  if (envp != nullptr)
    environ = envp;
  ::execvp(args[0], args);
  const char prefix[] = "spawn: cannot execute ";
  ssize_t ignored = ::write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  ignored = ::write(STDERR_FILENO, args[0], std::strlen(args[0]));
  ignored = ::write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

pid_t spawn(const std::vector<std::string>& argv, const spawn_options& o) {
  if (argv.empty())
    throw std::invalid_argument("spawn: empty argv");
  child_fds fds;
  fds.in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fds.in < 0)
    throw sys_error("spawn: cannot open /dev/null");
  fds.out = open_output(o.stdout_path);
  fds.err = o.stderr_path.empty() || o.stderr_path == o.stdout_path ? fds.out
                                                                     : open_output(o.stderr_path);

  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  if (!o.env.empty()) {
    env_strings = environment_with(o.env);
    for (auto& entry : env_strings)
      envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
  std::vector<std::string> arg_strings = argv;
  std::vector<char*> args;
  for (auto& a : arg_strings)
    args.push_back(a.data());
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0)
    throw sys_error("spawn: fork");
  if (pid == 0)
    exec_child(fds, o, args.data(), envp.empty() ? nullptr : envp.data());
  return pid;
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status))
    return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status))
    return 128 + WTERMSIG(wait_status);
  return -1;
}

std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds deadline, struct rusage* usage) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    struct rusage ru {};
    pid_t r = ::wait4(pid, &status, WNOHANG, &ru);
    if (r == pid) {
      if (usage != nullptr)
        *usage = ru;
      return exit_code_of(status);
    }
    if (r < 0 && errno != EINTR)
      return -1;  // ECHILD: not ours, or reaped elsewhere; the exit code is lost
    auto now = std::chrono::steady_clock::now();
    if (now >= end)
      return std::nullopt;
    std::this_thread::sleep_for(
      std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(1), end - now));
  }
}

long status_kb(pid_t pid, const char* key) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  auto klen = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, klen, key) == 0)
      return std::atol(line.c_str() + klen);
  return 0;
}

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw sys_error("free_loopback_port: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    auto error = sys_error("free_loopback_port");
    ::close(fd);
    throw error;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace kryten::process
