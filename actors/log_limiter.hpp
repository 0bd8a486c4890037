// Rate-limited logging for things that can happen at bus speed (bad
// messages, drops): the first of a kind is logged, then at most one line per
// interval with the number suppressed in between. One instance per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace kryten::detail {

class log_limiter {
public:
  explicit log_limiter(std::chrono::seconds interval = std::chrono::seconds(10))
    : interval_(interval) {}

  /// Whether to log an occurrence of `kind` now; `suppressed` receives how
  /// many were skipped since the last line logged for it.
  bool admit(const std::string& kind, std::uint64_t& suppressed) {
    auto now = std::chrono::steady_clock::now();
    auto& k = kinds_[kind];
    if (k.logged_once && now - k.last < interval_) {
      ++k.suppressed;
      return false;
    }
    suppressed = k.suppressed;
    k = {now, 0, true};
    return true;
  }

private:
  struct kind_state {
    std::chrono::steady_clock::time_point last;
    std::uint64_t suppressed = 0;
    bool logged_once = false;
  };
  std::chrono::steady_clock::duration interval_;
  std::map<std::string, kind_state> kinds_;
};

}  // namespace kryten::detail
