// Process control shared by the test suite and the benchmarks: starting a
// child with its output in files, waiting for it with a deadline, and a free
// loopback port. Not part of the runtime; linked as kryten_process_control.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kryten::process {

struct spawn_options {
  std::string stdout_path;  // empty: /dev/null
  std::string stderr_path;  // empty: same file as stdout
  std::string cwd;          // empty: the caller's
  std::map<std::string, std::string> env;  // added to (or replacing in) the caller's
  bool own_process_group = false;    // terminal signals do not reach the child
  bool terminate_with_parent = false;  // SIGTERM when the spawning thread exits
};

/// fork + execvp(argv[0], argv) with stdin from /dev/null. Everything the child
/// needs is built before fork: callers run other threads (cnats), so between
/// fork and exec the child makes only async-signal-safe calls. Throws
/// std::runtime_error when the files cannot be opened or fork fails; a program
/// that cannot be executed exits 127 (a cwd that cannot be entered, 126).
pid_t spawn(const std::vector<std::string>& argv, const spawn_options& options = {});

/// The exit code, or 128 + the signal number.
int exit_code_of(int wait_status);

/// Waits up to `deadline` for `pid` to exit: its exit code (as exit_code_of),
/// -1 when it is not our child, nullopt at the deadline. `usage` gets the
/// child's resource use once it has exited.
std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds deadline,
                             struct rusage* usage = nullptr);

/// A "Vm...:" line of /proc/<pid>/status (e.g. "VmRSS:", "VmHWM:"), in kB; 0
/// when unreadable.
long status_kb(pid_t pid, const char* key);

/// A free TCP port on 127.0.0.1 (bound and released). Throws std::runtime_error.
int free_loopback_port();

}  // namespace kryten::process
