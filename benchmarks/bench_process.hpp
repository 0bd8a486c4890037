// kryten-bench: process control -- the systems, the publisher and the tools it
// starts, files it reads and writes, the health pages it fetches, and Ctrl-C.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kbench {

/// SIGINT and SIGTERM set a flag (the bench then stops what it started).
void stop_on_signals();
bool interrupted();

struct interrupted_error : std::runtime_error {
  interrupted_error() : std::runtime_error("interrupted") {}
};

/// Throws interrupted_error after SIGINT or SIGTERM.
void check_interrupt();

void sleep_ms(int ms);

/// Starts `args` with stdin from /dev/null and stdout+stderr to `log` (stdout
/// to `out` when given). The child gets its own process group (no terminal
/// signals) and SIGTERM when the bench dies.
pid_t spawn(const std::vector<std::string>& args, const std::string& log,
            const std::string& out = {}, const std::string& cwd = {});

/// Waits up to timeout_ms for pid to exit; the exit status or nullopt. `usage`
/// gets the child's resource use when it has exited.
std::optional<int> wait_exit(pid_t pid, std::int64_t timeout_ms, struct rusage* usage = nullptr);

/// Runs a command to completion (bounded); its exit code, or -1 on timeout (killed).
int run_command(const std::vector<std::string>& args, const std::string& log, double timeout_s,
                const std::string& cwd = {});

std::string read_text(const std::string& path);
/// The last `lines` lines of a file, joined with " | ".
std::string tail(const std::string& path, std::size_t lines = 5);
void write_text(const std::string& path, const std::string& text);

int free_port();

/// GET http://127.0.0.1:port/path (bounded: 2 s); the body, or "".
std::string http_get(int port, const std::string& path);

}  // namespace kbench
