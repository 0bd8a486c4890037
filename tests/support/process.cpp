// Test support: a child process with its output captured to files.
#include "support/process.hpp"

#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace kryten::test {

namespace {

std::string temp_base() {
  const char* dir = std::getenv("TMPDIR");
  return (dir != nullptr && *dir != '\0') ? std::string(dir) : std::string("/tmp");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void remove_dir(const std::string& dir, const std::string& out, const std::string& err) {
  if (!out.empty()) ::unlink(out.c_str());
  if (!err.empty()) ::unlink(err.c_str());
  if (!dir.empty()) ::rmdir(dir.c_str());
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

child_process::child_process(std::vector<std::string> argv,
                             std::map<std::string, std::string> env) {
  if (argv.empty()) throw std::invalid_argument("child_process: empty argv");

  std::string tmpl = temp_base() + "/kryten-child-XXXXXX";
  std::vector<char> dir(tmpl.begin(), tmpl.end());
  dir.push_back('\0');
  if (::mkdtemp(dir.data()) == nullptr) throw sys_error("child_process: mkdtemp(" + tmpl + ")");
  dir_path_ = dir.data();
  out_path_ = dir_path_ + "/stdout";
  err_path_ = dir_path_ + "/stderr";

  int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  auto close_fds = [&] {
    if (in_fd >= 0) ::close(in_fd);
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
  };
  if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
    auto error = sys_error("child_process: cannot open output files in " + dir_path_);
    close_fds();
    remove_dir(dir_path_, out_path_, err_path_);
    throw error;
  }

  // Everything the child needs is built before fork: the test process runs
  // other threads (cnats), so the child must only make async-signal-safe calls
  // (no malloc, hence no setenv) between fork and exec.
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (env.count(key) == 0) env_strings.push_back(std::move(entry));
  }
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    auto error = sys_error("child_process: fork");
    close_fds();
    remove_dir(dir_path_, out_path_, err_path_);
    throw error;
  }
  if (pid == 0) {
    // Child. dup2 clears FD_CLOEXEC on the targets.
    if (::dup2(in_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
        ::dup2(err_fd, STDERR_FILENO) < 0) {
      ::_exit(127);
    }
    environ = envp.data();
    ::execvp(args[0], args.data());
    const char prefix[] = "child_process: cannot execute ";
    ssize_t ignored = ::write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
    ignored = ::write(STDERR_FILENO, args[0], std::strlen(args[0]));
    ignored = ::write(STDERR_FILENO, "\n", 1);
    (void)ignored;
    ::_exit(127);
  }
  close_fds();
  pid_ = pid;
}

child_process::~child_process() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    wait_for_exit(std::chrono::seconds(5));
  }
  remove_dir(dir_path_, out_path_, err_path_);
}

void child_process::signal(int sig) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> child_process::wait_for_exit(std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!exit_code_) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = decode_status(status);
      break;
    }
    if (r < 0 && errno != EINTR) {
      // ECHILD: reaped elsewhere (e.g. SIGCHLD ignored); the exit code is lost.
      exit_code_ = -1;
      break;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= end) break;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(2), end - now));
  }
  return exit_code_;
}

bool child_process::running() {
  return !wait_for_exit(std::chrono::milliseconds(0)).has_value();
}

std::string child_process::stdout_text() const { return read_file(out_path_); }

std::string child_process::stderr_text() const { return read_file(err_path_); }

}  // namespace kryten::test
