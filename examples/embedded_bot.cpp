// The embedded bot: a program that owns its caf::actor_system and its own
// actors, and embeds a kryten client in that system. It answers "!ping" like
// the echo bot (from an actor of its own), keeps a tick actor running, and
// handles SIGINT/SIGTERM itself: a graceful shutdown (the shutdown lifecycle
// event, exit 0).
//
//   embedded_bot --config bot.json
//
// Exit codes: 0 after a normal stop, 1 when NATS cannot be reached, 2 for a
// bad command line or configuration.
#include <csignal>
#include <iostream>
#include <string>

#include <caf/all.hpp>
#include <kryten/kryten.hpp>

namespace {

using namespace std::chrono_literals;
using tick_atom = caf::atom_constant<caf::atom("tick")>;

/// The program's own work: counts seconds, and tells the runtime, which puts
/// the count into the metadata of later lifecycle events.
caf::behavior ticker(caf::event_based_actor* self, kryten::runtime_actor runtime) {
  self->send(self, tick_atom::value, std::int64_t{0});
  return {
    [self, runtime](tick_atom, std::int64_t n) {
      self->send(runtime, kryten::metadata_atom::value, kryten::metadata_entry{"ticks", n});
      self->delayed_send(self, 1s, tick_atom::value, n + 1);
    },
  };
}

/// Answers "!ping" with "Pong! <username>" through the robot's say command.
caf::behavior pinger(caf::event_based_actor* self, kryten::runtime_actor runtime) {
  return {
    [self, runtime](const kryten::chat_message& m) {
      if (m.shadow || m.message.rfind("!ping", 0) != 0)
        return;
      self->send(runtime, kryten::command_atom::value,
                 kryten::outgoing_command{"robot", "say", {{"message", "Pong! " + m.username}},
                                          m.domain, m.channel});
    },
    [](const kryten::raw_event&) {},
    [](const std::string&) {},  // the say command's request id
  };
}

/// Blocks SIGINT and SIGTERM in every thread (call before any thread starts);
/// wait_for_signal() then takes them synchronously.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_for_signal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace

int main(int argc, char** argv) {
  auto signals = block_stop_signals();
  auto config = kryten::config_from_command_line(argc, argv, std::cerr);
  if (!config)
    return 2;

  caf::actor_system_config system_config;
  kryten::add_message_types(system_config);
  caf::actor_system system{system_config};
  {
    kryten::client client{system, *config};
    client.on_actor("chatmsg", kryten::runtime_actor_factory{
                                 [](caf::actor_system& sys, kryten::runtime_actor rt) {
                                   return sys.spawn(pinger, rt);
                                 }});
    try {
      client.connect();
    } catch (const kryten::connect_error&) {
      return 1;  // the client has logged why
    }
    auto ticks = system.spawn(ticker, client.runtime());
    int sig = wait_for_signal(signals);
    client.logger()->info("received {}; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    client.disconnect(sig == SIGTERM ? "Received SIGTERM" : "Received SIGINT");
    // A timer keeps an actor alive: the system's destructor would wait for it.
    caf::anon_send_exit(ticks, caf::exit_reason::user_shutdown);
  }  // the client stops its own actors here, before the system goes
  return 0;
}
