#include "bench_sampling.hpp"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench_process.hpp"

namespace kbench {

std::uint64_t cpu_ticks(const std::string& proc_path) {
  auto text = read_text("/proc/" + proc_path + "/stat");
  auto p = text.rfind(')');
  if (p == std::string::npos)
    return 0;
  std::istringstream in{text.substr(p + 2)};
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return utime + stime;
}

std::uint64_t cpu_ticks(pid_t pid) {
  return cpu_ticks(std::to_string(pid));
}

std::map<std::string, std::pair<std::string, std::uint64_t>> thread_ticks(pid_t pid) {
  std::map<std::string, std::pair<std::string, std::uint64_t>> out;
  std::error_code ec;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& e : std::filesystem::directory_iterator{dir, ec}) {
    auto tid = e.path().filename().string();
    auto name = read_text(dir + "/" + tid + "/comm");
    if (!name.empty() && name.back() == '\n')
      name.pop_back();
    out[tid] = {name, cpu_ticks(std::to_string(pid) + "/task/" + tid)};
  }
  return out;
}

void reset_peak_rss(pid_t pid) {
  std::ofstream out{"/proc/" + std::to_string(pid) + "/clear_refs"};
  out << "5";
}

double loadavg() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : 0;
}

}  // namespace kbench
