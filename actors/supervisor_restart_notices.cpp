// The supervisor, group restart notices: clamped delays, fan-out, restart_on_notice.
#include "actors/supervisor_state.hpp"

#include <algorithm>
#include <cmath>

#include "actors/command_actor.hpp"
#include "actors/discovery_actor.hpp"
#include "actors/heartbeat_actor.hpp"
#include "actors/lifecycle_actor.hpp"
#include "kryten/errors.hpp"
#include "kryten/subjects.hpp"
#include "messages/clock.hpp"

namespace kryten::detail::supervision {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// -- group restart notices -----------------------------------------------------

void on_restart_notice(supervisor_self* self, const bus_message& msg) {
  auto& s = self->state;
  std::string error;
  auto notice = parse_restart_notice(msg.data, error);
  if (!notice) {
    s.spec.log->error("ignoring group restart notice: {}", error);
    return;
  }
  if (!notice->clamped_from.empty())
    s.spec.log->warn("group restart notice asks for a delay of {} s: clamped to {} s",
                     notice->clamped_from, notice->delay_seconds);
  s.spec.log->warn("group restart requested by {}: {} (delay {} s)", notice->initiator,
                   notice->reason, notice->delay_seconds);
  auto body = notice->json();
  // Callbacks get the whole notice with §5's defaults filled in (client.hpp).
  auto fill = [&body](const char* key, const nlohmann::json& value) {
    if (!body.contains(key) || body[key].is_null())
      body[key] = value;
  };
  fill("initiator", notice->initiator);
  fill("reason", notice->reason);
  fill("delay_seconds", notice->delay_seconds);
  notice->body = body.dump();
  for (auto& listener : s.restart_listeners)
    self->send(listener, *notice);
  if (s.spec.cfg.service && s.spec.cfg.service->restart_on_notice) {
    s.spec.log->warn("restart_on_notice: stopping in {} s (exit code {})",
                     notice->delay_seconds, restart_exit_code);
    self->delayed_send(self, seconds(notice->delay_seconds), restart_now_atom::value,
                       "Group restart: " + notice->reason);
  }
}

}  // namespace kryten::detail::supervision
