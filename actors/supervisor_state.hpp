// The supervisor's state and the functions of its parts, shared by the files
// that make up the supervisor actor (private to them):
//   supervisor_actor.cpp           the behaviour; who went down
//   supervisor_startup.cpp         start-up in order, connect, the startup event
//   supervisor_handlers.cpp        handlers: spawn, restart with backoff, remove
//   supervisor_restart_notices.cpp group restart notices
//   supervisor_shutdown.cpp        the graceful shutdown sequence and the stop
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/connection_actor.hpp"
#include "actors/supervisor_actor.hpp"

namespace kryten::detail::supervision {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
using shutdown_drain_atom = caf::atom_constant<caf::atom("kshdrain")>;
using restart_now_atom = caf::atom_constant<caf::atom("krstnow")>;
using restart_handler_atom = caf::atom_constant<caf::atom("krsthnd")>;
using shutdown_settle_atom = caf::atom_constant<caf::atom("kshsettl")>;

/// A handler the supervisor keeps alive.
struct supervised_handler {
  handler_registration reg;
  caf::actor actor;
  std::deque<steady_clock::time_point> restarts;  // within the window
};

struct plain_subscription_request {
  std::string subject;
  std::string queue;
  handler_route route;
};

struct supervisor_state {
  supervisor_spec spec;
  caf::actor health, http_probe, connection, lifecycle, heartbeat, discovery, commands;
  std::map<caf::actor_addr, supervised_handler> handlers;
  std::map<std::string, supervised_handler> restarting;  // by label, waiting out a backoff
  std::vector<plain_subscription_request> plain_subs;  // (re)made on connect
  std::vector<plain_subscription_request> discovery_subs;
  std::vector<caf::actor> restart_listeners;  // users' actors and callback actors
  std::vector<caf::actor> restart_callbacks;  // the callback actors (ours to stop)
  std::minstd_rand jitter{std::random_device{}()};
  std::vector<std::string> abandoned;  // handlers still busy at the drain deadline
  drain_progress at_deadline;          // cnats' buffers when the drain gave up
  std::map<caf::actor_addr, std::int64_t> busy_at_deadline;  // busy_since_ns then
  steady_clock::time_point settle_deadline;
  std::shared_ptr<handler_stats> inbox = std::make_shared<handler_stats>();  // its bus queue
  std::shared_ptr<handler_stats> discovery_inbox = std::make_shared<handler_stats>();
  bool connected_once = false;
  bool shutting_down = false;
  bool shut_down = false;
  std::vector<caf::response_promise> shutdown_waiters;
  std::string shutdown_reason;
  steady_clock::time_point shutdown_deadline;
  steady_clock::time_point drain_deadline;
  caf::response_promise stop_promise;
  std::set<caf::actor_addr> awaited;  // children whose exit the stop waits for
  std::vector<std::string> stuck;     // named by the stop: busy, or not down in time
  static inline const char* name = "kryten.supervisor";
};

using supervisor_self = caf::stateful_actor<supervisor_state>;

inline bool lifecycle_on(const supervisor_spec& spec) {
  return spec.cfg.service && spec.cfg.service->enable_lifecycle;
}

inline caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(s));
}

// -- start-up (supervisor_startup.cpp) ---------------------------------------------

/// Spawns the runtime's actors in order (health first).
void spawn_core(supervisor_self* self);
/// Connects, subscribes and publishes the startup event; answers "" or the error.
caf::result<std::string> connect(supervisor_self* self);

// -- handlers (supervisor_handlers.cpp) ---------------------------------------------

void add_handler(supervisor_self* self, handler_registration& reg);
caf::result<bool> remove_handler(supervisor_self* self, const std::string& label);
void on_handler_down(supervisor_self* self, const caf::down_msg& down);
void restart_handler(supervisor_self* self, const std::string& label);

// -- group restart notices (supervisor_restart_notices.cpp) -------------------------

void on_restart_notice(supervisor_self* self, const bus_message& msg);

// -- shutdown (supervisor_shutdown.cpp) ---------------------------------------------

caf::result<bool> shutdown(supervisor_self* self, const std::string& reason);
void drain(supervisor_self* self);
void settle(supervisor_self* self);
caf::result<std::vector<std::string>> stop_children(supervisor_self* self);
/// Forgets a runtime actor that went down; true if it was one.
bool forget_core(supervisor_state& s, const caf::actor_addr& who);

}  // namespace kryten::detail::supervision
