// Test support: a child process with its output captured to files.
#include "support/process.hpp"

#include "process_control.hpp"

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

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

  kryten::process::spawn_options options;
  options.stdout_path = out_path_;
  options.stderr_path = err_path_;
  options.env = std::move(env);
  try {
    pid_ = kryten::process::spawn(argv, options);
  } catch (...) {
    remove_dir(dir_path_, out_path_, err_path_);
    throw;
  }
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
  if (!exit_code_)
    exit_code_ = kryten::process::wait_exit(pid_, deadline);
  return exit_code_;
}

bool child_process::running() {
  return !wait_for_exit(std::chrono::milliseconds(0)).has_value();
}

std::string child_process::stdout_text() const { return read_file(out_path_); }

std::string child_process::stderr_text() const { return read_file(err_path_); }

}  // namespace kryten::test
