// Test support: a child process with its output captured to files.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kryten::test {

class child_process {
public:
  /// Starts argv[0] (searched in PATH) with extra environment variables;
  /// stdout and stderr go to temporary files.
  explicit child_process(std::vector<std::string> argv,
                         std::map<std::string, std::string> env = {});
  ~child_process();  // kills (SIGKILL) a child still running, and reaps it
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  int pid() const { return pid_; }
  void signal(int sig);
  /// Exit code (or 128 + signal number) once the child exits; nullopt at the deadline.
  std::optional<int> wait_for_exit(std::chrono::milliseconds deadline);
  bool running();
  std::string stdout_text() const;
  std::string stderr_text() const;

private:
  int pid_ = -1;
  std::optional<int> exit_code_;
  std::string dir_path_;  // mkdtemp'd directory holding the two files below
  std::string out_path_;
  std::string err_path_;
};

}  // namespace kryten::test
