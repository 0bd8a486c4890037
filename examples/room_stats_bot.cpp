// The room stats bot as a program (the actors: room_stats.hpp).
//
//   room_stats_bot --config bot.json     (service name: room-stats)
//
// Exit codes: 0 after a normal stop (SIGINT/SIGTERM), 1 when NATS cannot be
// reached or is lost for good, 2 for a bad command line or configuration.
#include <iostream>

#include <kryten/kryten.hpp>

#include "room_stats.hpp"

int main(int argc, char** argv) {
  auto config = kryten::config_from_command_line(argc, argv, std::cerr);
  if (!config)
    return 2;
  kryten::client client{*config};
  auto actors = add_room_stats(client);
  int code = 1;
  try {
    client.connect();
    code = client.run();
  } catch (const kryten::connect_error&) {
    // the client has logged why
  }
  stop_room_stats(actors);
  return code;
}
