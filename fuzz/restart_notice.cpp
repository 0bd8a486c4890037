// Fuzz target: kryten::parse_restart_notice (messages/lifecycle.cpp), the body
// of kryten.lifecycle.group.restart (PROTOCOL.md §5), sent by anyone on the bus.
//
// A notice that parses has its delay clamped to [0, max_restart_delay_seconds]
// (it becomes a timer), a body that is JSON again (json() must not throw), and
// records the delay as sent when it was clamped. One that does not parse has
// the error set. A notice re-made with make_restart_notice parses back the same.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "kryten/lifecycle.hpp"

namespace {
volatile std::size_t sink;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto notice = kryten::parse_restart_notice(body, error);
  if (!notice) {
    KRYTEN_FUZZ_CHECK(!error.empty());
    return 0;
  }
  const auto& n = *notice;
  KRYTEN_FUZZ_CHECK(std::isfinite(n.delay_seconds));
  KRYTEN_FUZZ_CHECK(n.delay_seconds >= 0 && n.delay_seconds <= kryten::max_restart_delay_seconds);
  if (!n.clamped_from.empty())
    KRYTEN_FUZZ_CHECK(n.delay_seconds == 0 || n.delay_seconds == kryten::max_restart_delay_seconds);

  nlohmann::json j;
  try {
    j = n.json();
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "restart_notice::json() threw: %s\n", e.what());
    std::abort();
  }
  KRYTEN_FUZZ_CHECK(j.is_object());
  if (j.contains("delay_seconds") && !j["delay_seconds"].is_null())
    KRYTEN_FUZZ_CHECK(j["delay_seconds"].get<double>() == n.delay_seconds);
  sink = sink + n.initiator.size() + n.reason.size() + n.timestamp.size();

  // What an administrator would re-publish parses back to the same notice.
  std::string again_error;
  const auto remade = kryten::make_restart_notice(n.initiator, n.reason, n.delay_seconds);
  const auto again = kryten::parse_restart_notice(remade.dump(), again_error);
  KRYTEN_FUZZ_CHECK(again.has_value());
  KRYTEN_FUZZ_CHECK(again->initiator == n.initiator);
  KRYTEN_FUZZ_CHECK(again->reason == n.reason);
  KRYTEN_FUZZ_CHECK(again->delay_seconds == n.delay_seconds);
  KRYTEN_FUZZ_CHECK(again->clamped_from.empty());
  return 0;
}
