#include "actors/loopback_bus.hpp"

namespace kryten::detail {

namespace {

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (auto dot = s.find('.'); dot != std::string_view::npos; dot = s.find('.', start)) {
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

}  // namespace

bool subject_matches(std::string_view pattern, std::string_view subject) {
  auto want = tokens(pattern);
  auto got = tokens(subject);
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == ">")
      return got.size() > i;
    if (i >= got.size() || (want[i] != "*" && want[i] != got[i]))
      return false;
  }
  return want.size() == got.size();
}

void loopback_bus::record(bus_message m) {
  {
    std::lock_guard<std::mutex> guard{mx_};
    sent_.push_back(std::move(m));
  }
  changed_.notify_all();
}

std::vector<bus_message> loopback_bus::sent(std::string_view pattern) const {
  std::lock_guard<std::mutex> guard{mx_};
  std::vector<bus_message> out;
  for (const auto& m : sent_)
    if (subject_matches(pattern, m.subject))
      out.push_back(m);
  return out;
}

std::optional<bus_message> loopback_bus::wait_for(std::string_view pattern,
                                                  std::chrono::milliseconds timeout,
                                                  std::size_t nth) const {
  std::unique_lock<std::mutex> lock{mx_};
  std::optional<bus_message> found;
  auto seen = [&] {
    std::size_t n = 0;
    for (const auto& m : sent_)
      if (subject_matches(pattern, m.subject) && ++n == nth) {
        found = m;
        return true;
      }
    return false;
  };
  changed_.wait_for(lock, timeout, seen);
  return found;
}

void loopback_bus::clear() {
  std::lock_guard<std::mutex> guard{mx_};
  sent_.clear();
}

void loopback_bus::answer(std::string pattern, request_answerer answer) {
  std::lock_guard<std::mutex> guard{mx_};
  answerers_.emplace_back(std::move(pattern), std::move(answer));
}

std::optional<std::string> loopback_bus::answer_request(const bus_message& m) const {
  std::vector<request_answerer> candidates;
  {
    std::lock_guard<std::mutex> guard{mx_};
    for (auto i = answerers_.rbegin(); i != answerers_.rend(); ++i)
      if (subject_matches(i->first, m.subject))
        candidates.push_back(i->second);
  }
  // Outside the lock: an answer may look at what was sent.
  for (auto& answer : candidates)
    if (auto reply = answer(m))
      return reply;
  return std::nullopt;
}

}  // namespace kryten::detail
