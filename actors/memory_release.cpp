#include "actors/memory_release.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

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

}  // namespace kryten::detail
