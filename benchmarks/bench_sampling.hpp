// kryten-bench: what a process costs, read from /proc while it runs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "process_control.hpp"

namespace kbench {

/// utime + stime of a process (or of one thread: "PID/task/TID"), in clock ticks.
std::uint64_t cpu_ticks(const std::string& proc_path);
std::uint64_t cpu_ticks(pid_t pid);

/// Clock ticks of each thread of `pid`, by thread id, with the thread's name.
std::map<std::string, std::pair<std::string, std::uint64_t>> thread_ticks(pid_t pid);

/// A "Vm...:" line of /proc/<pid>/status, in kB (0 when unreadable).
using kryten::process::status_kb;

/// Resets the peak RSS (VmHWM) of a process of ours (Linux >= 4.0).
void reset_peak_rss(pid_t pid);

/// The 1-minute load average.
double loadavg();

}  // namespace kbench
