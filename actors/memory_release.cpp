#include "actors/memory_release.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kryten::detail {

std::int64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr)
    return 0;
  long size = 0;
  long resident = 0;
  int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<std::int64_t>(resident) * ::sysconf(_SC_PAGESIZE) : 0;
}

std::int64_t release_freed_memory() {
  auto before = resident_bytes();
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
  return std::max<std::int64_t>(0, before - resident_bytes());
}

void release_after_backlog(std::int64_t& peak_bytes, std::string_view kind,
                           std::string_view name, const std::shared_ptr<spdlog::logger>& log) {
  auto peak = std::exchange(peak_bytes, 0);
  if (peak < release_after_backlog_bytes)
    return;
  auto released = release_freed_memory();
  if (!log)
    return;
  constexpr double mb = 1024.0 * 1024.0;
  log->info("{} {} caught up with a backlog of {:.0f} MB; {:.0f} MB of freed memory returned to "
           "the system ({:.0f} MB resident)",
           kind, name, peak / mb, released / mb, resident_bytes() / mb);
}

}  // namespace kryten::detail
